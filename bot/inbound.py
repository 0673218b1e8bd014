"""Processing of stored inbound webhook events (LINE events, Telegram updates).

Owns the path from a verified platform event to the resident's answer: ``ingest_events``
stores verified events in ``inbound_events`` (de-duplicated by platform event id) and
starts their processing in a referenced background task; ``process_inbound_event`` turns
one stored row into ``IncomingMessage``s through its channel adapter, asks the
conversation engine, and answers — with the LINE reply token when it is still fresh, with
a direct ``sendMessage`` on Telegram — falling back to a push through the outbox when the
direct answer cannot be delivered now. ``process_pending_events`` answers, at start-up,
events a crash left behind (DESIGN.md: a webhook's 200 loses nothing).

Must not import Starlette/FastAPI or platform SDKs; it reaches platforms only through the
adapters in ``services.channels``.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from bot.cleaning import BadJSON, InvalidEvent
from bot.conversation.engine import TurnDeferred
from bot.db import rawsql, repo
from bot.db.models import EVENT_DONE, EVENT_PENDING, EVENT_PROCESSING, STATUS_BLOCKED, InboundEvent, utcnow
from bot.metrics import record_send_failure
from delivery.messages import IncomingMessage, Kind, Reply
from delivery.senders import PermanentFailure, RetryLater, SendError

log = logging.getLogger("kurashi.inbound")

#: A LINE reply token is usable for about a minute; an older event is answered by push.
REPLY_TOKEN_TTL_SECONDS = 50.0
RESUME_BATCH = 50
#: The sweep for events a dead processor left (their lease ran out) and for renewing the
#: leases of the events this process holds: every few seconds, so a crash delays an answer by
#: seconds (repo.INBOUND_LEASE + this), within a LINE reply token's life.
RESUME_INTERVAL_SECONDS = 3.0
#: Events answered at the same time per process. Much of a turn is waiting — for the
#: database's driver thread and for the platform's answer to the reply call (tens of ms
#: from Japan to LINE) — which concurrent turns overlap; their database writes are few per
#: turn since the webhook path's own writes are group-committed (InboundWriter).
#: bench/bench_webhook.py on SQLite: 4 → ~43 events/s, 12 → ~60, 32 → ~76 on a shared
#: 2-core machine. 16 keeps the turns' connections within the default pool (5 + 10
#: overflow, waiting beyond that) and SQLite's writers well inside the busy timeout.
PROCESSING_CONCURRENCY = 16
#: How long an event waits for an older unanswered event of the same resident (longer than
#: a dead processor's lease plus the sweep, so a resumed older event still goes first).
ORDER_WAIT_SECONDS = 20.0

# One conversation turn at a time per resident, so that two quick messages from the same
# person are answered in order and never race on their stored state.
_user_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def _lock_for(msg: IncomingMessage) -> asyncio.Lock:
    key = f"{msg.channel.value}:{msg.user_id}"
    lock = _user_locks.get(key)
    if lock is None:
        lock = asyncio.Lock()
        _user_locks[key] = lock
    return lock


async def ingest_events(services: Any, channel: str, events: Sequence[tuple[str, str]]) -> list[int]:
    """Store verified (event id, payload) pairs and process the new ones in the background.

    Returns the ids of the rows stored now; a redelivery (or a concurrent duplicate) of an
    event already stored is skipped, so it is never answered twice. The caller answers the
    platform only after this returns: the events are committed by then.
    """
    if services.closing:
        return await _store_pending(services, channel, events)
    # Stored already claimed (leased) by the group-commit writer: concurrent webhooks share
    # one transaction, and each is answered 200 only after that commit. A crash after it
    # leaves rows whose lease runs out, so the resume sweep takes them; a duplicate (also
    # a concurrent one) is stored once and processed once.
    received = utcnow()
    row_ids = await _writer(services).store([(channel, event_id, payload, received) for event_id, payload in events])
    new_ids = [row_id for row_id in row_ids if row_id is not None]
    rows = [InboundEvent(id=row_id, channel=channel, event_id=event_id, payload=payload,
                         status=EVENT_PROCESSING, attempts=1, received_at=received)
            for row_id, (event_id, payload) in zip(row_ids, events, strict=True) if row_id is not None]
    if rows:
        _track(services, rows)
        if services.closing:  # shutdown began while we were storing: hand them back at once
            await _release(services, [row.id for row in rows])
        else:
            services.spawn(process_claimed_events(services, rows), name=f"inbound-{channel}")
    return new_ids


async def _store_pending(services: Any, channel: str, events: Sequence[tuple[str, str]]) -> list[int]:
    """While shutting down, events are stored but not claimed: pending, the next start
    answers them (the platform got its 200, so it will not redeliver)."""
    new_ids: list[int] = []
    async with services.sessionmaker() as session, session.begin():
        for event_id, payload in events:
            if await repo.store_inbound_event(session, channel, event_id, payload):
                row_id = await session.scalar(select(InboundEvent.id).where(
                    InboundEvent.channel == channel, InboundEvent.event_id == event_id))
                if row_id is not None:
                    new_ids.append(row_id)
    return new_ids


#: (channel, event id, payload, received at) of one event to store claimed.
_Store = tuple[str, str, str, datetime]


class InboundWriter:
    """Group commit for the webhook path's own writes: storing (claimed) events and
    stamping processed ones done/failed.

    Why: on SQLite every transaction holds the database's single write lock for all of
    its round trips to the driver thread (BEGIN IMMEDIATE, statements, COMMIT), so the
    number of transactions, not their size, bounds the events per second; writers that
    find the lock taken sleep in SQLite's busy handler. Whatever has queued up while the
    previous transaction ran goes into the next one: one transaction per batch instead of
    two per event, with no added wait when idle (a lone webhook is written at once).
    Callers await their own result, i.e. the commit: a webhook still answers 200 only
    after its event is stored. A failed batch is retried one operation at a time, so a
    bad operation fails alone.
    """

    MAX_BATCH = 200   # SQLite allows 32,766 bound parameters; 7 per stored event

    def __init__(self, services: Any) -> None:
        self.services = services
        self._queue: list[tuple[str, Any, asyncio.Future[Any]]] = []
        self._wakeup = asyncio.Event()
        # Not named "inbound-…": shutdown drains those, and this one runs until cancelled.
        self._task = services.spawn(self._run(), name="writer-inbound")

    def _submit(self, kind: str, item: Any) -> asyncio.Future[Any]:
        if self._task.done():
            raise RuntimeError("the inbound writer has stopped (shutting down)")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((kind, item, future))
        self._wakeup.set()
        return future

    async def store(self, items: Sequence[_Store]) -> list[int | None]:
        """Store events claimed; the new row id per item, None for an event already stored."""
        return list(await asyncio.gather(*(self._submit("store", item) for item in items)))

    async def finish(self, row_id: int, error: str | None) -> None:
        await self._submit("finish", (row_id, error))

    async def _run(self) -> None:
        batch: list[tuple[str, Any, asyncio.Future[Any]]] = []
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._queue:
                    batch, self._queue = self._queue[:self.MAX_BATCH], self._queue[self.MAX_BATCH:]
                    try:
                        await self._write(batch)
                    except Exception:  # noqa: BLE001 - e.g. the database is briefly down: each op on its own
                        for op in batch:
                            try:
                                await self._write([op])
                            except Exception as exc:  # noqa: BLE001 - handed to the op's caller
                                if not op[2].done():
                                    op[2].set_exception(exc)
                    batch = []
        finally:  # cancelled at shutdown: nobody may wait for ever on an op that will not run
            for _kind, _item, future in batch + self._queue:
                if not future.done():
                    future.set_exception(RuntimeError("shutting down before the write"))
            self._queue = []

    async def _write(self, batch: Sequence[tuple[str, Any, asyncio.Future[Any]]]) -> None:
        stores = [(item, future) for kind, item, future in batch if kind == "store" and not future.done()]
        finishes = [(item, future) for kind, item, future in batch if kind == "finish" and not future.done()]
        results: list[tuple[asyncio.Future[Any], Any]] = []
        done = [row_id for (row_id, error), _ in finishes if error is None]
        if len(done) == len(finishes):
            # The common batch (events stored, events answered): at the driver, ~0.5 ms of CPU
            # less than through SQLAlchemy, paid once or twice per event — and as one statement
            # where the database allows, which is atomic without a BEGIN/COMMIT of its own (two
            # round trips fewer, before the webhook's 200 too).
            engine = self.services.engine_db
            single = repo.one_statement(engine.dialect.name == "postgresql", len(stores), len(done))
            async with (rawsql.connection if single else rawsql.transaction)(engine) as driver:
                ids = await repo.write_inbound_batch_raw(driver, [item for item, _ in stores], done)
                results += [(future, row_id) for (_, future), row_id in zip(stores, ids, strict=True)]
        else:
            async with self.services.sessionmaker() as session, session.begin():
                if stores:
                    ids = await repo.store_claimed_inbound_events(session, [item for item, _ in stores])
                    results += [(future, row_id) for (_, future), row_id in zip(stores, ids, strict=True)]
                if done:
                    await repo.finish_inbound_events(session, done)
                for (row_id, error), _ in finishes:
                    if error is not None:
                        await repo.finish_inbound_event(session, row_id, error=error)
        results += [(future, None) for _, future in finishes]
        orphans: list[InboundEvent] = []
        for future, value in results:   # committed: now the callers may go on
            if not future.done():
                future.set_result(value)
        for (item, future), (_, row_id) in zip(stores, results[:len(stores)], strict=True):
            if future.cancelled() and row_id is not None:
                # The webhook's request went away during the commit: stored and claimed all
                # the same, so it is processed here rather than after the lease.
                channel, event_id, payload, received = item
                orphans.append(InboundEvent(id=row_id, channel=channel, event_id=event_id, payload=payload,
                                            status=EVENT_PROCESSING, attempts=1, received_at=received))
        if orphans:
            _track(self.services, orphans)
            self.services.spawn(process_claimed_events(self.services, orphans), name=f"inbound-{orphans[0].channel}")


def _writer(services: Any) -> InboundWriter:
    writer = services.extras.get("inbound_writer")
    if writer is not None and writer._task.done() and services.closing:
        raise RuntimeError("the inbound writer has stopped (shutting down)")
    if writer is None or writer._task.done():
        writer = services.extras["inbound_writer"] = InboundWriter(services)
    return writer


def _inflight(services: Any) -> dict[int, bool]:
    """Rows this process has claimed and not yet stamped: row id → answered already.

    ``Services.aclose`` hands the ones left after cancelling back (``release_unfinished_events``).
    """
    return services.extras.setdefault("inbound_inflight", {})


def _track(services: Any, rows: Sequence[InboundEvent]) -> None:
    inflight = _inflight(services)
    for row in rows:
        inflight.setdefault(row.id, False)


async def _release(services: Any, ids: Sequence[int]) -> None:
    """Claimed rows not answered: back to pending with no lease, so the next claim takes them now."""
    async with services.sessionmaker() as session, session.begin():
        await session.execute(
            update(InboundEvent)
            .where(InboundEvent.id.in_(list(ids)), InboundEvent.status == EVENT_PROCESSING)
            .values(status=EVENT_PENDING, claimed_until=None)
            .execution_options(synchronize_session=False)
        )
    inflight = _inflight(services)
    for row_id in ids:
        inflight.pop(row_id, None)


async def release_unfinished_events(services: Any) -> tuple[int, int]:
    """At shutdown, after cancelling: stamp claimed rows that were answered done (their
    stamp was what got cancelled; answering again would be a duplicate) and hand the others
    back as pending. Returns (done, released)."""
    inflight = _inflight(services)
    answered = [row_id for row_id, done in inflight.items() if done]
    unanswered = [row_id for row_id, done in inflight.items() if not done]
    if answered:
        async with services.sessionmaker() as session, session.begin():
            await session.execute(
                update(InboundEvent)
                .where(InboundEvent.id.in_(answered), InboundEvent.status == EVENT_PROCESSING)
                .values(status=EVENT_DONE, processed_at=utcnow(), claimed_until=None)
                .execution_options(synchronize_session=False)
            )
        for row_id in answered:
            inflight.pop(row_id, None)
    if unanswered:
        await _release(services, unanswered)
        log.info("inbound events handed back at shutdown", extra={"count": len(unanswered)})
    return len(answered), len(unanswered)


async def process_stored_events(services: Any, ids: Sequence[int] | None = None, *, limit: int = RESUME_BATCH) -> int:
    """Claim stored events (these ids, or any pending ones) and process them; returns how many."""
    if services.closing:
        return 0
    async with services.sessionmaker() as session, session.begin():
        rows = await repo.claim_inbound_events(session, ids=list(ids) if ids is not None else None, limit=limit)
        session.expunge_all()
    # A row of this process's own whose lease renewal came late is still being answered here.
    inflight = _inflight(services)
    rows = [row for row in rows if row.id not in inflight]
    _track(services, rows)
    await process_claimed_events(services, rows)
    return len(rows)


def _processing_slots(services: Any) -> asyncio.Semaphore:
    slots = services.extras.get("inbound_slots")
    if slots is None:
        slots = services.extras["inbound_slots"] = asyncio.Semaphore(PROCESSING_CONCURRENCY)
    return slots


async def process_claimed_events(services: Any, rows: Sequence[InboundEvent]) -> None:
    """Process rows this process has claimed, stamping each done (or failed) afterwards."""
    for i, row in enumerate(rows):
        if services.closing:
            # Shutting down: the rows not started yet go back to pending for the next process.
            await _release(services, [r.id for r in rows[i:]])
            return
        async with _processing_slots(services):
            if services.closing:
                await _release(services, [r.id for r in rows[i:]])
                return
            error = await _process(services, row)
        # The slot is free while the stamp waits for the writer's next commit.
        await _writer(services).finish(row.id, error)
        _inflight(services).pop(row.id, None)


async def _process(services: Any, row: InboundEvent) -> str | None:
    """Answer one row; the error to stamp it with, or None."""
    try:
        await process_inbound_event(services, row)
    except InvalidEvent as exc:  # the event's content, not a fault here: one line, no traceback
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        log.warning("inbound event invalid", extra={"channel": row.channel, "event_row": row.id, "reason": reason})
        return f"invalid: {reason}"
    except Exception as exc:  # one bad event must not stop the others; no message text in the error
        log.exception("inbound event failed", extra={"channel": row.channel, "event_row": row.id})
        return type(exc).__name__
    return None


async def resume_pending_events(services: Any) -> int:
    """Answer every event left pending (or abandoned mid-processing) by a crash; returns how many."""
    total = 0
    while True:
        done = await process_stored_events(services, None)
        total += done
        if done < RESUME_BATCH or services.closing:
            return total


async def renew_leases(services: Any) -> int:
    """Extend the leases of the events this process is answering (a slow turn is not taken
    over by another process); returns how many."""
    held = list(_inflight(services))
    if not held:
        return 0
    until = utcnow() + repo.INBOUND_LEASE
    async with services.sessionmaker() as session, session.begin():
        for i in range(0, len(held), 500):
            await session.execute(
                update(InboundEvent)
                .where(InboundEvent.id.in_(held[i:i + 500]), InboundEvent.status == EVENT_PROCESSING)
                .values(claimed_until=until)
                .execution_options(synchronize_session=False)
            )
    return len(held)


async def process_pending_events(services: Any, *, interval: float = RESUME_INTERVAL_SECONDS) -> None:
    """Background sweep started with the app: resume pending events now, then every
    ``interval`` seconds, so an event whose processor died (its lease ran out) is answered
    without waiting for the next restart. The leases of this process's events are renewed
    by a heartbeat of their own, so a long resume (hundreds of events after a restart) does
    not let the webhook path's leases run out meanwhile."""
    heartbeat = asyncio.ensure_future(_renew_leases_forever(services, interval))
    try:
        while not services.closing:
            try:
                resumed = await resume_pending_events(services)
                if resumed:
                    log.info("resumed pending inbound events", extra={"count": resumed})
            except Exception:  # the database may be briefly unavailable; try again next round
                log.exception("resuming inbound events failed")
            if not await _pause(services, interval):
                return
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat


