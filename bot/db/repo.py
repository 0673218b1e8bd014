"""Small async data-access functions over an AsyncSession (users, feedback, unanswered, inbound events).

Owns the queries the conversation core and the webhooks need, so that they never write SQL.
None of these functions commits: they run in the caller's transaction (``async with
sessionmaker() as s, s.begin(): ...``). The claim functions' leases take effect only when
the caller commits, so commit right after claiming and before doing the slow work.

Must not import the conversation core, channel adapters, platform SDKs or Settings.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.db.models import (
    EVENT_DONE,
    EVENT_FAILED,
    EVENT_PENDING,
    EVENT_PROCESSING,
    STATUS_ACTIVE,
    STATUS_BLOCKED,
    STATUS_UNFOLLOWED,
    Feedback,
    InboundEvent,
    Unanswered,
    User,
    utcnow,
)
from bot.db.rawsql import Driver, codec, driver_of

USER_STATUSES = (STATUS_ACTIVE, STATUS_UNFOLLOWED, STATUS_BLOCKED)
INBOUND_RETENTION = timedelta(days=7)
#: Seconds a processor holds a claimed event before another may take it. Short, so an event
#: whose process died is answered within seconds (while its LINE reply token still works);
#: a live processor renews the leases of the events it holds (bot.inbound) until it is done.
INBOUND_LEASE = timedelta(seconds=15)
INBOUND_MAX_ATTEMPTS = 3


# --- users -----------------------------------------------------------------------------


async def get_user(session: AsyncSession, channel: str, platform_user_id: str) -> User | None:
    """The user with this platform id on this channel, or None."""
    result = await session.execute(
        select(User).where(User.channel == channel, User.platform_user_id == platform_user_id)
    )
    return result.scalar_one_or_none()


async def get_or_create_user(
    session: AsyncSession, channel: str, platform_user_id: str, *, now: datetime | None = None
) -> tuple[User, bool]:
    """The user (created with defaults on first contact) and whether it was created.

    Sets ``last_seen_at`` to ``now``: this is called when the user talks to the bot. Safe
    when two messages of a new user arrive at once: the loser of the insert race reads the
    winner's row (savepoint + unique constraint), it does not fail.
    """
    now = now or utcnow()
    user = await get_user(session, channel, platform_user_id)
    if user is not None:
        user.last_seen_at = now
        return user, False
    try:
        async with session.begin_nested():
            user = User(channel=channel, platform_user_id=platform_user_id, state={},
                        created_at=now, last_seen_at=now)
            session.add(user)
            await session.flush()
        return user, True
    except IntegrityError:
        user = await get_user(session, channel, platform_user_id)
        if user is None:  # pragma: no cover - the conflicting row vanished (deleted meanwhile)
            raise
        user.last_seen_at = now
        return user, False


# --- the resident of a conversation turn (Core SQL, no unit of work) -------------------------
#
# Every resident message loads its user and writes it back; through the ORM that is an
# identity-mapped SELECT and a unit-of-work flush, ~2.5 ms of CPU per turn (issue 10's
# profile), more than the rest of the turn's SQL together. The turn path uses plain Core
# statements instead (compiled once, cached): one SELECT, an INSERT on first contact, and
# one UPDATE of just the columns the turn changed. The User object it hands out is
# *transient* — never added to the session — so nothing is flushed for it behind the
# turn's back; code that needs rows of its own keys them by ``user.id`` (all of it does).

_users = User.__table__
_USER_COLUMNS = tuple(_users.c)
_USER_FIELDS = tuple(c.key for c in _USER_COLUMNS)
_USER_LIST = ", ".join(c.name for c in _USER_COLUMNS)
_SELECT_TURN_USER = f"SELECT {_USER_LIST} FROM users WHERE channel = ? AND platform_user_id = ?"
_NEW_USER_FIELDS = tuple(key for key in _USER_FIELDS if key != "id")
_INSERT_TURN_USER = (f"INSERT INTO users ({', '.join(_users.c[k].name for k in _NEW_USER_FIELDS)}) "
                     f"VALUES ({', '.join('?' for _ in _NEW_USER_FIELDS)}) "
                     "ON CONFLICT (channel, platform_user_id) DO NOTHING RETURNING id")
_update_sql: dict[tuple[str, ...], str] = {}


def _update_turn_user(keys: tuple[str, ...]) -> str:
    sql = _update_sql.get(keys)
    if sql is None:
        sets = ", ".join(f"{_users.c[k].name} = ?" for k in keys)
        sql = _update_sql[keys] = f"UPDATE users SET {sets} WHERE id = ?"
    return sql


def _user_snapshot(user: User) -> dict[str, Any]:
    values = {key: getattr(user, key) for key in _USER_FIELDS}
    values["state"] = json.loads(json.dumps(values["state"] or {}))   # a deep copy of JSON
    return values


class TurnLock:
    """The advisory lock of one resident's turn (PostgreSQL; ``key`` None on SQLite, whose
    writers queue anyway), and whether this transaction holds it yet.

    Taken alone (``lock_turn``) or in the statement of the turn's in-order look
    (``earlier_unfinished_events(…, lock=…)``): one round trip fewer per turn."""

    __slots__ = ("held", "key")

    def __init__(self, key: int | None) -> None:
        self.key = key
        self.held = key is None


async def lock_turn(session: AsyncSession | AsyncConnection | Driver, lock: TurnLock) -> None:
    """PostgreSQL: hold the turn's advisory lock until the transaction ends (one turn per
    resident at a time across processes). Nothing on SQLite, or when the lock is held already."""
    if lock.held:
        return
    driver = await driver_of(session)
    if driver.postgres:
        await driver.execute("SELECT pg_advisory_xact_lock(?)", (lock.key,))
    lock.held = True


async def load_turn_user(session: AsyncSession | AsyncConnection | Driver, channel: str, platform_user_id: str, *,
                         now: datetime | None = None) -> tuple[User, bool, dict[str, Any]]:
    """The resident of a turn (created with defaults on first contact), whether it was just
    created, and the snapshot ``save_turn_user`` compares with. ``last_seen_at`` is set to
    ``now``. The object is not in the session: write it back with ``save_turn_user``.

    Driver-level SQL in the session's transaction (bot/db/rawsql.py); two first messages of
    one resident at once create one row (INSERT … ON CONFLICT DO NOTHING, then read it)."""
    now = now or utcnow()
    driver = await driver_of(session)
    types = codec("users", _USER_COLUMNS, driver.dialect)
    key = (channel, platform_user_id)
    rows = await driver.rows(_SELECT_TURN_USER, key)
    created = False
    if rows:
        values = types.row(rows[0])
    else:
        values = {"channel": channel, "platform_user_id": platform_user_id, "language": None, "area": None,
                  "segment": None, "opt_alerts": True, "opt_events": False, "opt_garbage": False,
                  "garbage_time": "19:00", "quiet_start": None, "quiet_end": None, "status": STATUS_ACTIVE,
                  "state": {}, "created_at": now, "last_seen_at": now}
        inserted = await driver.rows(_INSERT_TURN_USER, [types.bind(k, values[k]) for k in _NEW_USER_FIELDS])
        if inserted:
            created = True
            values["id"] = inserted[0][0]
        else:   # the other message of the same resident created it first
            rows = await driver.rows(_SELECT_TURN_USER, key)
            if not rows:  # pragma: no cover - the conflicting row vanished (deleted meanwhile)
                raise LookupError("user row vanished during creation")
            values = types.row(rows[0])
    user = User(**values)
    snapshot = _user_snapshot(user)
    if created:
        snapshot["last_seen_at"] = now
    else:
        user.last_seen_at = now
    return user, created, snapshot


async def save_turn_user(session: AsyncSession | AsyncConnection | Driver, user: User, snapshot: dict[str, Any]) -> bool:
    """Write back the columns of a turn's user that differ from ``snapshot`` (one UPDATE,
    none when nothing changed); returns whether it wrote."""
    changes = {}
    for key in _USER_FIELDS:
        value = getattr(user, key)
        if key == "state":
            value = dict(value or {})
        if value != snapshot[key]:
            changes[key] = value
    changes.pop("id", None)
    if not changes:
        return False
    driver = await driver_of(session)
    types = codec("users", _USER_COLUMNS, driver.dialect)
    keys = tuple(changes)
    await driver.execute(_update_turn_user(keys), [*(types.bind(k, changes[k]) for k in keys), user.id])
    return True


async def mark_status(
    session: AsyncSession, channel: str, platform_user_ids: Iterable[str], status: str
) -> int:
    """Set ``status`` ("active", "unfollowed", "blocked") of these users; returns how many rows changed.

    Unknown ids are ignored (a block can arrive for someone who never wrote to the bot).
    """
    if status not in USER_STATUSES:
        raise ValueError(f"unknown user status {status!r}")
    ids = list(dict.fromkeys(platform_user_ids))
    if not ids:
        return 0
    result = await session.execute(
        update(User)
        .where(User.channel == channel, User.platform_user_id.in_(ids), User.status != status)
        .values(status=status)
        .execution_options(synchronize_session="fetch")
    )
    return result.rowcount or 0


def _mentions_user(payload: Any, channel: str, platform_user_id: str) -> bool:
    """Whether a raw webhook event names this user as its source (LINE userId, Telegram from/chat id)."""
    if isinstance(payload, dict):
        if channel == "line" and payload.get("userId") == platform_user_id:
            return True
        if channel == "telegram":
            for key in ("from", "chat"):
                who = payload.get(key)
                if isinstance(who, dict) and str(who.get("id")) == platform_user_id:
                    return True
        return any(_mentions_user(v, channel, platform_user_id) for v in payload.values())
    if isinstance(payload, list):
        return any(_mentions_user(v, channel, platform_user_id) for v in payload)
    return False


async def delete_user_data(session: AsyncSession, user: User) -> None:
    """The conversation's part of forget-me: the user's processed raw webhook events and the
    users row (every table with an ``ON DELETE CASCADE`` foreign key to users goes with it).

    The whole forget-me — consultations, pending pushes, web mailbox, insights first — is
    ``bot.privacy.forget_user``, which calls this last. The event being processed right now
    is left to the retention pruning, at most INBOUND_RETENTION later.
    """
    channel, pid = user.channel, user.platform_user_id
    # Prefilter in SQL on the id's text, confirm on the parsed JSON (ids are not free text).
    candidates = (
        await session.execute(
            select(InboundEvent.id, InboundEvent.payload).where(
                InboundEvent.channel == channel,
                InboundEvent.status.in_((EVENT_DONE, EVENT_FAILED)),
                InboundEvent.payload.contains(pid, autoescape=True),
            )
        )
    ).all()
    doomed = []
    for row_id, raw in candidates:
        try:
            parsed = json.loads(raw)
        except ValueError:
            continue
        if _mentions_user(parsed, channel, pid):
            doomed.append(row_id)
    if doomed:
        await session.execute(delete(InboundEvent).where(InboundEvent.id.in_(doomed)))
    if user in session:
        await session.delete(user)
        await session.flush()
    else:   # a turn's user (load_turn_user) is not in the session: its row goes by key
        await session.execute(delete(User).where(User.id == user.id))


# --- feedback and unanswered questions -------------------------------------------------


async def record_feedback(
    session: AsyncSession,
    user: User,
    intent: str,
    vote: int,
    *,
    language: str | None = None,
    question: str | None = None,
) -> Feedback:
    """Store 👍 (+1) or 👎 (-1) for an answered intent; the question is kept only with 👎."""
    if vote not in (1, -1):
        raise ValueError("vote must be +1 or -1")
    row = Feedback(
        user_id=user.id, intent=intent, vote=vote, language=language,
        question=question if vote < 0 else None,
    )
    session.add(row)
    await session.flush()
    return row


async def record_unanswered(
    session: AsyncSession,
    user: User,
    text: str,
    *,
    language: str | None,
    decision: str,
    suggestions: Sequence[str] = (),
) -> Unanswered:
    """Store a question the bot could not answer ("decline" or "clarify_abandoned") for operators."""
    if decision not in ("decline", "clarify_abandoned"):
        raise ValueError(f"unknown decision {decision!r}")
    row = Unanswered(
        user_id=user.id, text=text, language=language, decision=decision, suggestions=list(suggestions)
    )
    session.add(row)
    await session.flush()
    return row


# --- inbound webhook events --------------------------------------------------------------


async def store_inbound_event(
    session: AsyncSession, channel: str, event_id: str, payload: str, *, now: datetime | None = None
) -> bool:
    """Insert a verified webhook event as pending; False when (channel, event_id) is already stored.

    ``INSERT … ON CONFLICT DO NOTHING`` so that two concurrent identical deliveries never
    raise: on PostgreSQL the second waits for the first transaction and then inserts
    nothing; on SQLite writers are serialised (BEGIN IMMEDIATE). Commit before answering 200.
    """
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {
        "channel": channel, "event_id": event_id, "payload": payload, "status": EVENT_PENDING,
        "attempts": 0, "received_at": now or utcnow(),
    }
    stmt = (
        insert_fn(InboundEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["channel", "event_id"])
        .returning(InboundEvent.id)
    )
    result = await session.execute(stmt)
    return result.scalar_one_or_none() is not None


async def store_claimed_inbound_events(
    session: AsyncSession, items: Sequence[tuple[str, str, str, datetime]], *, lease: timedelta = INBOUND_LEASE,
) -> list[int | None]:
    """``store_inbound_event`` + ``claim_inbound_events`` for many (channel, event id, payload,
    received at) in one statement: new rows are stored already "processing" (one attempt,
    leased). The new row id per item, None for an event already stored — also for the
    second of two identical items in ``items``. For the webhook path, which processes what
    it has just stored (one round trip per batch instead of five per event); a crash after
    the commit leaves the lease to run out, like a claim."""
    if not items:
        return []
    conn = await session.connection()   # Core on the table, not the ORM's bulk insert (the webhook path)
    events = InboundEvent.__table__
    insert_fn = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert_fn(events)
        .values([{"channel": channel, "event_id": event_id, "payload": payload, "status": EVENT_PROCESSING,
                  "attempts": 1, "received_at": received, "claimed_until": received + lease}
                 for channel, event_id, payload, received in items])
        .on_conflict_do_nothing(index_elements=["channel", "event_id"])
        .returning(events.c.id, events.c.channel, events.c.event_id)
    )
    stored = {(channel, event_id): row_id for row_id, channel, event_id in (await conn.execute(stmt)).all()}
    # Popped: a key twice in one batch is new only the first time.
    return [stored.pop((channel, event_id), None) for channel, event_id, _, _ in items]


async def finish_inbound_events(session: AsyncSession, row_ids: Sequence[int], *, now: datetime | None = None) -> None:
    """Stamp many claimed events done at once (``finish_inbound_event`` without an error)."""
    events = InboundEvent.__table__
    await (await session.connection()).execute(
        events.update().where(events.c.id.in_(list(row_ids)))
        .values(status=EVENT_DONE, error=None, processed_at=now or utcnow(), claimed_until=None)
    )


_events = InboundEvent.__table__
_STORE_COLUMNS = tuple(_events.c[k] for k in ("channel", "event_id", "payload", "status", "attempts",
                                               "received_at", "claimed_until"))
_STORE_ROW = "(" + ", ".join("?" for _ in _STORE_COLUMNS) + ")"
_FINISH_SQL = "UPDATE inbound_events SET status = ?, error = NULL, processed_at = ?, claimed_until = NULL WHERE id IN "


_Stored = Sequence[tuple[str, str, str, datetime]]


def _store_statement(driver: Driver, items: _Stored, lease: timedelta) -> tuple[str, list[Any]]:
    """The INSERT of claimed events (its RETURNING read by ``_stored_ids``) and its values."""
    types = codec("inbound_store", _STORE_COLUMNS, driver.dialect)
    names = ", ".join(c.name for c in _STORE_COLUMNS)
    sql = (f"INSERT INTO inbound_events ({names}) VALUES {', '.join(_STORE_ROW for _ in items)} "
           "ON CONFLICT (channel, event_id) DO NOTHING RETURNING id, channel, event_id")
    params: list[Any] = []
    for channel, event_id, payload, received in items:
        values = (channel, event_id, payload, EVENT_PROCESSING, 1, received, received + lease)
        params += [types.bind(key, value) for key, value in zip(types.keys, values, strict=True)]
    return sql, params


def _stored_ids(items: _Stored, returned: Sequence[Sequence[Any]]) -> list[int | None]:
    stored = {(channel, event_id): row_id for row_id, channel, event_id in returned}
    return [stored.pop((channel, event_id), None) for channel, event_id, _, _ in items]


def _finish_statement(driver: Driver, row_ids: Sequence[int], now: datetime | None) -> tuple[str, list[Any]]:
    """The UPDATE stamping events done, and its values."""
    types = codec("inbound_finish", (_events.c.processed_at,), driver.dialect)
    sql = _FINISH_SQL + "(" + ", ".join("?" for _ in row_ids) + ")"
    return sql, [EVENT_DONE, types.bind("processed_at", now or utcnow()), *row_ids]


async def store_claimed_inbound_events_raw(driver: Driver, items: _Stored, *,
                                           lease: timedelta = INBOUND_LEASE) -> list[int | None]:
    """``store_claimed_inbound_events`` at the driver (bot/db/rawsql.py ``transaction``), for the
    webhook path's group commit: the same rows, the same answer."""
    if not items:
        return []
    return _stored_ids(items, await driver.rows(*_store_statement(driver, items, lease)))


