import asyncio
from collections import Counter
from datetime import timedelta
from itertools import pairwise

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from bot.db import repo
from bot.db.models import OutboxMessage, User
from bot.privacy import prune_stored_rows
from delivery.messages import Choice, Reply
from delivery.outbox import (
    OutboxRelay,
    Push,
    delivery_report,
    enqueue,
    enqueue_many,
    prune_outbox,
    reply_from_dict,
    reply_to_dict,
)
from delivery.ratelimit import ChannelLimit
from tests.outbox.recording import FakeClock, RecordingSender, RetryLater

FAST = {"line": ChannelLimit(rate=100_000), "telegram": ChannelLimit(rate=100_000, per_recipient_rate=1000)}


def senders(clock=None, *, line_dedupes=True):
    return {
        "line": RecordingSender("line", 500, honours_retry_key=line_dedupes, clock=clock),
        "telegram": RecordingSender("telegram", 1, honours_retry_key=False, clock=clock),
    }


async def drain(relay: OutboxRelay) -> int:
    total = 0
    while (n := await relay.relay_once()) > 0:
        total += n
    return total


async def rows(sessionmaker) -> list[OutboxMessage]:
    async with sessionmaker() as s:
        return list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


def test_reply_round_trips_through_the_payload_dict():
    reply = Reply("hello", quick_replies=[Choice("a", "intent:a")], buttons=[Choice("b", "menu")])
    assert reply_from_dict(reply_to_dict(reply)) == reply


async def test_enqueue_splits_recipients_by_the_channel_maximum(sessionmaker):
    line_users = [f"U{i}" for i in range(1201)]
    async with sessionmaker() as s, s.begin():
        line_ids = await enqueue(s, channel="line", recipients=line_users + ["U0"], replies=[Reply("hi")],
                                 kind="alert", ref="alert:1")
        tg_ids = await enqueue(s, channel="telegram", recipients=["1", "2", "3"], replies=[Reply("hi")], kind="event")
    stored = await rows(sessionmaker)
    assert len(line_ids) == 3 and len(tg_ids) == 3
    assert [len(r.recipients) for r in stored] == [500, 500, 201, 1, 1, 1]
    assert [u for r in stored[:3] for u in r.recipients] == line_users
    assert len({r.retry_key for r in stored}) == 6
    assert {r.ref for r in stored[:3]} == {"alert:1"}


async def test_enqueue_many_writes_different_pushes_in_one_go(sessionmaker):
    pushes = [
        Push("line", ["U1", "U2"], [Reply("en")], "event", ref="event:1"),
        Push("telegram", ["5", "6"], [Reply("vi")], "event", ref="event:1"),
        Push("line", [], [Reply("nobody")], "event"),
    ]
    async with sessionmaker() as s, s.begin():
        ids = await enqueue_many(s, pushes)
    stored = await rows(sessionmaker)
    assert ids == [r.id for r in stored]
    assert [(r.channel, r.recipients, r.payload[0]["text"]) for r in stored] == [
        ("line", ["U1", "U2"], "en"), ("telegram", ["5"], "vi"), ("telegram", ["6"], "vi"),
    ]


async def test_enqueue_belongs_to_the_callers_transaction(sessionmaker):
    async with sessionmaker() as s, s.begin():
        await enqueue(s, channel="line", recipients=["U1"], replies=[Reply("x")], kind="push")
        await s.rollback()
    assert await rows(sessionmaker) == []