async def _pause(services: Any, seconds: float) -> bool:
    """Sleep, but end at once when shutdown begins (the drain waits for these tasks); False then."""
    try:
        await asyncio.wait_for(services.closing_event.wait(), seconds)
    except TimeoutError:
        return True
    return False


async def _renew_leases_forever(services: Any, interval: float) -> None:
    while not services.closing:
        try:
            await renew_leases(services)
        except Exception:  # the database may be briefly unavailable; the leases last 15 s
            log.exception("renewing inbound leases failed")
        if not await _pause(services, interval):
            return


def _age_seconds(row: InboundEvent) -> float:
    received = row.received_at
    if received is None:
        return 0.0
    if received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
    return (datetime.now(UTC) - received).total_seconds()


async def process_inbound_event(services: Any, row: InboundEvent) -> None:
    """Answer one stored event: adapter → IncomingMessage → engine → reply (or outbox push)."""
    adapter = services.channels.get(row.channel)
    if adapter is None:
        raise LookupError(f"no adapter for channel {row.channel!r}")
    try:
        events = adapter.events_of(row.payload)
    except BadJSON as exc:
        raise InvalidEvent(f"stored payload: {exc}") from exc
    for event in events:
        await _answer_event(services, adapter, row, event)
    # Answered (or nothing to answer): if the "done" stamp is what a shutdown cancels, the
    # event is stamped done rather than answered a second time (release_unfinished_events).
    inflight = _inflight(services)
    if row.id in inflight:
        inflight[row.id] = True


