"""Consultation benchmark: what a resident's message to an open case costs compared with an
ordinary question, and how the staff inbox and the SLA job scale with the number of cases.

Measured on real parts (SQLite file, the real knowledge base and matcher, the real engine
with the consultation flow, outbox writes in the same transaction):
- turn latency (p50/p95) of a resident writing to their open case — stored with language
  and matched topic, staff group notified through the outbox — side by side with the
  same resident asking an ordinary question (the baseline);
- the staff inbox (``cases.list_cases``: one organisation's open cases, longest waiting
  first, with and without a waiting-time filter) over CASES cases;
- ``remind_overdue_cases`` over OVERDUE overdue cases (one transaction: reminders to
  staff and residents written to the outbox).
KURASHI_BENCH_CONSULT_SCALE=0.1 runs a tenth. Owns nothing but this measurement.
"""
from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SCALE = float(os.environ.get("KURASHI_BENCH_CONSULT_SCALE", "1"))
CASES = int(20_000 * SCALE)
OVERDUE = int(2_000 * SCALE)
TURNS = max(20, int(200 * SCALE))
NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)         # Wednesday 14:00 in Yamaguchi


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


async def _run() -> dict[str, Any]:
    from sqlalchemy import insert

    from bot.consult import cases
    from bot.consult.sla import remind_overdue_cases
    from bot.consult.staff import add_staff, set_notify
    from bot.db.consult_models import Case
    from bot.db.models import User
    from bot.db.session import upgrade_database
    from bot.services import build_core
    from bot.settings import Settings
    from delivery.messages import Channel, IncomingMessage, Kind

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await upgrade_database(url)
        services = build_core(Settings(_env_file=None, database_url=url))
        services.engine.clock = lambda: NOW
        kb, maker, engine = services.kb, services.sessionmaker, services.engine
        orgs = list(kb.partners.partners)
        try:
            async with maker() as s, s.begin():
                staff = await add_staff(s, kb, org="otit", email="bench@otit.example", password="bench password 1")
                await set_notify(s, kb, "otit", telegram_chat_id="-100100")
                # residents and cases in bulk (the inbox and the SLA job read them)
                await s.execute(insert(User), [
                    {"channel": "line", "platform_user_id": f"U{i:032d}", "language": "vi", "state": {},
                     "created_at": NOW, "last_seen_at": NOW} for i in range(CASES)])
                rows = []
                for i in range(CASES):
                    overdue = i < OVERDUE
                    rows.append({
                        "user_id": i + 1, "channel": "line", "status": "open" if i % 3 else "answered",
                        "topic": "work", "org": "otit" if overdue else orgs[i % len(orgs)], "language": "vi",
                        "created_at": NOW - timedelta(hours=48), "opened_at": NOW - timedelta(hours=48),
                        "last_activity_at": NOW, "transfers": 0,
                        "waiting_since": NOW - timedelta(hours=(48 if overdue else i % 24)),
                        "due_at": NOW - timedelta(hours=1) if overdue else NOW + timedelta(hours=24),
                    })
                    if overdue:
                        rows[-1]["status"] = "open"
                await s.execute(insert(Case), rows)

            # one resident with an open case, talking
            pid = "U" + "b" * 32
            for step in ("s:seg:trainee", "l:vi", "c:work", "k:y"):
                await engine.handle(IncomingMessage(Channel.LINE, pid, Kind.POSTBACK, data=step))
            await engine.handle(IncomingMessage(Channel.LINE, pid, Kind.TEXT, text="Công ty không trả lương"))
            await engine.handle(IncomingMessage(Channel.LINE, pid, Kind.POSTBACK, data="k:s"))
            other = "U" + "c" * 32
            await engine.handle(IncomingMessage(Channel.LINE, other, Kind.POSTBACK, data="l:vi"))

            async def turns(user: str, text: str) -> list[float]:
                out = []
                for _ in range(TURNS):
                    t = time.perf_counter()
                    await engine.handle(IncomingMessage(Channel.LINE, user, Kind.TEXT, text=text))
                    out.append((time.perf_counter() - t) * 1000)
                return out

            case_turns = await turns(pid, "Tôi đã làm thêm giờ nhưng không được trả tiền")
            question_turns = await turns(other, "Khi nào đổ rác nhựa?")

            async def timed(fn, repeat: int = 20) -> float:
                values = []
                for _ in range(repeat):
                    t = time.perf_counter()
                    await fn()
                    values.append((time.perf_counter() - t) * 1000)
                return statistics.median(values)

            async def inbox() -> None:
                async with maker() as s:
                    await cases.list_cases(s, staff, limit=50)

            async def inbox_waiting() -> None:
                async with maker() as s:
                    await cases.list_cases(s, staff, min_wait=timedelta(hours=12), now=NOW, limit=50)

            inbox_ms = await timed(inbox)
            waiting_ms = await timed(inbox_waiting)
            t = time.perf_counter()
            reminded = await remind_overdue_cases(maker, NOW, kb=kb, limit=OVERDUE + 10)
            sla_s = time.perf_counter() - t
        finally:
            await services.engine_db.dispose()

    result = {
        "cases": CASES,
        "case_turn_p50_ms": round(_pct(case_turns, 0.5), 2),
        "case_turn_p95_ms": round(_pct(case_turns, 0.95), 2),
        "question_turn_p50_ms": round(_pct(question_turns, 0.5), 2),
        "question_turn_p95_ms": round(_pct(question_turns, 0.95), 2),
        "inbox_p50_ms": round(inbox_ms, 2),
        "inbox_waiting_filter_p50_ms": round(waiting_ms, 2),
        "sla_reminded": reminded,
        "sla_seconds": round(sla_s, 2),
        "sla_cases_per_s": round(reminded / sla_s, 1) if sla_s else None,
    }
    result["table"] = [
        (f"message to an open case  p50 {result['case_turn_p50_ms']} ms  p95 {result['case_turn_p95_ms']} ms "
        f"(ordinary question p50 {result['question_turn_p50_ms']} ms, p95 {result['question_turn_p95_ms']} ms)"),
        (f"staff inbox over {CASES} cases  p50 {result['inbox_p50_ms']} ms; "
        f"with waiting filter {result['inbox_waiting_filter_p50_ms']} ms"),
        (f"SLA job: {reminded} overdue cases reminded in {result['sla_seconds']} s "
        f"({result['sla_cases_per_s']}/s, staff + resident outbox rows)"),
    ]
    return result


def run() -> dict[str, Any]:
    return asyncio.run(_run())