async def test_relay_delivers_every_queued_push_once(sessionmaker):
    clock = FakeClock()
    out = senders(clock)
    async with sessionmaker() as s, s.begin():
        await enqueue(s, channel="line", recipients=[f"U{i}" for i in range(1200)], replies=[Reply("alert")],
                      kind="alert", now=clock.now())
        await enqueue(s, channel="telegram", recipients=[str(i) for i in range(40)], replies=[Reply("event")],
                      kind="event", now=clock.now())
    relay = OutboxRelay(sessionmaker, out, FAST, clock, batch_size=50)

    handled = await drain(relay)

    assert handled == 3 + 40
    assert [len(p.recipients) for p in out["line"].calls] == [500, 500, 200]
    assert set(out["line"].received().values()) == {1} and len(out["line"].received()) == 1200
    assert set(out["telegram"].received().values()) == {1} and len(out["telegram"].received()) == 40
    stored = await rows(sessionmaker)
    assert {r.status for r in stored} == {"sent"}
    assert all(r.sent_at == clock.now() and r.claimed_until is None for r in stored)


async def test_rows_wait_for_their_send_after(sessionmaker):
    clock = FakeClock()
    out = senders(clock)
    async with sessionmaker() as s, s.begin():
        await enqueue(s, channel="line", recipients=["U1"], replies=[Reply("later")], kind="reminder",
                      send_after=clock.now() + timedelta(hours=1), now=clock.now())
    relay = OutboxRelay(sessionmaker, out, FAST, clock)
    assert await relay.relay_once() == 0
    clock.advance(3600)
    assert await relay.relay_once() == 1
    assert out["line"].received() == Counter({("U1", "later"): 1})


async def test_retry_later_honours_retry_after(sessionmaker):
    clock = FakeClock()
    out = senders(clock)
    out["telegram"].fail_next = [RetryLater("429 Too Many Requests", retry_after=120)]
    async with sessionmaker() as s, s.begin():
        await enqueue(s, channel="telegram", recipients=["7"], replies=[Reply("hi")], kind="push", now=clock.now())
    relay = OutboxRelay(sessionmaker, out, FAST, clock, backoff_base=1.0)
    t0 = clock.now()

    assert await relay.relay_once() == 1
    [row] = await rows(sessionmaker)
    assert (row.status, row.attempts, row.send_after) == ("pending", 1, t0 + timedelta(seconds=120))
    assert "429" in row.last_error

    clock.advance(119)
    assert await relay.relay_once() == 0
    clock.advance(1)
    assert await relay.relay_once() == 1
    [row] = await rows(sessionmaker)
    assert (row.status, row.attempts) == ("sent", 2)
    assert out["telegram"].received() == Counter({("7", "hi"): 1})


async def test_backoff_grows_and_the_relay_gives_up_after_max_attempts(sessionmaker):
    clock = FakeClock()
    out = senders(clock)
    out["line"].fail_next = [RetryLater("500") for _ in range(10)]
    async with sessionmaker() as s, s.begin():
        await enqueue(s, channel="line", recipients=["U1"], replies=[Reply("hi")], kind="push", now=clock.now())
    relay = OutboxRelay(sessionmaker, out, FAST, clock, backoff_base=10.0, backoff_cap=35.0, max_attempts=4)

    delays = []
    for _ in range(4):
        before = clock.now()
        assert await relay.relay_once() == 1
        [row] = await rows(sessionmaker)
        if row.status == "failed":
            break
        delays.append((row.send_after - before).total_seconds())
        clock.advance(delays[-1])

    assert row.status == "failed" and row.attempts == 4 and "gave up" in row.last_error
    ceilings = [10, 20, 35]  # base × 2^(n-1), capped
    assert len(delays) == 3
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings))
    assert out["line"].delivered == []


async def test_permanent_failure_marks_the_user_blocked(sessionmaker):
    clock = FakeClock()
    out = senders(clock)
    out["telegram"].blocked = {"42"}
    async with sessionmaker() as s, s.begin():
        await repo.get_or_create_user(s, "telegram", "42")
        await repo.get_or_create_user(s, "telegram", "43")
        await enqueue(s, channel="telegram", recipients=["42", "43"], replies=[Reply("news")], kind="event",
                      now=clock.now())
    relay = OutboxRelay(sessionmaker, out, FAST, clock)
    blocked_sends = {"channel": "telegram", "reason": "blocked"}
    before = REGISTRY.get_sample_value("kurashi_send_failures_total", blocked_sends) or 0

    assert await drain(relay) == 2

    assert REGISTRY.get_sample_value("kurashi_send_failures_total", blocked_sends) == before + 1
    stored = await rows(sessionmaker)
    assert [(r.recipients, r.status) for r in stored] == [(["42"], "failed"), (["43"], "sent")]
    assert "blocked" in stored[0].last_error
    async with sessionmaker() as s:
        status = dict((await s.execute(select(User.platform_user_id, User.status))).all())
    assert status == {"42": "blocked", "43": "active"}


