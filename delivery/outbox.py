"""The durable outbox: ``enqueue`` pushes in the caller's transaction, ``OutboxRelay`` sends them.

Owns the life of an ``outbox`` row: pending → (leased) → sent | pending again later (retry)
| failed. Everything that is not a direct reply to the user's own message goes through
here (consultation replies, alerts, event notices, reminders, expired LINE reply tokens).

Must not import platform SDKs, the conversation core or the channel adapters' modules: it
talks to adapters only through ``delivery.senders.ChannelSender`` and its neutral errors.

Delivery guarantees (read before relying on them):
- Nothing is lost. A row is leased (``claimed_until = now + lease``, committed) before it
  is sent and stamped sent/failed after; a relay killed in between leaves the lease to run
  out, and any relay then claims the row again.
- LINE: nothing is delivered twice. A row keeps the ``retry_key`` fixed at enqueue; LINE
  (and tests/fakes' fake) drops a second request with the same X-Line-Retry-Key with 409,
  which the adapter reports as success.
- Telegram has no idempotency key, so a relay killed after Telegram accepted a message
  but before the row was stamped sends that message again: one duplicate per row that was
  between its request and its committed "sent" stamp at the moment of the crash. That
  number is bounded: a channel without a retry key (``UNKEYED_CHANNELS``) has
  ``max_in_flight`` slots (default what its rate needs when a row's rate-limit wait,
  request and stamp take ``IN_FLIGHT_SECONDS``: 15 at Telegram's 30/s), and a row holds its
  slot from its rate-limit reservation until its stamp is committed — so a kill -9 repeats
  at most that many messages, however slow the platform, the event loop or the database.
  Most of it is inherent: a request on its way to Telegram or back (about rate × round
  trip: ~8 at 30/s from Japan). The rest, push returned → stamp committed, is kept short:
  - a Telegram row is stamped as soon as its send returns, with the rows that finished
    meanwhile (one write at a time; no line of waiters to wake one by one); the other
    channels' stamps (a repeat is dropped by their retry key) wait ``STAMP_LINGER`` for
    company, so there are fewer writes to wait behind;
  - a stamp waits for at most one of the relay's own transactions already under way.
    SQLite: stamps go first among the relay's waiting transactions, lease renewals go in
    chunks of ``RENEW_CHUNK``. PostgreSQL: stamps wait for none of them, nor for the disk
    (``synchronous_commit`` off: a crash of the database server can make a row be sent
    again, never lose one); renewals skip rows locked by a stamp or anyone else; the
    shared Telegram budget reserves for all waiting sends over one connection, so it cannot
    take the pool's connections from the stamps.
  ``kurashi_outbox_stamp_lag_seconds`` measures that part; ``python -m bench outbox``
  measures both with kill -9.
- Multi-message rows to Telegram (several sendMessage calls) that fail half-way are
  retried whole, so the first messages can arrive twice; keep pushes to one message.
- On PostgreSQL any number of relays may run: rows are claimed with
  ``SELECT … FOR UPDATE SKIP LOCKED``. On SQLite, claims are serialised by the
  ``BEGIN IMMEDIATE`` every transaction starts with (bot/db/session.py), so the same lease
  logic is safe with several relays in one process.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import logging
import math
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.models import OUTBOX_FAILED, OUTBOX_PENDING, OUTBOX_SENT, OutboxMessage, utcnow
from bot.metrics import observe_stamp_lag, record_send_failure
from delivery.messages import Card, Choice, Reply
from delivery.ratelimit import ChannelLimit, Clock, RateLimiter, SystemClock, limit_key
from delivery.senders import ChannelSender, PermanentFailure, RetryLater

log = logging.getLogger(__name__)

#: How many recipients one identical-message call may address (LINE multicast: 500).
CHANNEL_MAX_RECIPIENTS: dict[str, int] = {"line": 500, "telegram": 1}
#: Platform limits used to estimate how many requests/messages a row costs.
LINE_MESSAGES_PER_REQUEST = 5
LINE_TEXT_LIMIT = 5000
TELEGRAM_TEXT_LIMIT = 4096
#: A Retry-After pauses the whole channel for at most this long (the row itself waits the full time).
MAX_CHANNEL_PAUSE = 300.0
#: At most this much is added to a claim's lease for the rate-limit wait of its rows.
MAX_LEASE_EXTRA = 3600.0
#: Channels whose platform has no idempotency key: a send that was accepted but not yet
#: stamped when the relay dies is delivered twice. Their sends in flight are bounded.
UNKEYED_CHANNELS = frozenset({"telegram"})
#: Default bound of an unkeyed channel's sends in flight: enough for its allowed rate when a
#: row's wait for its rate-limit slot, its request and its stamp take this long (Telegram at
#: 30/s: 15 rows; from Japan the request alone is ~0.25-0.3 s). Slower sends slow the channel
#: down instead of widening the crash window.
IN_FLIGHT_SECONDS = 0.5
#: Writes an outcome is tried in before it is given up (its row is then sent again).
STAMP_TRIES = 3
#: Seconds the stamp of a keyed channel's row (LINE, web, e-mail) waits for company.
STAMP_LINGER = 0.025
#: Held rows whose lease one renewal transaction extends (a stamp waits for at most one).
RENEW_CHUNK = 100
#: PostgreSQL: this transaction's commit does not wait for the WAL to reach the disk.
_NO_DISK_WAIT = text("SET LOCAL synchronous_commit TO OFF")


# --- payload (de)serialisation ---------------------------------------------------------


def reply_to_dict(reply: Reply) -> dict[str, Any]:
    """A Reply as the JSON stored in ``outbox.payload``."""
    return {
        "text": reply.text,
        "quick_replies": [{"label": c.label, "data": c.data} for c in reply.quick_replies],
        "buttons": [{"label": c.label, "data": c.data} for c in reply.buttons],
        "card": asdict(reply.card) if reply.card is not None else None,
    }


def reply_from_dict(data: Mapping[str, Any]) -> Reply:
    """The Reply stored by ``reply_to_dict``."""
    card = data.get("card")
    return Reply(
        text=data.get("text", ""),
        quick_replies=[Choice(label=c["label"], data=c["data"]) for c in data.get("quick_replies") or []],
        buttons=[Choice(label=c["label"], data=c["data"]) for c in data.get("buttons") or []],
        card=Card(**card) if card else None,
    )


def send_cost(channel: str, replies: Sequence[Mapping[str, Any]]) -> float:
    """Requests (LINE) or messages (Telegram) one row needs, for the rate limiter.

    LINE: one call carries up to 5 messages (a multicast is one request whatever the
    number of recipients); Telegram: one sendMessage per message part.
    """
    if channel == "line":
        messages = sum(max(1, math.ceil(len(r.get("text") or "") / LINE_TEXT_LIMIT)) for r in replies)
        return float(max(1, math.ceil(messages / LINE_MESSAGES_PER_REQUEST)))
    if channel == "telegram":
        return float(max(1, sum(max(1, math.ceil(len(r.get("text") or "") / TELEGRAM_TEXT_LIMIT))
                                for r in replies)))
    return float(max(1, len(replies)))


# --- enqueue ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Push:
    """One push for ``enqueue_many``: identical ``replies`` to every recipient."""

    channel: str
    recipients: Sequence[str]
    replies: Sequence[Reply | Mapping[str, Any]]
    kind: str
    ref: str | None = None
    send_after: datetime | None = None
    #: Fixed instead of random (e.g. derived from the inbound event a reply belongs to), so
    #: the same push queued twice — an event processed again after a crash — has LINE's
    #: same X-Line-Retry-Key and is delivered once.
    retry_key: str | None = None


async def enqueue(
    session: AsyncSession,
    *,
    channel: str,
    recipients: Iterable[str],
    replies: Sequence[Reply | Mapping[str, Any]],
    kind: str,
    ref: str | None = None,
    send_after: datetime | None = None,
    now: datetime | None = None,
    retry_key: str | None = None,
) -> list[int]:
    """Queue ``replies`` for every recipient; returns the new outbox row ids.

    Runs in the caller's transaction and does not commit, so the push is sent if and only
    if the change that causes it is committed. Recipients (duplicates removed, order kept)
    are split into rows of the channel's maximum per call (LINE 500, Telegram 1); each row
    gets its own retry key, fixed for all its retries.
    """
    push = Push(channel, list(recipients), replies, kind, ref, send_after, retry_key)
    return await enqueue_many(session, [push], now=now)


async def enqueue_many(session: AsyncSession, pushes: Iterable[Push], *, now: datetime | None = None) -> list[int]:
    """``enqueue`` for many different pushes in one INSERT (e.g. one per user or per language)."""
    now = now or utcnow()
    rows: list[dict[str, Any]] = []
    for push in pushes:
        unique = list(dict.fromkeys(str(r) for r in push.recipients))
        if not unique:
            continue
        if not push.replies:
            raise ValueError("a push needs at least one reply")
        payload = [reply_to_dict(r) if isinstance(r, Reply) else dict(r) for r in push.replies]
        per_row = CHANNEL_MAX_RECIPIENTS.get(push.channel, 1)
        for i in range(0, len(unique), per_row):
            rows.append({
                "channel": push.channel, "recipients": unique[i:i + per_row], "payload": payload,
                "kind": push.kind, "ref": push.ref, "retry_key": _row_key(push.retry_key, i // per_row),
                "status": OUTBOX_PENDING, "attempts": 0, "send_after": push.send_after or now,
                "created_at": now,
            })
    if not rows:
        return []
    result = await session.execute(
        insert(OutboxMessage).returning(OutboxMessage.id, sort_by_parameter_order=True), rows
    )
    return list(result.scalars())


def _row_key(fixed: str | None, index: int) -> str:
    if fixed is None:
        return str(uuid.uuid4())
    return fixed if index == 0 else str(uuid.uuid5(uuid.NAMESPACE_URL, f"{fixed}:row-{index}"))


# --- relay -----------------------------------------------------------------------------


@dataclass
class _Claimed:
    """What a relay needs of a leased row (plain data: no ORM object crosses tasks)."""

    id: int
    channel: str
    recipients: list[str]
    payload: list[dict[str, Any]]
    retry_key: str
    attempts: int


@dataclass
class _Outcome:
    row: _Claimed
    result: str                         # "sent" | "retry" | "failed" | "reschedule"
    delay: float = 0.0                  # retry / reschedule: seconds from now
    error: str | None = None
    blocked: list[str] = field(default_factory=list)
    written: bool = False
    returned_at: float | None = None    # monotonic time the platform answered ("sent" rows)
    write_failures: int = 0
    write_error: BaseException | None = None


class _Turns:
    """The relay's transactions, one at a time where the database needs it (SQLite), stamps first.

    On SQLite two transactions of one relay would contend for the file lock (the busy
    handler sleeps 1-100 ms per collision), so they take turns; a waiting stamp goes before
    waiting claims and lease renewals — a "sent" stamp that waits is Telegram's crash
    window. On PostgreSQL every transaction has its own connection and the relay's touch
    different rows (claims skip locked rows, renewals skip rows being stamped): no turns.
    """

    STAMP, OTHER = 0, 1

    def __init__(self, exclusive: bool) -> None:
        self.exclusive = exclusive
        self._busy = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @contextlib.asynccontextmanager
    async def turn(self, priority: int) -> AsyncIterator[None]:
        if not self.exclusive:
            yield
            return
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: int) -> None:
        if not self._busy and not self._waiting:
            self._busy = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), future))
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self._release()   # handed the turn, then cancelled: pass it on
            raise

    def _release(self) -> None:
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)   # the turn passes directly (still busy)
                return
        self._busy = False


class OutboxRelay:
    """Sends due outbox rows through the channel senders, within the rate limits.

    ``run()`` is the long-running loop (start it as a task; cancel it to stop);
    ``relay_once(max_rows)`` claims up to ``max_rows`` due rows, sends them and returns how
    many it handled (tests and the bench drive this directly). ``notify()`` wakes an idle
    ``run()`` at once after an enqueue in the same process.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        senders: Mapping[str, ChannelSender],
        limits: RateLimiter | Mapping[str, ChannelLimit] | None = None,
        clock: Clock | None = None,
        *,
        batch_size: int = 200,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 10,
        backoff_base: float = 5.0,
        backoff_cap: float = 3600.0,
        concurrency: int = 64,
        poll_interval: float = 1.0,
        max_wait: float | None = None,
        claim_ahead: float = 2.0,
        send_timeout: float = 60.0,
        max_in_flight: Mapping[str, int] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.senders = dict(senders)
        self.clock = clock or (limits.clock if isinstance(limits, RateLimiter) else SystemClock())
        if isinstance(limits, RateLimiter):
            self.limiter = limits
        else:
            self.limiter = RateLimiter(dict(limits) if limits is not None else None, clock=self.clock)
        self.batch_size = batch_size
        self.lease = lease
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.poll_interval = poll_interval
        self.claim_ahead = claim_ahead
        # A send that hangs longer is abandoned and retried (an ambiguous outcome: LINE drops
        # the duplicate by retry key; Telegram may show the message twice).
        self.send_timeout = send_timeout
        self._stopping = False
        self._running: asyncio.Future[None] | None = None  # resolved when run() returns
        # A row that would wait longer than this for its rate-limit slot goes back to the
        # queue (send_after = when the slot comes) instead of holding its lease.
        self.max_wait = max_wait if max_wait is not None else lease.total_seconds() / 3
        self.rng = rng or random.Random()
        self.stats: Counter[str] = Counter()
        self._semaphore = asyncio.Semaphore(concurrency)
        # Sends in flight per unkeyed channel, each from just before its request until its
        # stamp is committed: what a kill -9 can make the platform deliver twice.
        self.max_in_flight: dict[str, int] = {
            channel: self._default_in_flight(channel, concurrency)
            for channel in self.senders if channel in UNKEYED_CHANNELS
        }
        self.max_in_flight.update(max_in_flight or {})
        self._slots = {channel: asyncio.Semaphore(n) for channel, n in self.max_in_flight.items()}
        self._wake = asyncio.Event()
        self._pending_outcomes: list[_Outcome] = []
        self._writing: asyncio.Future[None] | None = None   # the stamp write under way
        bind = sessionmaker.kw.get("bind")
        self._turns = _Turns(exclusive=bind is None or bind.dialect.name == "sqlite")
        self._postgres = bind is not None and bind.dialect.name == "postgresql"
        self._held: set[int] = set()   # ids of rows this relay has claimed and not yet stamped

    def _default_in_flight(self, channel: str, concurrency: int) -> int:
        rate = self.limiter.allowed_rate(channel)
        if rate is None:
            return max(1, min(concurrency, 8))
        return max(2, min(concurrency, math.ceil(rate * IN_FLIGHT_SECONDS)))

    # -- public -----------------------------------------------------------------------

    def notify(self) -> None:
        """Wake ``run()`` now (call after committing an enqueue in this process)."""
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        """Seconds before retry number ``attempts``: exponential, capped, with jitter (half fixed, half random)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempts - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    async def relay_once(self, max_rows: int | None = None) -> int:
        """Claim up to ``max_rows`` due rows, send them, stamp them; returns how many were handled."""
        rows = await self._claim(max_rows or self.batch_size)
        if rows:
            await asyncio.gather(*(self._send_chain(chain) for chain in self._chains(rows)))
        return len(rows)

    async def run(self) -> None:
        """Relay until ``stop()`` (graceful) or cancellation (a hard stop, like a crash).

        Keeps about ``claim_ahead`` seconds of each channel's allowed rate in flight (at
        most ``batch_size`` rows), so a slow channel (Telegram, 30/s) never fills the
        relay with waiting rows while a fast one (LINE) has work; polls when idle.
        """
        self._stopping = False
        self._running = asyncio.get_running_loop().create_future()
        tasks: dict[asyncio.Task[None], tuple[str, int]] = {}
        busy: Counter[str] = Counter()          # rows in flight per channel
        finished: list[asyncio.Task[None]] = []

        def done(task: asyncio.Task[None]) -> None:
            # O(1) per finished row (waiting on every task each time cost O(tasks) per row)
            finished.append(task)
            self._wake.set()

        heartbeat = asyncio.create_task(self._renew_leases())
        try:
            while not self._stopping:
                for channel in self.senders:
                    budget = self._budget(channel)
                    if busy[channel] > budget // 2:
                        continue
                    try:
                        rows = await self._claim(budget - busy[channel], channels=[channel])
                    except Exception:  # the database may be briefly unavailable; keep going
                        log.exception("outbox: claim failed")
                        rows = []
                    for chain in self._chains(rows):
                        task = asyncio.create_task(self._send_chain(chain))
                        tasks[task] = (channel, len(chain))
                        busy[channel] += len(chain)
                        task.add_done_callback(done)
                # wake on a finished row, a notify() (new rows), or the poll interval
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):
                        await self._wake.wait()
                self._wake.clear()
                for task in finished:
                    channel, count = tasks.pop(task)
                    busy[channel] -= count
                    if not task.cancelled() and task.exception() is not None:
                        log.error("outbox: send task failed", exc_info=task.exception())
                finished.clear()
            if tasks:  # graceful stop: let the rows in flight finish and be stamped
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            heartbeat.cancel()
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(heartbeat, *tasks, return_exceptions=True)
            if not self._running.done():
                self._running.set_result(None)

    async def _renew_leases(self) -> None:
        """While ``run()`` lives, extend the leases of the rows it still holds (waiting for a
        rate-limit slot, a connection or a slow platform), so no other relay — and not this
        one either — claims them again while they may still be sent."""
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            held = sorted(self._held)
            try:
                # Small transactions, so a stamp waits for one chunk at most (SQLite); rows
                # locked by a stamp being written are skipped (PostgreSQL: no wait, no deadlock).
                for i in range(0, len(held), RENEW_CHUNK):
                    await self._renew(held[i:i + RENEW_CHUNK])
            except Exception:  # the rows stay leased until their lease ends; retry next time
                log.exception("outbox: lease renewal failed")

    async def _renew(self, ids: list[int]) -> None:
        m = OutboxMessage
        ids = [i for i in ids if i in self._held]   # stamped meanwhile: nothing to renew
        if not ids:
            return
        async with self._turns.turn(_Turns.OTHER), self.sessionmaker() as session, session.begin():
            free = (select(m.id).where(m.id.in_(ids), m.status == OUTBOX_PENDING)
                    .with_for_update(skip_locked=True).scalar_subquery())
            await session.execute(
                update(m).where(m.id.in_(free)).values(claimed_until=self.clock.now() + self.lease)
                .execution_options(synchronize_session=False)
            )

    def stop(self) -> None:
        """Ask ``run()`` to stop claiming, finish the rows in flight and return."""
        self._stopping = True
        self._wake.set()

    async def stop_and_wait(self, timeout: float = 10.0) -> None:
        """``stop()``, then wait (at most ``timeout`` s) until ``run()`` has returned — at shutdown,
        before cancelling the task, so rows being sent are stamped rather than sent again."""
        self.stop()
        if self._running is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._running), timeout)

    def _budget(self, channel: str) -> int:
        rate = self.limiter.allowed_rate(channel)
        if rate is None:
            return self.batch_size
        return max(4, min(self.batch_size, math.ceil(rate * self.claim_ahead)))

    # -- claiming -----------------------------------------------------------------------

    async def _claim(self, limit: int, channels: Sequence[str] | None = None) -> list[_Claimed]:
        channels = list(self.senders) if channels is None else list(channels)
        if limit <= 0 or not channels:
            return []
        now = self.clock.now()
        m = OutboxMessage
        async with self._turns.turn(_Turns.OTHER), self.sessionmaker() as session, session.begin():
            query = (
                select(m.id, m.channel, m.recipients, m.payload, m.retry_key, m.attempts)
                .where(
                    m.status == OUTBOX_PENDING,
                    m.send_after <= now,
                    or_(m.claimed_until.is_(None), m.claimed_until < now),
                    m.channel.in_(channels),
                )
                .order_by(m.send_after, m.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            if self._held:
                # never a row this relay is still sending, even if its lease ran out meanwhile
                # (a renewal failed, or skipped the row while another transaction locked it)
                query = query.where(m.id.not_in(sorted(self._held)))
            claimed = [
                _Claimed(row.id, row.channel, list(row.recipients), list(row.payload), row.retry_key,
                         (row.attempts or 0) + 1)
                for row in (await session.execute(query)).all()
            ]
            if claimed:
                await session.execute(
                    update(m)
                    .where(m.id.in_([c.id for c in claimed]))
                    .values(claimed_until=now + self._lease_for(claimed), attempts=m.attempts + 1)
                    .execution_options(synchronize_session=False)
                )
        self._held.update(c.id for c in claimed)
        return claimed

    def _lease_for(self, rows: list[_Claimed]) -> timedelta:
        """The lease sized to the work: the base lease plus the time the rate limits need to
        let all these rows through (a large alert's rows wait their turn under their lease;
        renewals by ``run()`` extend it, but a late renewal must not make them claimable)."""
        seconds = 0.0
        by_key: Counter[str] = Counter()
        for row in rows:
            by_key[limit_key(row.channel, len(row.recipients))] += send_cost(row.channel, row.payload)
        for key, cost in by_key.items():
            rate = self.limiter.allowed_rate(key)
            if rate:
                seconds = max(seconds, cost / rate)
        return self.lease + timedelta(seconds=min(seconds, MAX_LEASE_EXTRA))

    def _chains(self, rows: list[_Claimed]) -> list[list[_Claimed]]:
        """Rows to one chat of a per-chat-limited channel are sent in order, one after another."""
        chains: dict[Any, list[_Claimed]] = defaultdict(list)
        for row in rows:
            if self.limiter.has_per_recipient_limit(row.channel):
                key: Any = (row.channel, tuple(row.recipients))
            else:
                key = row.id
            chains[key].append(row)
        return list(chains.values())

    # -- sending ------------------------------------------------------------------------

    async def _send_chain(self, chain: list[_Claimed]) -> None:
        for i, row in enumerate(chain):
            try:
                await self._send_and_stamp(row)
            except Exception:
                # Unexpected (a stamp that could not be written, a bug): these rows are not
                # renewed any more, so their leases run out and they are sent again.
                self._held.difference_update(r.id for r in chain[i:])
                raise

    async def _send_and_stamp(self, row: _Claimed) -> None:
        cost = send_cost(row.channel, row.payload)
        key = limit_key(row.channel, len(row.recipients))   # LINE: multicast and push have their own limits
        wait = self.limiter.delay_for(key, row.recipients, cost)
        if wait > self.max_wait:
            await self._stamp(_Outcome(row, "reschedule", delay=wait))
            return
        try:
            replies = [reply_from_dict(d) for d in row.payload]
        except (KeyError, TypeError, ValueError) as exc:
            await self._stamp(_Outcome(row, "failed", error=f"bad payload: {exc!r}"[:500]))
            return
        slot = self._slots.get(row.channel)
        if slot is None:
            await self._stamp(await self._send_row(row, replies, key, cost))
            return
        # An unkeyed channel: the wait for the chat's own spacing is spent without a slot;
        # the slot is held from the rate-limit reservation to the committed stamp.
        await self.clock.sleep(self.limiter.recipient_delay(key, row.recipients))
        async with slot:
            await self._stamp(await self._send_row(row, replies, key, cost))

    async def _send_row(self, row: _Claimed, replies: list[Reply], key: str, cost: float) -> _Outcome:
        sender = self.senders[row.channel]
        await self.limiter.acquire(key, row.recipients, cost)
        async with self._semaphore:
            try:
                async with asyncio.timeout(self.send_timeout):
                    await sender.push(row.recipients, replies, retry_key=row.retry_key)
            except TimeoutError:
                return _Outcome(row, "retry", delay=self.backoff(row.attempts),
                                error=f"no answer within {self.send_timeout:g} s")
            except RetryLater as exc:
                if exc.retry_after:
                    # A 429 is about the whole bot, not this row: slow the channel down too.
                    self.limiter.pause(key, min(exc.retry_after, MAX_CHANNEL_PAUSE))
                delay = max(exc.retry_after or 0.0, self.backoff(row.attempts))
                return _Outcome(row, "retry", delay=delay, error=f"RetryLater: {exc}"[:500])
            except PermanentFailure as exc:
                return _Outcome(row, "failed", error=f"PermanentFailure: {exc}"[:500], blocked=exc.blocked)
            except Exception as exc:  # an adapter bug or an untranslated network error: retry, loudly
                log.exception("outbox: unexpected error sending row %s", row.id)
                return _Outcome(row, "retry", delay=self.backoff(row.attempts),
                                error=f"{type(exc).__name__}: {exc}"[:500])
        return _Outcome(row, "sent", returned_at=self.clock.monotonic())

    # -- stamping (group commit) --------------------------------------------------------

    async def _stamp(self, outcome: _Outcome) -> None:
        """Record ``outcome`` at once; outcomes that finish while a write is under way share the next.

        One write at a time: the first stamp that finds none under way writes every pending
        outcome; the others wait for that write itself (all of them wake together when it is
        done — waiting in line on a lock, each waking the next, made the next write wait for
        one turn of the event loop per outcome already written: ~100 ms under load). The
        write is a task of its own: a relay cancelled meanwhile still records what was
        already sent (fewer Telegram duplicates) and leaves no connection half-used.
        """
        self._pending_outcomes.append(outcome)
        if outcome.row.channel not in UNKEYED_CHANNELS and self._writing is None:
            # A repeat is dropped by the platform (retry key): this stamp can wait a moment
            # for more outcomes to share its write — at most 1/STAMP_LINGER such writes a
            # second however fast LINE goes, fewer for Telegram's stamps to wait behind —
            # unless a Telegram stamp writes it first.
            await asyncio.sleep(STAMP_LINGER)
        while not outcome.written:
            if outcome.write_error is not None:
                # Ours is given up: its lease runs out and the row is sent again (LINE:
                # deduplicated by the retry key; Telegram: a duplicate).
                self._held.discard(outcome.row.id)
                raise outcome.write_error
            if self._writing is None:
                batch, self._pending_outcomes = self._pending_outcomes, []
                self._writing = asyncio.ensure_future(self._write(batch))
                self._writing.add_done_callback(functools.partial(self._written, batch))
            await asyncio.wait([self._writing])   # not cancelled with us

    def _written(self, batch: list[_Outcome], write: asyncio.Future[None]) -> None:
        """Runs first when a write ends (before its waiters wake): mark or requeue its outcomes."""
        self._writing = None
        error = write.exception() if not write.cancelled() else asyncio.CancelledError()
        if error is None:
            for o in batch:
                o.written = True
                self._held.discard(o.row.id)
            return
        if not write.cancelled():
            log.error("outbox: stamping %s rows failed", len(batch), exc_info=error)
        retry = []
        for o in batch:
            o.write_failures += 1
            if o.write_failures < STAMP_TRIES:
                retry.append(o)   # with the next write (a passing database error)
            else:
                o.write_error = error
        self._pending_outcomes[:0] = retry

    async def _write(self, batch: list[_Outcome]) -> None:
        """One transaction: "sent" rows in one UPDATE, the others in one executemany per kind."""
        table = OutboxMessage.__table__
        pending = table.c.status == OUTBOX_PENDING
        by_id = update(table).where(table.c.id == bindparam("row_id"), pending)
        when = bindparam("new_send_after", type_=table.c.send_after.type)
        async with self._turns.turn(_Turns.STAMP), self.sessionmaker() as session, session.begin():
            if self._postgres:
                # Visible to every relay at once, without waiting for the disk (~4 ms here):
                # a stamp lost with a crash of the database server means a row sent again —
                # what a crash of the relay means anyway — never a row lost.
                await session.execute(_NO_DISK_WAIT)
            now = self.clock.now()
            sent_ids = [o.row.id for o in batch if o.result == "sent"]
            if sent_ids:
                await session.execute(
                    update(table).where(table.c.id.in_(sent_ids), pending)
                    .values(status=OUTBOX_SENT, sent_at=now, claimed_until=None, last_error=None)
                )
            later: list[dict[str, Any]] = []       # rescheduled: its attempt not counted
            retry: list[dict[str, Any]] = []
            failed: list[dict[str, Any]] = []
            for o in batch:
                if o.result == "sent":
                    continue
                if o.result == "reschedule":
                    later.append({"row_id": o.row.id, "new_send_after": now + timedelta(seconds=o.delay),
                                  "new_attempts": max(0, o.row.attempts - 1)})
                elif o.result == "retry" and o.row.attempts < self.max_attempts:
                    retry.append({"row_id": o.row.id, "new_send_after": now + timedelta(seconds=o.delay),
                                  "new_error": o.error})
                else:
                    error = o.error if o.result == "failed" else f"gave up after {o.row.attempts} attempts: {o.error}"
                    failed.append({"row_id": o.row.id, "new_error": error})
                    if o.blocked:
                        await repo.mark_status(session, o.row.channel, o.blocked, "blocked")
            if later:
                await session.execute(by_id.values(send_after=when, claimed_until=None,
                                                   attempts=bindparam("new_attempts")), later)
            if retry:
                await session.execute(by_id.values(send_after=when, claimed_until=None,
                                                   last_error=bindparam("new_error")), retry)
            if failed:
                await session.execute(by_id.values(status=OUTBOX_FAILED, claimed_until=None,
                                                   last_error=bindparam("new_error")), failed)
        committed = self.clock.monotonic()
        for o in batch:
            if o.returned_at is not None:
                observe_stamp_lag(o.row.channel, committed - o.returned_at)
            result = o.result if o.result != "retry" or o.row.attempts < self.max_attempts else "failed"
            self.stats[result] += 1
            if result in ("retry", "failed"):
                reason = "retry" if result == "retry" else ("blocked" if o.blocked else "permanent")
                record_send_failure(o.row.channel, reason)
                log.info("outbox: row %s %s (attempt %s): %s", o.row.id, result, o.row.attempts, o.error)


async def delivery_report(session: AsyncSession, ref: str) -> dict[str, int]:
    """Recipients per status ("pending", "sent", "failed") of every push queued with ``ref`` (e.g. "alert:12")."""
    report = {OUTBOX_PENDING: 0, OUTBOX_SENT: 0, OUTBOX_FAILED: 0}
    rows = await session.execute(select(OutboxMessage.status, OutboxMessage.recipients).where(OutboxMessage.ref == ref))
    for status, recipients in rows:
        report[status] = report.get(status, 0) + len(recipients or [])
    return report


async def prune_outbox(
    session: AsyncSession, *, older_than: timedelta = timedelta(days=30), now: datetime | None = None
) -> int:
    """Delete sent and failed rows created more than ``older_than`` ago (they hold recipient ids and text)."""
    from sqlalchemy import delete

    cutoff = (now or utcnow()) - older_than
    result = await session.execute(
        delete(OutboxMessage)
        .where(OutboxMessage.status.in_((OUTBOX_SENT, OUTBOX_FAILED)), OutboxMessage.created_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


async def forget_recipient(session: AsyncSession, channel: str, platform_user_id: str) -> int:
    """Forget-me: take this user off every pending push of ``channel`` (a row addressed only
    to them is deleted); returns how many rows changed. Sent rows go with ``prune_outbox``."""
    changed = 0
    pending = (await session.execute(
        select(OutboxMessage).where(OutboxMessage.channel == channel, OutboxMessage.status == OUTBOX_PENDING)
    )).scalars()
    for row in pending:
        if platform_user_id in row.recipients:
            rest = [r for r in row.recipients if r != platform_user_id]
            if rest:
                row.recipients = rest
            else:
                await session.delete(row)
            changed += 1
    return changed
