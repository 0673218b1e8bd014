"""Limits across processes and endpoints, and the claim's index:
- one Telegram budget for the bot on PostgreSQL: two relays (two processes' limiters) share
  30 messages/s instead of sending 30/s each;
- LINE limits per endpoint: multicasts draw from their own 200 requests/s, pushes from
  2,000/s (one 1,000/s bucket for both let a big alert's multicasts draw 429s);
- the relay's claim of pending rows uses the partial index ix_outbox_pending (SQLite and
  PostgreSQL), not a scan and sort of every sent row."""
from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, text

from bot.db.models import utcnow
from delivery.budget import build_limiter
from delivery.messages import Reply
from delivery.outbox import OutboxRelay, Push, enqueue_many
from delivery.ratelimit import DEFAULT_LIMITS, ChannelLimit, limit_key
from tests.outbox.recording import FakeClock, RecordingSender


async def test_the_telegram_budget_is_one_for_all_processes_on_postgresql(database_url, sessionmaker) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite deployments run one process (its in-process bucket is the bot's budget)")
    limits = {"telegram": ChannelLimit(rate=30.0, per_recipient_rate=1000.0)}
    first, second = build_limiter(sessionmaker, limits), build_limiter(sessionmaker, limits)
    assert first.shared and second.shared

    async def send(limiter, name: str) -> None:
        for i in range(45):
            await limiter.acquire("telegram", [f"{name}-{i}"])

    started = time.monotonic()
    await asyncio.gather(send(first, "a"), send(second, "b"))
    elapsed = time.monotonic() - started
    # 90 messages at 30/s with a burst of 30: at least 2 s for both (each alone would take 0.5 s).
    assert elapsed >= 1.8, elapsed


def test_line_limits_are_per_endpoint() -> None:
    assert DEFAULT_LIMITS["line"].rate == 2000 and DEFAULT_LIMITS["line:multicast"].rate == 200
    assert limit_key("line", 1) == "line" and limit_key("line", 2) == "line:multicast"
    assert limit_key("telegram", 1) == "telegram"


async def test_the_relay_draws_multicasts_and_pushes_from_their_own_buckets(sessionmaker) -> None:
    clock = FakeClock()
    line = RecordingSender("line", 500, honours_retry_key=True, clock=clock)
    limits = {"line": ChannelLimit(rate=2000.0), "line:multicast": ChannelLimit(rate=10.0, burst=1.0)}
    relay = OutboxRelay(sessionmaker, {"line": line}, limits, clock=clock, max_wait=1000)
    async with sessionmaker() as session, session.begin():
        await enqueue_many(session, [Push("line", [f"U{i:032x}", f"U{i + 100:032x}"], [Reply("alert")], "alert")
                                     for i in range(6)], now=clock.now())
        await enqueue_many(session, [Push("line", [f"U{i + 200:032x}"], [Reply("reply")], "reply")
                                     for i in range(6)], now=clock.now())
    await relay.relay_once()
    multicasts = sorted(p.at for p in line.calls if len(p.recipients) > 1)
    pushes = sorted(p.at for p in line.calls if len(p.recipients) == 1)
    assert len(multicasts) == 6 and len(pushes) == 6
    assert multicasts[-1] - multicasts[0] >= 0.45          # 10 requests/s for multicasts
    assert pushes[-1] - pushes[0] <= 0.01                  # pushes are not held behind them


async def test_the_claim_uses_the_partial_index_of_pending_rows(db_engine, sessionmaker) -> None:
    """Many sent rows and many pending ones (a large alert being sent): the claim reads the
    first due pending rows of its channel from the partial index, in order — no sort."""
    now = utcnow()
    async with sessionmaker() as session, session.begin():
        await enqueue_many(session, [Push("line", [f"U{i:032x}"], [Reply("old")], "reply") for i in range(3000)],
                           now=now)
        await session.execute(text("UPDATE outbox SET status = 'sent'"))
        await enqueue_many(session, [Push(channel, [f"U{i:032x}"], [Reply("new")], "alert")
                                     for i in range(3000) for channel in ("line", "telegram")], now=now)
    async with db_engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM outbox" in statement:
            captured.append((statement, parameters))

    event.listen(db_engine.sync_engine, "before_cursor_execute", capture)
    try:
        relay = OutboxRelay(sessionmaker, {"line": RecordingSender("line", 500, honours_retry_key=True)},
                            {"line": ChannelLimit(rate=100_000)})
        assert await relay.relay_once(5) == 5
    finally:
        event.remove(db_engine.sync_engine, "before_cursor_execute", capture)
    statement, parameters = captured[0]
    postgres = db_engine.dialect.name == "postgresql"
    explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
    async with db_engine.connect() as conn:
        rows = await conn.exec_driver_sql(explain + statement, parameters)
        plan = "\n".join(str(r) for r in rows.all())
    assert "ix_outbox_pending" in plan, plan
    assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan


async def test_leases_are_sized_to_the_work(sessionmaker) -> None:
    """200 Telegram rows claimed at 30 messages/s take ~6.7 s to let through: their lease
    covers that, not just the base lease of 5 s."""
    from sqlalchemy import select

    from bot.db.models import OutboxMessage

    clock = FakeClock()
    telegram = RecordingSender("telegram", 1, honours_retry_key=False, clock=clock)
    relay = OutboxRelay(sessionmaker, {"telegram": telegram}, {"telegram": ChannelLimit(rate=30.0)},
                        clock=clock, lease=timedelta(seconds=5), send_timeout=10.0)
    async with sessionmaker() as session, session.begin():
        await enqueue_many(session, [Push("telegram", [str(1000 + i)], [Reply("alert")], "alert")
                                     for i in range(200)], now=clock.now())
    claimed = await relay._claim(200)
    assert len(claimed) == 200
    async with sessionmaker() as session:
        until = set((await session.execute(select(OutboxMessage.claimed_until))).scalars())
    (lease_end,) = until
    assert (lease_end - clock.now()).total_seconds() >= 5 + 200 / 30 - 0.01


async def test_waiting_budget_reservations_hold_one_connection_not_the_pool(database_url, db_engine, sessionmaker):
    """Telegram rows waiting for the shared budget (its row locked meanwhile) keep one pooled
    connection between them: the relay's stamps, claims and renewals still get theirs."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the shared budget exists on PostgreSQL only")
    from delivery.budget import SharedBucket

    bucket = SharedBucket(sessionmaker, "send:telegram", rate=30.0)
    await bucket.reserve(0)   # the budget's row exists
    async with sessionmaker() as blocker, blocker.begin():
        await blocker.execute(text("SELECT level FROM rate_budget WHERE name = 'send:telegram' FOR UPDATE"))
        waiting = [asyncio.create_task(bucket.reserve()) for _ in range(20)]
        for _ in range(500):
            async with db_engine.connect() as probe:
                blocked = await probe.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"))
            if blocked:
                break
            await asyncio.sleep(0.01)
        for _ in range(50):   # whatever else could take a connection now, does
            await asyncio.sleep(0.01)
        in_use = db_engine.pool.checkedout()
    assert await asyncio.gather(*waiting) and in_use == 2, in_use   # the blocker's and one reservation's


async def test_reservations_asked_together_are_taken_together_each_with_its_place_in_line(database_url, sessionmaker):
    if not database_url.startswith("postgresql"):
        pytest.skip("the shared budget exists on PostgreSQL only")
    from delivery.budget import SharedBucket

    bucket = SharedBucket(sessionmaker, "send:test-line", rate=10.0, burst=1.0)
    waits = await asyncio.gather(*(bucket.reserve() for _ in range(5)))
    # one token in the bucket, then one every 0.1 s, in the order asked
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4], abs=0.05)
