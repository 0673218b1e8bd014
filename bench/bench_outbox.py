"""Outbox benchmark: 100,000 queued pushes through the relay and the real adapters to the fake platforms.

Measures, per channel, the achieved send rate as a share of the allowed rate (target
≥ 0.9), and counts losses and duplicates at the fake platforms, with the relay killed
(its task cancelled: no graceful stop) half-way and a new relay started at once; the dead
relay's leased rows come back when their lease (shortened to 5 s here) runs out.

The machine is shared and small, so the allowed rates are set from a calibration run
measured side by side: a few thousand pushes through an unlimited relay give the
capacity of one relay process here, and each channel is allowed half of it, at most
LINE's 1,000 requests/s default and Telegram's 30 messages/s scaled ×4 (120/s) to keep the
run short; Telegram's 1 message/s per chat is on. The question answered is whether the
relay reaches the rate it is allowed, not how fast the SDKs are.

- 100,000 pushes = messages to deliver to one user each: Telegram messages to distinct
  chats (python-telegram-bot → fake Bot API), LINE personal pushes (one request each)
  and the rest as LINE alert multicasts of 500 users (one request per 500; line-bot-sdk →
  fake LINE API), sized so that each channel needs about a minute at its allowed rate.
- The fakes run in a child process (their CPU does not count against the relay), with
  spec validation off (the test suite validates every request; here it would be the
  bottleneck). SQLite by default; PostgreSQL when KURASHI_TEST_POSTGRES_URL is set (a
  throw-away database). KURASHI_BENCH_OUTBOX_SCALE=0.1 runs a tenth of it.

Owns nothing but this measurement; imports the fakes from tests/.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from bench.platforms import close_senders, run_against_fakes, start_fake_platforms, start_senders

TOTAL_PUSHES = 100_000
RUN_SECONDS = 60.0            # how long each channel should need at its allowed rate
LINE_RATE_CAP = 1000.0        # LINE default (requests/s)
TELEGRAM_RATE_CAP = 120.0     # Telegram's 30 messages/s × 4
SHARE_OF_CAPACITY = 0.5       # allowed rate = this × the calibrated capacity
CALIBRATION = {"line": 1500, "telegram": 1000}
LEASE = timedelta(seconds=5)


# --- the fake platforms, in a child process ---------------------------------------------------


def _serve_fakes(conn: Any) -> None:
    asyncio.run(_fakes_main(conn))


async def _fakes_main(conn: Any) -> None:
    line_api, telegram_api, reach = await start_fake_platforms()
    conn.send(reach)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, conn.recv)  # "report"
    line = Counter((user, m.get("text")) for d in line_api.deliveries if d.kind != "reply"
                   for user in d.to for m in d.messages)
    telegram = Counter((str(m.get("chat_id")), m.get("text")) for m in telegram_api.sent)
    statuses = Counter(r.status for r in line_api.requests)
    conn.send({"line": dict(line), "telegram": dict(telegram), "line_statuses": dict(statuses),
               "line_requests": len(line_api.requests), "telegram_requests": len(telegram_api.requests)})
    await line_api.stop()
    await telegram_api.stop()


# --- the run --------------------------------------------------------------------------------


async def _bench(url: str, fakes: dict[str, str], conn: Any, scale: float) -> dict[str, Any]:
    from sqlalchemy import func, select

    from bot.db.models import OutboxMessage
    from bot.db.session import create_engine_and_sessionmaker, upgrade_database
    from delivery.messages import Reply
    from delivery.outbox import OutboxRelay, Push, enqueue_many
    from delivery.ratelimit import ChannelLimit, RateLimiter

    await upgrade_database(url)
    engine, maker = create_engine_and_sessionmaker(url)
    senders = await start_senders(fakes)
    M = OutboxMessage

    def done(*relays: OutboxRelay) -> int:
        # the relays' own counters: polling the table would contend with the relay for SQLite's lock
        return sum(r.stats["sent"] + r.stats["failed"] for r in relays)

    async def channel_stats(since: float, calibration: bool) -> dict[str, dict[str, float]]:
        kind = (M.kind == "calibration") if calibration else (M.kind != "calibration")
        out = {}
        async with maker() as s:
            for channel in ("line", "telegram"):
                sent, last = (await s.execute(select(func.count(), func.max(M.sent_at)).where(
                    M.channel == channel, M.status == "sent", kind))).one()
                failed = await s.scalar(select(func.count()).select_from(M).where(
                    M.channel == channel, M.status == "failed", kind)) or 0
                seconds = (last.timestamp() - since) if last else 0.0
                out[channel] = {"sent": sent, "failed": failed, "seconds": seconds,
                                "rate": sent / seconds if seconds > 0 else 0.0}
        return out

    # 1. calibration: an unlimited relay, both channels at once
    async with maker() as s, s.begin():
        await enqueue_many(s, [Push("line", [f"C{i:032x}"], [Reply(f"calibration {i}")], "calibration")
                               for i in range(CALIBRATION["line"])]
                           + [Push("telegram", [str(900000 + i)], [Reply("calibration")], "calibration")
                              for i in range(CALIBRATION["telegram"])])
    unlimited = {"line": ChannelLimit(rate=1e6), "telegram": ChannelLimit(rate=1e6)}
    relay = OutboxRelay(maker, senders, RateLimiter(unlimited), lease=LEASE, poll_interval=0.2)
    t_cal = time.time()
    task = asyncio.create_task(relay.run())
    while done(relay) < sum(CALIBRATION.values()):
        await asyncio.sleep(0.2)
    relay.stop()
    await task
    capacity = await channel_stats(t_cal, calibration=True)
    line_rate = float(min(LINE_RATE_CAP, max(1, round(SHARE_OF_CAPACITY * capacity["line"]["rate"]))))
    telegram_rate = float(min(TELEGRAM_RATE_CAP, max(1, round(SHARE_OF_CAPACITY * capacity["telegram"]["rate"]))))

    # 2. the queue: 100,000 pushes sized to about RUN_SECONDS per channel
    total = int(TOTAL_PUSHES * scale)
    run_seconds = RUN_SECONDS * scale
    telegram_n = min(total // 10, int(telegram_rate * run_seconds))
    rest = total - telegram_n
    line_single = max(0, min(rest, int(line_rate * run_seconds - rest / 500)))
    multicast_n = rest - line_single
    started = time.perf_counter()
    for start in range(0, max(line_single, telegram_n), 5000):
        pushes = [Push("line", [f"U{i:032x}"], [Reply(f"push {i}")], "push")
                  for i in range(start, min(start + 5000, line_single))]
        pushes += [Push("telegram", [str(100000 + i)], [Reply("event notice")], "event")
                   for i in range(start, min(start + 5000, telegram_n))]
        async with maker() as s, s.begin():
            await enqueue_many(s, pushes)
    async with maker() as s, s.begin():
        await enqueue_many(s, [
            Push("line", [f"U{i:032x}" for i in range(10**6 + b, 10**6 + min(b + 500, multicast_n))],
                 [Reply(f"alert {b // 500}")], "alert", ref="alert:1")
            for b in range(0, multicast_n, 500)
        ])
    enqueue_seconds = time.perf_counter() - started
    async with maker() as s:
        rows_total = await s.scalar(select(func.count()).select_from(M).where(M.kind != "calibration")) or 0

    # 3. the run: one relay, killed half-way, a new one started at once
    limits = {"line": ChannelLimit(rate=line_rate),
              "telegram": ChannelLimit(rate=telegram_rate, per_recipient_rate=1.0)}

    def new_relay() -> OutboxRelay:
        return OutboxRelay(maker, senders, RateLimiter(limits), lease=LEASE, poll_interval=0.2)

    t0 = time.time()
    first_relay = new_relay()
    first = asyncio.create_task(first_relay.run())
    while done(first_relay) < rows_total // 2:
        await asyncio.sleep(0.2)
    first.cancel()  # killed: rows in flight stay leased, nothing is stamped
    try:
        await first
    except asyncio.CancelledError:
        pass
    killed_at = time.time() - t0
    second_relay = new_relay()
    second = asyncio.create_task(second_relay.run())
    while done(first_relay, second_relay) < rows_total:
        await asyncio.sleep(0.2)
    second_relay.stop()
    await second
    stats = await channel_stats(t0, calibration=False)
    await close_senders(senders)
    await engine.dispose()

    conn.send("report")
    report = conn.recv()
    result: dict[str, Any] = {
        "enqueue_seconds": round(enqueue_seconds, 1), "killed_at_seconds": round(killed_at, 1),
        "calibrated_capacity_per_s": {c: round(capacity[c]["rate"], 1) for c in capacity},
        "line_requests": report["line_requests"],
        "line_409_retry_key_dedupes": report["line_statuses"].get(409, 0),
        "telegram_requests": report["telegram_requests"],
    }
    for channel, pushes, rate in (("line", line_single + multicast_n, line_rate),
                                  ("telegram", telegram_n, telegram_rate)):
        calibration_prefix = "C" if channel == "line" else "9"
        delivered = {k: v for k, v in report[channel].items()
                     if not (k[0].startswith(calibration_prefix) and len(k[0]) in (33, 6))}
        r = stats[channel]
        result[channel] = {
            "pushes": pushes, "requests": r["sent"], "failed_rows": r["failed"],
            "delivered_unique": len(delivered), "losses": pushes - len(delivered),
            "duplicates": sum(v - 1 for v in delivered.values()),
            "seconds": round(r["seconds"], 1), "achieved_per_s": round(r["rate"], 1), "allowed_per_s": rate,
            "share_of_allowed": round(r["rate"] / rate, 3),
        }
    return result


def run() -> dict[str, Any]:
    scale = float(os.environ.get("KURASHI_BENCH_OUTBOX_SCALE", "1"))
    result, backend = run_against_fakes(
        _serve_fakes, lambda url, fakes, conn: _bench(url, fakes, conn, scale), "bench-outbox.db")
    result["database"] = backend
    cap = result["calibrated_capacity_per_s"]
    line, tg = result["line"], result["telegram"]
    table = [
        (f"outbox ({backend}): {line['pushes'] + tg['pushes']:,} pushes queued in {result['enqueue_seconds']} s; "
         f"relay killed at {result['killed_at_seconds']} s, a new one started at once"),
        (f"calibrated capacity of one relay here: LINE {cap['line']} req/s, Telegram {cap['telegram']} msg/s; "
         f"allowed = {SHARE_OF_CAPACITY:.0%} of it, capped at {LINE_RATE_CAP:.0f} and {TELEGRAM_RATE_CAP:.0f} (30/s x4)"),
        (f"{'channel':<9} {'pushes':>7} {'requests':>8} {'seconds':>8} {'achieved/s':>10} {'allowed/s':>9} "
         f"{'share':>6} {'losses':>6} {'dups':>5}"),
    ]
    for channel in ("line", "telegram"):
        r = result[channel]
        table.append(f"{channel:<9} {r['pushes']:>7} {r['requests']:>8} {r['seconds']:>8} {r['achieved_per_s']:>10} "
                     f"{r['allowed_per_s']:>9} {r['share_of_allowed']:>6} {r['losses']:>6} {r['duplicates']:>5}")
    table.append(f"LINE multicast = 1 request per 500 users; 409s on resent retry keys: "
                 f"{result['line_409_retry_key_dedupes']}. Telegram duplicates = the documented crash window "
                 "(no idempotency key)")
    result["table"] = table
    return result