async def _answer_event(services: Any, adapter: Any, row: InboundEvent, event: dict[str, Any]) -> None:
    """One event of a stored row: staff-group relay, or IncomingMessage → engine → answer."""
    try:
        if row.channel == "telegram":
            # Replies in a partner organisation's staff group relay to residents (bot/consult/notify.py).
            from bot.consult.staff_group import handle_staff_group_update

            if await handle_staff_group_update(services, row.channel, event):
                return
        msg = await adapter.to_incoming(event)
    except InvalidEvent:
        raise
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        # A platform event of an unexpected shape (a field of the wrong type…): invalid, not a crash.
        raise InvalidEvent(f"malformed {row.channel} event ({type(exc).__name__})") from exc
    if msg is None:
        return
    acknowledge = getattr(adapter, "acknowledge", None)
    if acknowledge is not None:
        await acknowledge(event)
    order = _InOrder(services, row, msg)
    while True:
        async with _lock_for(msg):
            try:
                replies = await services.engine.handle(msg, ready=order.ready)
            except TurnDeferred:
                replies = None
            else:
                if msg.kind == Kind.UNFOLLOW and row.channel == "telegram":
                    # Telegram's my_chat_member "kicked": the user blocked the bot.
                    await _mark_blocked(services, row.channel, [msg.user_id])
                if replies:
                    await _answer(services, adapter, row, event, msg, replies)
                return
        # Deferred: wait outside this resident's lock and outside the processing slot — the
        # older event may be this process's own, and needs both to go first.
        await order.pause()