async def test_an_unexpected_sender_error_is_retried_not_lost(sessionmaker):
    clock = FakeClock()
    out = senders(clock)
    out["line"].fail_next = [ConnectionResetError("peer went away")]
    async with sessionmaker() as s, s.begin():
        await enqueue(s, channel="line", recipients=["U1"], replies=[Reply("x")], kind="push", now=clock.now())
    relay = OutboxRelay(sessionmaker, out, FAST, clock, backoff_base=1.0)
    await relay.relay_once()
    clock.advance(5)
    await relay.relay_once()
    [row] = await rows(sessionmaker)
    assert row.status == "sent" and out["line"].received() == Counter({("U1", "x"): 1})


async def test_rows_to_one_busy_chat_are_rescheduled_not_failed(sessionmaker):
    clock = FakeClock()
    out = senders(clock)
    async with sessionmaker() as s, s.begin():
        for i in range(5):
            await enqueue(s, channel="telegram", recipients=["9"], replies=[Reply(f"m{i}")], kind="push",
                          now=clock.now())
    limits = {"telegram": ChannelLimit(rate=30, per_recipient_rate=1)}
    relay = OutboxRelay(sessionmaker, out, limits, clock, max_wait=0.5)

    for _ in range(20):
        await relay.relay_once()
        clock.advance(0.25)

    stored = await rows(sessionmaker)
    assert [(r.status, r.attempts) for r in stored] == [("sent", 1)] * 5
    assert [p.texts[0] for p in out["telegram"].delivered] == [f"m{i}" for i in range(5)]
    times = [p.at for p in out["telegram"].delivered]
    assert all(b - a >= 1.0 for a, b in pairwise(times))


async def test_two_concurrent_relays_send_no_row_twice(sessionmaker):
    out = senders(line_dedupes=False)  # count every call: a second call would be a duplicate
    async with sessionmaker() as s, s.begin():
        await enqueue(s, channel="telegram", recipients=[str(i) for i in range(300)], replies=[Reply("t")],
                      kind="alert")
        await enqueue(s, channel="line", recipients=[f"U{i}" for i in range(5000)], replies=[Reply("l")],
                      kind="alert")
    relays = [OutboxRelay(sessionmaker, out, FAST, batch_size=25) for _ in range(2)]

    handled = await asyncio.gather(*(drain(r) for r in relays))

    assert sum(handled) == 310 and all(n > 0 for n in handled)
    calls = out["line"].calls + out["telegram"].calls
    assert len(calls) == 310 and len({c.retry_key for c in calls}) == 310
    assert {r.status for r in await rows(sessionmaker)} == {"sent"}


