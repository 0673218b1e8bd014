"""Telegram's crash window (no idempotency key there): what a relay killed with kill -9 sends again.

- A row holds one of its channel's ``max_in_flight`` slots from its rate-limit reservation
  to its committed "sent" stamp, so at most that many Telegram rows are ever between their
  request and their stamp — what a kill repeats — however many rows the relay has claimed.
- On PostgreSQL a row locked by another transaction (forget-me changing a pending push, say)
  holds up neither the stamps of other rows nor the renewal of the other leases.
- Among the relay's own waiting transactions (SQLite takes them one at a time) a stamp goes
  first.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.db.models import OutboxMessage
from delivery.messages import Reply
from delivery.outbox import OutboxRelay, _Turns, enqueue
from delivery.ratelimit import ChannelLimit
from tests.outbox.recording import FakeClock, RecordingSender

FAST = {"line": ChannelLimit(rate=100_000), "telegram": ChannelLimit(rate=100_000, per_recipient_rate=1000)}


class AuditingTelegram(RecordingSender):
    """Telegram that notes, as each push starts, how many pushed rows (this one included) have
    no committed "sent" stamp yet: what a kill -9 at that moment would deliver twice."""

    def __init__(self, sessionmaker, clock=None) -> None:
        super().__init__("telegram", 1, honours_retry_key=False, clock=clock)
        self.sessionmaker = sessionmaker
        self.started = 0
        self.exposure: list[int] = []

    async def push(self, recipients, replies, *, retry_key):
        self.started += 1
        started = self.started   # pushes started so far; stamps are counted after: never too many
        async with self.sessionmaker() as session:
            stamped = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.channel == "telegram", OutboxMessage.status == "sent"))
        self.exposure.append(started - stamped)
        await super().push(recipients, replies, retry_key=retry_key)


async def queue_telegram(sessionmaker, chats, clock=None) -> list[int]:
    async with sessionmaker() as s, s.begin():
        return await enqueue(s, channel="telegram", recipients=chats, replies=[Reply("flood warning")],
                             kind="alert", now=clock.now() if clock else None)


async def eventually(check: Callable[[], Awaitable[bool]], attempts: int = 500) -> None:
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_telegram_rows_between_request_and_stamp_never_exceed_max_in_flight(sessionmaker):
    clock = FakeClock()
    telegram = AuditingTelegram(sessionmaker, clock)
    await queue_telegram(sessionmaker, [str(100 + i) for i in range(40)], clock)
    relay = OutboxRelay(sessionmaker, {"telegram": telegram}, FAST, clock, max_in_flight={"telegram": 3})

    assert await relay.relay_once() == 40   # all 40 claimed and sent concurrently

    assert len(telegram.exposure) == 40 and max(telegram.exposure) <= 3, telegram.exposure
    assert len(telegram.received()) == 40 and set(telegram.received().values()) == {1}


async def test_the_default_bound_follows_the_channels_rate(sessionmaker):
    telegram = RecordingSender("telegram", 1, honours_retry_key=False)
    line = RecordingSender("line", 500, honours_retry_key=True)
    relay = OutboxRelay(sessionmaker, {"telegram": telegram, "line": line},
                        {"telegram": ChannelLimit(rate=30.0, per_recipient_rate=1.0), "line": ChannelLimit(rate=2000)})
    assert relay.max_in_flight == {"telegram": 15}   # 30/s for 0.5 s; LINE dedupes by its retry key: no bound


async def test_a_kill_repeats_at_most_max_in_flight_telegram_messages(sessionmaker):
    clock = FakeClock()
    telegram = RecordingSender("telegram", 1, honours_retry_key=False, clock=clock)
    await queue_telegram(sessionmaker, [str(100 + i) for i in range(40)], clock)
    gate = asyncio.Event()   # never opened: Telegram takes the requests and does not answer before the kill
    telegram.gate = gate
    relay = OutboxRelay(sessionmaker, {"telegram": telegram}, FAST, clock, max_in_flight={"telegram": 3},
                        lease=timedelta(seconds=60))
    task = asyncio.create_task(relay.run())
    for _ in range(1000):
        if telegram.entered >= 3:
            break
        await asyncio.sleep(0.01)
    for _ in range(50):   # whatever else could start now, starts
        await asyncio.sleep(0)
    # Telegram accepts what is in flight; the relay is killed before it hears back.
    in_flight = list(telegram.calls)
    telegram.delivered.extend(in_flight)
    telegram.gate = None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(in_flight) == 3

    clock.advance(61)   # the dead relay's leases run out
    while await OutboxRelay(sessionmaker, {"telegram": telegram}, FAST, clock).relay_once() > 0:
        pass

    received = telegram.received()
    assert len(received) == 40
    assert sorted(received.values()) == [1] * 37 + [2] * 3


async def test_a_locked_row_holds_up_no_stamp_and_no_other_lease(database_url, sessionmaker):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite locks the whole file: a transaction holding it holds up every writer, stamps included")
    m = OutboxMessage
    telegram = RecordingSender("telegram", 1, honours_retry_key=False)
    telegram.holds = {chat: asyncio.Event() for chat in ("1", "2", "3")}   # no answers until told
    x, y, z = await queue_telegram(sessionmaker, ["1", "2", "3"])
    relay = OutboxRelay(sessionmaker, {"telegram": telegram}, FAST, lease=timedelta(seconds=3))  # renewed every 1 s
    task = asyncio.create_task(relay.run())

    async def value(column, row_id):
        async with sessionmaker() as s:
            return await s.scalar(select(column).where(m.id == row_id))

    await eventually(lambda: asyncio.sleep(0, len(telegram.calls) == 3))
    async with sessionmaker() as blocker, blocker.begin():
        # another transaction (forget-me changing this pending push, say) locks row x meanwhile
        await blocker.execute(select(m.id).where(m.id == x).with_for_update())
        z_lease = await value(m.claimed_until, z)

        async def z_renewed() -> bool:
            return await value(m.claimed_until, z) > z_lease

        await eventually(z_renewed)   # the next renewal extends the other leases …

        async def y_stamped() -> bool:
            return await value(m.status, y) == "sent"

        telegram.holds["2"].set()
        await eventually(y_stamped)   # … and y's stamp does not wait for x's lock
    for hold in telegram.holds.values():
        hold.set()
    await relay.stop_and_wait()
    await task

    async with sessionmaker() as s:
        assert set((await s.execute(select(m.status))).scalars()) == {"sent"}
    assert sorted(telegram.received().values()) == [1, 1, 1]


async def test_a_waiting_stamp_goes_before_waiting_claims_and_renewals():
    turns = _Turns(exclusive=True)
    order: list[str] = []
    release = asyncio.Event()

    async def take(name: str, priority: int, hold: asyncio.Event | None = None) -> None:
        async with turns.turn(priority):
            order.append(name)
            if hold is not None:
                await hold.wait()

    claim = asyncio.create_task(take("claim", _Turns.OTHER, release))
    await asyncio.sleep(0)
    renewal = asyncio.create_task(take("renewal", _Turns.OTHER))
    gone = asyncio.create_task(take("cancelled stamp", _Turns.STAMP))
    stamp = asyncio.create_task(take("stamp", _Turns.STAMP))
    for _ in range(3):
        await asyncio.sleep(0)
    gone.cancel()
    release.set()
    await asyncio.gather(claim, renewal, stamp)

    assert order == ["claim", "stamp", "renewal"]
    assert gone.cancelled()


async def test_without_exclusive_turns_nobody_waits():
    turns = _Turns(exclusive=False)   # PostgreSQL
    inside = 0
    both = asyncio.Event()

    async def take() -> None:
        nonlocal inside
        async with turns.turn(_Turns.OTHER):
            inside += 1
            if inside == 2:
                both.set()
            await both.wait()

    await asyncio.gather(take(), take())
    assert inside == 2