class _InOrder:
    """A resident's messages are answered in the order they were stored, across processes.

    The turn, as it takes the resident's advisory lock, first looks (``ready``) for an older
    unanswered event of the same resident — being answered by another ``kurashi serve``
    worker or by this process, or left by a dead one and about to be resumed. If there is
    one, the engine defers the turn (nothing done, lock released) and the caller waits
    (``pause``: outside the per-resident lock and the processing slot) and asks again, for at
    most ORDER_WAIT_SECONDS; then the look is skipped (an answer late is better than none).
    The advisory lock alone keeps turns from overlapping, not their order. The look runs on
    the turn's own connection, in the statement that takes the lock: no extra checkout, no
    extra round trip."""

    def __init__(self, services: Any, row: InboundEvent, msg: IncomingMessage) -> None:
        self.services, self.row, self.msg = services, row, msg
        self.waiting: list[int] = []
        self.deadline: float | None = None
        self.interval = 0.01
        self.given_up = row.id is None

    async def ready(self, driver: rawsql.Driver, lock: repo.TurnLock) -> bool:
        if self.given_up:
            return True
        self.waiting = await repo.earlier_unfinished_events(driver, self.row.channel, self.msg.user_id, self.row.id,
                                                            lock=lock)
        return not self.waiting

    async def pause(self) -> None:
        loop = asyncio.get_running_loop()
        if self.deadline is None:
            self.deadline = loop.time() + ORDER_WAIT_SECONDS
        if loop.time() >= self.deadline or self.services.closing:
            log.warning("answering out of order: an older event of the same resident is still unanswered",
                        extra={"event_row": self.row.id, "waiting_for": self.waiting[0] if self.waiting else None})
            self.given_up = True
            return
        slots = _processing_slots(self.services)
        slots.release()            # held by process_claimed_events around this event
        try:
            await asyncio.sleep(self.interval)
        finally:
            await slots.acquire()
        self.interval = min(self.interval * 2, 0.2)


