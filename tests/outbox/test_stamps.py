"""How the relay writes its "sent" stamps (delivery/outbox.py, ``OutboxRelay._stamp``).

- A stamp write the database refuses (locked: SQLite's file lock, a PostgreSQL row lock
  past ``lock_timeout``) is tried again with the next write (``STAMP_TRIES`` in all): the
  row ends "sent" once and is not sent again.
- A keyed channel's stamp (LINE, web, e-mail: a repeat is dropped by the retry key) waits
  ``STAMP_LINGER`` for company, so keyed stamps arriving within it share one write; a
  Telegram stamp does not wait and takes the waiting keyed stamps with it.

The database refuses for real: the relay's engine is this test's own, with a short lock
wait, and another connection holds the lock until the first refusal.
"""
from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.models import OutboxMessage
from bot.db.session import create_engine_and_sessionmaker, is_sqlite, sync_url
from delivery.messages import Reply
from delivery.outbox import STAMP_LINGER, OutboxRelay, enqueue
from delivery.ratelimit import ChannelLimit
from tests.outbox.recording import FakeClock, RecordingSender

FAST = {"line": ChannelLimit(rate=100_000), "telegram": ChannelLimit(rate=100_000, per_recipient_rate=1000)}
LOCK_WAIT_MS = 100   # how long the relay's connections wait for a lock before the database refuses


def _relay_engine(database_url: str):
    """An engine whose transactions give up on a lock after LOCK_WAIT_MS (the project's wait 30 s)."""
    if is_sqlite(database_url):
        engine, maker = create_engine_and_sessionmaker(database_url)

        @event.listens_for(engine.sync_engine, "connect")
        def _short_busy_wait(dbapi_connection: Any, _record: Any) -> None:   # after the project's hook
            dbapi_connection.cursor().execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")

        return engine, maker
    return create_engine_and_sessionmaker(
        database_url, connect_args={"server_settings": {"lock_timeout": f"{LOCK_WAIT_MS}ms"}})