async def write_inbound_batch_raw(driver: Driver, items: _Stored, done_ids: Sequence[int], *,
                                  now: datetime | None = None, lease: timedelta = INBOUND_LEASE) -> list[int | None]:
    """One group commit of the webhook path: store ``items`` claimed and stamp ``done_ids``
    done; the new row id per item (None: stored already), as ``store_claimed_inbound_events_raw``.

    Where it can, this is a single statement — atomic on its own, so it needs no BEGIN/COMMIT
    round trips of its own (``rawsql.connection``): stores alone, stamps alone, and on
    PostgreSQL both (the UPDATE as a data-modifying ``WITH``, which SQLite lacks). SQLite with
    both: two statements, to be run inside ``rawsql.transaction``; ``one_statement`` tells."""
    if items and done_ids and driver.postgres:
        finish, finish_params = _finish_statement(driver, done_ids, now)
        store, store_params = _store_statement(driver, items, lease)
        return _stored_ids(items, await driver.rows(f"WITH finished AS ({finish}) {store}",
                                                    finish_params + store_params))
    ids = await store_claimed_inbound_events_raw(driver, items, lease=lease)
    await finish_inbound_events_raw(driver, done_ids, now=now)
    return ids


def one_statement(postgres: bool, stores: int, done: int) -> bool:
    """Whether ``write_inbound_batch_raw`` writes this batch in one statement (see there)."""
    return postgres or not (stores and done)