async def _answer(services: Any, adapter: Any, row: InboundEvent, event: dict[str, Any],
                  msg: IncomingMessage, replies: list[Reply]) -> None:
    if row.channel == "line":
        token = adapter.reply_token(event)
        if token and _age_seconds(row) < REPLY_TOKEN_TTL_SECONDS:
            try:
                rest = await adapter.reply(token, msg.user_id, replies, retry_key=event_retry_key(row, "tail"))
                if rest and msg.kind != Kind.GROUP_JOIN:
                    await _push_later(services, row.channel, msg.user_id, rest, retry_key=event_retry_key(row, "rest"))
                return
            except SendError as exc:
                if getattr(exc, "refused", False) and (row.attempts or 1) > 1:
                    # A fresh token refused on a second attempt: the attempt before (its
                    # process died before the "done" stamp) used it — the resident has the
                    # answer. What did not fit in the reply was queued with a fixed key: again
                    # with the same key, so LINE delivers it at most once.
                    log.info("line reply token already used by an earlier attempt: not answering again",
                             extra={"event_row": row.id})
                    _, rest = adapter.split_for_reply(replies)
                    if rest and msg.kind != Kind.GROUP_JOIN:
                        await _push_later(services, row.channel, msg.user_id, rest,
                                          retry_key=event_retry_key(row, "rest"))
                    return
                record_send_failure("line", "reply_token")
                log.info("line reply token unusable, pushing instead", extra={"error": str(exc)})
        if msg.kind == Kind.GROUP_JOIN:
            return  # never push into a group: the join answer was a courtesy
        # The key is the event's: if this event is answered again (a crash before its "done"
        # stamp), LINE drops the second push (X-Line-Retry-Key).
        await _push_later(services, row.channel, msg.user_id, replies, retry_key=event_retry_key(row, "push"))
        return
    # A direct answer to the resident's own message goes at once: Telegram's ~30 messages/s
    # is the limit for bulk notifications (the outbox's budget), not for replies — a 429
    # (flood control) is handled below: the rest goes to the outbox, and the outbox's budget
    # pauses for retry_after so broadcasts back off too.
    limiter = getattr(services.relay, "limiter", None)
    parts_sent = 0

    def count(n: int) -> None:
        nonlocal parts_sent
        parts_sent = n

    try:
        await adapter.reply(msg.user_id, replies, progress=count)
    except PermanentFailure as exc:
        record_send_failure(row.channel, "blocked" if exc.blocked else "permanent")
        if exc.blocked:
            await _mark_blocked(services, row.channel, exc.blocked)
        log.info("reply not deliverable", extra={"channel": row.channel, "error": str(exc)})
    except SendError as exc:  # RetryLater: the outbox retries with backoff
        if limiter is not None and isinstance(exc, RetryLater) and exc.retry_after:
            limiter.pause(row.channel, exc.retry_after)
        record_send_failure(row.channel, "retry")
        log.info("reply deferred to the outbox", extra={"channel": row.channel, "error": str(exc)})
        # Only what did not go out yet: Telegram has no idempotency key to drop a repeat.
        await _push_later(services, row.channel, msg.user_id, adapter.unsent(replies, parts_sent))


def event_retry_key(row: InboundEvent, part: str) -> str:
    """A retry key (UUID) fixed by the inbound event: every attempt at answering the same
    event sends its pushes with the same keys."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kurashi:inbound:{row.channel}:{row.event_id}:{part}"))


async def _push_later(services: Any, channel: str, user_id: str, replies: list[Reply], *,
                      retry_key: str | None = None) -> None:
    from delivery.outbox import enqueue  # the outbox owns pushes (STYLE.md §5)

    async with services.sessionmaker() as session, session.begin():
        await enqueue(session, channel=channel, recipients=[user_id], replies=replies, kind="reply",
                      retry_key=retry_key)
    notify = getattr(services.relay, "notify", None)
    if notify is not None:
        notify()


async def _mark_blocked(services: Any, channel: str, user_ids: Sequence[str]) -> None:
    async with services.sessionmaker() as session, session.begin():
        await repo.mark_status(session, channel, user_ids, STATUS_BLOCKED)