def _lock(database_url: str, row_id: int) -> Callable[[], None]:
    """Take, on a connection of its own, a lock the stamp of ``row_id`` must wait for; returns its release."""
    if is_sqlite(database_url):
        conn = sqlite3.connect(make_url(database_url).database, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")   # the file's write lock
    else:
        conn = psycopg.connect(make_url(sync_url(database_url)).set(drivername="postgresql")
                               .render_as_string(hide_password=False))
        conn.execute("SELECT id FROM outbox WHERE id = %s FOR UPDATE", (row_id,))

    def release() -> None:
        conn.rollback()
        conn.close()

    return release


def _refused_once(engine: AsyncEngine, release: Callable[[], None]) -> list[BaseException]:
    """Lift the lock as soon as the database has refused one statement; returns the refusals seen."""
    refusals: list[BaseException] = []

    @event.listens_for(engine.sync_engine, "handle_error")
    def _lift(context: Any) -> None:
        refusals.append(context.original_exception)
        if len(refusals) == 1:
            release()

    return refusals


async def _until(check: Callable[[], bool]) -> None:
    for _ in range(5000):
        if check():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached")


async def _stored(sessionmaker) -> dict[int, OutboxMessage]:
    async with sessionmaker() as s:
        return {r.id: r for r in (await s.execute(select(OutboxMessage))).scalars()}


async def test_a_refused_telegram_stamp_is_written_by_the_next_try_and_the_row_is_not_sent_again(database_url):
    engine, sessionmaker = _relay_engine(database_url)
    try:
        clock = FakeClock()
        telegram = RecordingSender("telegram", 1, honours_retry_key=False, clock=clock)
        telegram.gate = asyncio.Event()
        async with sessionmaker() as s, s.begin():
            (row_id,) = await enqueue(s, channel="telegram", recipients=["42"], replies=[Reply("flood warning")],
                                      kind="alert", now=clock.now())
        relay = OutboxRelay(sessionmaker, {"telegram": telegram}, FAST, clock, lease=timedelta(seconds=60))
        relaying = asyncio.create_task(relay.relay_once())
        await _until(lambda: telegram.entered == 1)   # claimed (committed), the request under way

        refusals = _refused_once(engine, _lock(database_url, row_id))
        telegram.gate.set()   # Telegram accepts; the stamp meets the lock and is refused
        assert await relaying == 1

        assert len(refusals) == 1, refusals   # refused once for real, then written
        stored = await _stored(sessionmaker)
        assert stored[row_id].status == "sent" and stored[row_id].attempts == 1
        assert relay.stats["sent"] == 1

        clock.advance(61)   # past the lease: a row left unstamped would be claimed and sent again
        assert await OutboxRelay(sessionmaker, {"telegram": telegram}, FAST, clock).relay_once() == 0
        assert len(telegram.calls) == 1 and telegram.received() == {("42", "flood warning"): 1}
    finally:
        await engine.dispose()


class Returning(RecordingSender):
    """A platform whose answer to each recipient is held until released; notes when it answered."""

    def __init__(self, channel: str, *, honours_retry_key: bool) -> None:
        super().__init__(channel, 500, honours_retry_key=honours_retry_key)
        self.answered: dict[str, float] = {}

    async def push(self, recipients, replies, *, retry_key):
        await super().push(recipients, replies, retry_key=retry_key)
        for recipient in recipients:
            self.answered[recipient] = asyncio.get_running_loop().time()


def _held(*senders: Returning, recipients: list[str]) -> dict[str, asyncio.Event]:
    holds = {r: asyncio.Event() for r in recipients}
    for sender in senders:
        sender.holds = holds
    return holds


def _commits(engine: AsyncEngine) -> list[float]:
    """The event loop's time of every transaction committed on ``engine`` from now on."""
    commits: list[float] = []
    event.listen(engine.sync_engine, "commit", lambda _conn: commits.append(asyncio.get_running_loop().time()))
    return commits


async def _queue(sessionmaker, channel: str, recipient: str) -> int:
    async with sessionmaker() as s, s.begin():
        (row_id,) = await enqueue(s, channel=channel, recipients=[recipient], replies=[Reply("notice")], kind="event")
    return row_id


async def _answer(holds: dict[str, asyncio.Event], recipient: str, *senders: Returning) -> None:
    """Let the platform answer ``recipient``; return once the relay has its outcome (its stamp under way)."""
    holds[recipient].set()
    while not any(recipient in s.answered for s in senders):
        await asyncio.sleep(0)   # event-loop turns only: no timer of ours lets a linger run out meanwhile


async def test_keyed_stamps_arriving_within_the_linger_share_one_write(sessionmaker, db_engine):
    line = Returning("line", honours_retry_key=True)
    web = Returning("web", honours_retry_key=True)
    holds = _held(line, web, recipients=["U1", "U2", "w3"])
    ids = [await _queue(sessionmaker, "line", "U1"), await _queue(sessionmaker, "line", "U2"),
           await _queue(sessionmaker, "web", "w3")]
    commits = _commits(db_engine)
    relay = OutboxRelay(sessionmaker, {"line": line, "web": web}, FAST)
    relaying = asyncio.create_task(relay.relay_once())
    await _until(lambda: len(line.calls) + len(web.calls) == 3)
    claimed = len(commits)

    for recipient in ("U1", "U2", "w3"):   # the answers come back one after another
        await _answer(holds, recipient, line, web)
    assert await relaying == 3
    stamps = commits[claimed:]

    stored = await _stored(sessionmaker)
    assert {stored[i].status for i in ids} == {"sent"}
    assert len(stamps) == 1, stamps   # one write …
    assert len({stored[i].sent_at for i in ids}) == 1   # … stamps its rows with one time
    assert stamps[0] - line.answered["U1"] >= STAMP_LINGER   # the first waited for the others


async def test_a_telegram_stamp_takes_the_waiting_keyed_stamps_with_it(sessionmaker, db_engine):
    commits = _commits(db_engine)
    lags = []
    for attempt in range(3):   # a busy machine can delay a write past the linger: the best of 3 counts
        line = Returning("line", honours_retry_key=True)
        telegram = Returning("telegram", honours_retry_key=False)
        holds = _held(line, telegram, recipients=[f"U{attempt}", f"{attempt}"])
        line_row = await _queue(sessionmaker, "line", f"U{attempt}")
        telegram_row = await _queue(sessionmaker, "telegram", f"{attempt}")
        relay = OutboxRelay(sessionmaker, {"line": line, "telegram": telegram}, FAST)
        relaying = asyncio.create_task(relay.relay_once())
        await _until(lambda line=line, telegram=telegram: len(line.calls) + len(telegram.calls) == 2)
        claimed = len(commits)

        await _answer(holds, f"U{attempt}", line)          # LINE's stamp now waits for company …
        await _answer(holds, f"{attempt}", telegram)       # … Telegram's arrives: it writes at once, both
        assert await relaying == 2
        stamps = commits[claimed:]

        stored = await _stored(sessionmaker)
        assert stored[line_row].status == stored[telegram_row].status == "sent"
        assert len(stamps) == 1, stamps   # one write
        assert stored[line_row].sent_at == stored[telegram_row].sent_at
        lags.append(stamps[0] - line.answered[f"U{attempt}"])
        if lags[-1] < STAMP_LINGER:
            break
    # committed before LINE's linger was over: Telegram's stamp waited for nothing
    # (were it to wait as well, every attempt would take STAMP_LINGER at least)
    assert min(lags) < STAMP_LINGER, lags
