"""The SLA job: cases whose answer is overdue get a reminder to staff and, once per case,
a short "we have not forgotten you" to the resident.

``remind_overdue_cases(sessionmaker, now)`` is the job function the scheduler calls
(every few minutes); it only writes outbox rows and stamps the cases, in one
transaction. Tests call it directly with a fixed ``now``. Must not import the
conversation engine, FastAPI or platform SDKs.
"""
from __future__ import annotations

import logging
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consult import cases
from bot.db.consult_models import CASE_OPEN, Case
from delivery.messages import Reply

log = logging.getLogger("kurashi.consult.sla")
#: Cases per transaction, and per run (the job runs every 5 minutes; the rest waits for the next run).
BATCH = 20
LIMIT = 2000


@lru_cache(maxsize=1)
def _default_kb() -> Any:
    from knowledge.loader import load_knowledge

    return load_knowledge()


async def remind_overdue_cases(sessionmaker: async_sessionmaker[AsyncSession], now: datetime, *,
                               kb: Any = None, limit: int = LIMIT, batch: int = BATCH) -> int:
    """Remind staff of every open case past its ``due_at`` not yet reminded for this wait;
    tell the resident once per case. Returns how many cases were reminded (at most ``limit``).

    Works in short transactions of ``batch`` cases (a long one would hold SQLite's single
    writer lock and stall the bot). Safe with several schedulers: rows are locked with SKIP
    LOCKED on PostgreSQL and each case is stamped (``staff_reminded_at``) in the same
    transaction as its outbox rows, so a case is never reminded twice for one wait.
    """
    kb = kb or _default_kb()
    from bot.consult.notify import notify_staff

    total = 0
    cache: dict[str, Any] = {}
    while total < limit:
        async with sessionmaker() as session, session.begin():
            overdue = list((await session.execute(
                select(Case).where(Case.status == CASE_OPEN, Case.due_at.is_not(None), Case.due_at <= now,
                                   Case.staff_reminded_at.is_(None))
                .order_by(Case.due_at, Case.id).limit(min(batch, limit - total)).with_for_update(skip_locked=True)
            )).scalars())
            for case in overdue:
                case.staff_reminded_at = now
                await notify_staff(session, kb, case, "reminder", now=now, targets_cache=cache)
                told = False
                if case.resident_reminded_at is None and case.user_id is not None:
                    case.resident_reminded_at = now
                    text = cases._texts(kb).t("consult.reminder", case.language, case_no=case.number,
                                              org=cases.partner_name(kb, case.org, case.language))
                    await cases._push(session, case, [Reply(text, quick_replies=[cases._write_button(kb, case)])],
                                      "consult_reminder", now)
                    told = True
                await cases.audit(session, case, cases.A_REMINDED, cases.SYSTEM,
                                  detail={"resident": told}, now=now)
        total += len(overdue)
        if len(overdue) < batch:
            break
    if total:
        log.info("overdue cases reminded", extra={"count": total})
    return total


async def remind_overdue_consultations(*, ctx: Any = None) -> int:
    """The recurring scheduler job (scheduler/jobs.py, every 5 minutes): ``remind_overdue_cases``
    with the job context's database, knowledge base and clock; wakes the local outbox relay.
    ``ctx`` is the runner's ``scheduler.runner.JobContext`` (passed by its executor)."""
    if ctx is None:
        raise TypeError("a job needs ctx=JobContext (the scheduler runner passes it)")
    count = await remind_overdue_cases(ctx.sessionmaker, ctx.now(), kb=ctx.kb)
    if count:
        ctx.wake_sender()
    return count