async def finish_inbound_events_raw(driver: Driver, row_ids: Sequence[int], *, now: datetime | None = None) -> None:
    """``finish_inbound_events`` at the driver (the webhook path's group commit)."""
    if row_ids:
        await driver.execute(*_finish_statement(driver, row_ids, now))


# Only through the status index (the few rows in flight): a condition on ``channel`` (or ``id``)
# would let SQLite (PostgreSQL) pick another index and scan every stored event of the channel,
# so those are checked on the rows found.
_EARLIER_SQL = ("SELECT id, channel, payload FROM inbound_events WHERE status IN ('pending', 'processing') "
                "AND payload LIKE ? ESCAPE '!'")


# The same look in the statement that takes the turn's advisory lock (PostgreSQL): the lock
# is held when the rows come back. Their snapshot may predate the wait for the lock, which
# only errs one way: an event seen unfinished may have finished meanwhile (the turn defers
# and looks again); an event seen finished stays finished (its status never goes back).
_EARLIER_LOCKING_SQL = ("WITH turn_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(?)) "
                        "SELECT e.id, e.channel, e.payload FROM turn_lock LEFT JOIN inbound_events e "
                        "ON e.status IN ('pending', 'processing') AND e.payload LIKE ? ESCAPE '!'")


async def earlier_unfinished_events(driver: Driver, channel: str, platform_user_id: str, before_id: int,
                                    *, lock: TurnLock | None = None) -> list[int]:
    """Ids of stored events of this user on this channel, older than ``before_id``, that are
    not answered yet (pending, or being processed). Few rows are ever unfinished (those in
    flight), found through the status index; the user is confirmed on the parsed payload.

    ``lock``: the turn's lock, taken by the same statement when it is not held yet (one
    round trip, not two)."""
    pattern = "%" + platform_user_id.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
    if lock is not None and not lock.held and driver.postgres:
        rows = await driver.rows(_EARLIER_LOCKING_SQL, (lock.key, pattern))
        lock.held = True
    else:
        rows = await driver.rows(_EARLIER_SQL, (pattern,))
    found = []
    for row_id, row_channel, raw in rows:
        if row_id is None or row_channel != channel or row_id >= before_id:
            continue
        try:
            parsed = json.loads(raw)
        except ValueError:
            continue
        if _mentions_user(parsed, channel, platform_user_id):
            found.append(int(row_id))
    return sorted(found)