async def test_a_relay_killed_mid_batch_loses_nothing_and_line_duplicates_nothing(sessionmaker):
    clock = FakeClock()
    out = senders(clock)
    async with sessionmaker() as s, s.begin():
        for i in range(100):
            await enqueue(s, channel="line", recipients=[f"U{i}-{j}" for j in range(500)], replies=[Reply("l")],
                          kind="alert", now=clock.now())
            await enqueue(s, channel="telegram", recipients=[str(i)], replies=[Reply("t")], kind="alert",
                          now=clock.now())
    # The platforms accept every push, but answers to the in-flight ones never come back
    # because the relay dies first (the worst moment: delivered, not yet stamped).
    gate = asyncio.Event()
    for sender in out.values():
        sender.gate = gate
    relay = OutboxRelay(sessionmaker, out, FAST, clock, batch_size=15, concurrency=30,
                        lease=timedelta(seconds=60))
    task = asyncio.create_task(relay.run())
    for _ in range(1000):
        if out["line"].entered + out["telegram"].entered >= 30:
            break
        await asyncio.sleep(0.01)
    # Accept the in-flight pushes, then kill the relay before it hears back.
    for sender in out.values():
        sender.gate = None
        in_flight = list(sender.calls)
        sender.delivered.extend(in_flight)
        sender.accepted_keys.update(p.retry_key for p in in_flight)
    killed_in_flight = {"line": len(out["line"].calls), "telegram": len(out["telegram"].calls)}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert killed_in_flight["line"] > 0 and killed_in_flight["telegram"] > 0
    assert killed_in_flight["line"] + killed_in_flight["telegram"] == 30

    clock.advance(61)  # the dead relay's leases run out
    await drain(OutboxRelay(sessionmaker, out, FAST, clock))

    assert {r.status for r in await rows(sessionmaker)} == {"sent"}
    line, telegram = out["line"].received(), out["telegram"].received()
    assert len(line) == 50_000 and set(line.values()) == {1}
    assert len(telegram) == 100
    duplicated = [k for k, n in telegram.items() if n > 1]
    assert all(n <= 2 for n in telegram.values())
    assert len(duplicated) == killed_in_flight["telegram"]


async def test_delivery_report_counts_recipients_by_status(sessionmaker):
    clock = FakeClock()
    out = senders(clock)
    out["telegram"].blocked = {"2"}
    async with sessionmaker() as s, s.begin():
        await enqueue(s, channel="telegram", recipients=["1", "2", "3"], replies=[Reply("a")], kind="alert",
                      ref="alert:7", now=clock.now())
        await enqueue(s, channel="line", recipients=["U1", "U2"], replies=[Reply("a")], kind="alert",
                      ref="alert:7", send_after=clock.now() + timedelta(hours=1), now=clock.now())
        await enqueue(s, channel="line", recipients=["U9"], replies=[Reply("b")], kind="alert", ref="alert:8",
                      now=clock.now())
    await drain(OutboxRelay(sessionmaker, out, FAST, clock))
    async with sessionmaker() as s:
        report = await delivery_report(s, "alert:7")
    assert report == {"pending": 2, "sent": 2, "failed": 1}


async def test_prune_outbox_keeps_pending_and_recent_rows(sessionmaker):
    clock = FakeClock()
    old = clock.now() - timedelta(days=40)
    async with sessionmaker() as s, s.begin():
        sent = await enqueue(s, channel="line", recipients=["U1"], replies=[Reply("old, sent")], kind="push", now=old)
        await enqueue(s, channel="line", recipients=["U2"], replies=[Reply("old, pending")], kind="push", now=old)
        sent += await enqueue(s, channel="line", recipients=["U3"], replies=[Reply("new, sent")], kind="push",
                              now=clock.now())
    async with sessionmaker() as s, s.begin():
        await s.execute(update(OutboxMessage).where(OutboxMessage.id.in_(sent)).values(status="sent"))
    async with sessionmaker() as s, s.begin():
        pruned = await prune_outbox(s, now=clock.now())
    assert pruned == 1
    assert [r.recipients for r in await rows(sessionmaker)] == [["U2"], ["U3"]]


async def test_graceful_stop_finishes_and_stamps_rows_in_flight(sessionmaker):
    out = senders()
    gate = asyncio.Event()
    out["line"].gate = gate
    async with sessionmaker() as s, s.begin():
        await enqueue(s, channel="line", recipients=["U1"], replies=[Reply("x")], kind="push")
    relay = OutboxRelay(sessionmaker, out, FAST)
    task = asyncio.create_task(relay.run())
    await wait_for(lambda: out["line"].entered == 1)

    stopping = asyncio.create_task(relay.stop_and_wait())
    gate.set()
    await stopping
    assert task.done()

    [row] = await rows(sessionmaker)
    assert row.status == "sent" and out["line"].received() == Counter({("U1", "x"): 1})