async def claim_inbound_events(
    session: AsyncSession,
    *,
    ids: Sequence[int] | None = None,
    limit: int = 50,
    lease: timedelta = INBOUND_LEASE,
    max_attempts: int = INBOUND_MAX_ATTEMPTS,
    now: datetime | None = None,
) -> list[InboundEvent]:
    """Claim events to process: pending ones, and "processing" ones whose processor died (lease over).

    Claimed rows become "processing" with ``claimed_until = now + lease`` and one more
    attempt; commit at once, process, then ``finish_inbound_event``. ``ids`` restricts the
    claim to those rows (the webhook claims the row it has just stored). Rows whose lease
    ran out after ``max_attempts`` are marked failed instead of being retried forever.
    On PostgreSQL concurrent claimers skip each other's rows (FOR UPDATE SKIP LOCKED).
    """
    now = now or utcnow()
    expired = and_(InboundEvent.status == EVENT_PROCESSING, InboundEvent.claimed_until < now)

    give_up = update(InboundEvent).where(expired, InboundEvent.attempts >= max_attempts)
    if ids is not None:
        give_up = give_up.where(InboundEvent.id.in_(list(ids)))
    await session.execute(
        give_up.values(status=EVENT_FAILED, processed_at=now, claimed_until=None,
                       error=f"gave up after {max_attempts} attempts (processor lease expired)")
        .execution_options(synchronize_session=False)
    )

    query = (
        select(InboundEvent)
        .where(or_(InboundEvent.status == EVENT_PENDING, expired))
        .order_by(InboundEvent.received_at, InboundEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if ids is not None:
        query = query.where(InboundEvent.id.in_(list(ids)))
    rows = list((await session.execute(query)).scalars())
    for row in rows:
        row.status = EVENT_PROCESSING
        row.attempts = (row.attempts or 0) + 1
        row.claimed_until = now + lease
    await session.flush()
    return rows


async def finish_inbound_event(
    session: AsyncSession, row_id: int, *, error: str | None = None, now: datetime | None = None
) -> None:
    """Stamp a claimed event done (or failed with ``error``; the error text must not contain message text)."""
    await session.execute(
        update(InboundEvent)
        .where(InboundEvent.id == row_id)
        .values(
            status=EVENT_FAILED if error else EVENT_DONE,
            error=error,
            processed_at=now or utcnow(),
            claimed_until=None,
        )
        .execution_options(synchronize_session=False)
    )


async def prune_inbound_events(
    session: AsyncSession, *, older_than: timedelta = INBOUND_RETENTION, now: datetime | None = None
) -> int:
    """Delete stored webhook events received more than ``older_than`` ago (privacy + de-dup window)."""
    cutoff = (now or utcnow()) - older_than
    result = await session.execute(
        delete(InboundEvent)
        .where(InboundEvent.received_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