async def test_a_running_relay_keeps_the_lease_of_a_slow_send(sessionmaker):
    out = senders(line_dedupes=False)
    gate = asyncio.Event()
    out["line"].gate = gate
    async with sessionmaker() as s, s.begin():
        await enqueue(s, channel="line", recipients=["U1"], replies=[Reply("slow")], kind="push")
    slow = OutboxRelay(sessionmaker, out, FAST, lease=timedelta(seconds=1.5))
    task = asyncio.create_task(slow.run())
    await wait_for(lambda: out["line"].entered == 1)

    await asyncio.sleep(4)  # well past the first lease: renewed every 0.5 s meanwhile
    other = await OutboxRelay(sessionmaker, out, FAST).relay_once()
    gate.set()
    slow.stop()
    await task

    assert other == 0
    assert len(out["line"].calls) == 1
    assert [r.status for r in await rows(sessionmaker)] == ["sent"]


async def wait_for(predicate, attempts: int = 1000) -> None:
    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_a_429_with_retry_after_slows_the_whole_channel(sessionmaker):
    clock = FakeClock()
    out = senders(clock)
    out["telegram"].fail_next = [RetryLater("429", retry_after=10)]
    async with sessionmaker() as s, s.begin():
        await enqueue(s, channel="telegram", recipients=["1", "2"], replies=[Reply("x")], kind="event",
                      now=clock.now())
    relay = OutboxRelay(sessionmaker, out, FAST, clock)
    t0 = clock.monotonic()

    assert await relay.relay_once(max_rows=1) == 1   # chat 1: 429
    assert await relay.relay_once(max_rows=1) == 1   # chat 2 waits for the pause

    [second] = out["telegram"].delivered
    assert second.recipients == ["2"] and second.at - t0 >= 10


async def test_the_daily_prune_job_forgets_old_events_and_pushes(sessionmaker):
    from types import SimpleNamespace

    clock = FakeClock()
    long_ago = clock.now() - timedelta(days=60)
    async with sessionmaker() as s, s.begin():
        await repo.store_inbound_event(s, "line", "old", "{}", now=long_ago)
        ids = await enqueue(s, channel="line", recipients=["U1"], replies=[Reply("old")], kind="push", now=long_ago)
        await s.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(status="sent"))
        user, _ = await repo.get_or_create_user(s, "line", "U-prune")
        for when in (long_ago - timedelta(days=200), clock.now()):
            question = await repo.record_unanswered(s, user, "how do i x", language="en", decision="decline")
            vote = await repo.record_feedback(s, user, "garbage.sorting", -1, language="en", question="x")
            question.created_at = vote.created_at = when
    ctx = SimpleNamespace(sessionmaker=sessionmaker, now=clock.now,
                          settings=SimpleNamespace(insights_retention_days=180))

    assert await prune_stored_rows(ctx=ctx) == {
        "inbound_events": 1, "outbox": 1, "unanswered": 1, "feedback": 1, "web_mailbox": 0, "web_users": 0,
        "web_turns": 0}


async def test_a_hanging_send_is_abandoned_and_retried(sessionmaker):
    clock = FakeClock()
    out = senders(clock)
    out["line"].gate = asyncio.Event()  # never opened: the platform does not answer
    async with sessionmaker() as s, s.begin():
        await enqueue(s, channel="line", recipients=["U1"], replies=[Reply("x")], kind="push", now=clock.now())
    relay = OutboxRelay(sessionmaker, out, FAST, clock, send_timeout=0.2, backoff_base=1.0)

    assert await relay.relay_once() == 1

    [row] = await rows(sessionmaker)
    assert row.status == "pending" and row.claimed_until is None and "no answer" in row.last_error
    out["line"].gate = None
    clock.advance(5)
    await relay.relay_once()
    assert out["line"].received() == Counter({("U1", "x"): 1})
