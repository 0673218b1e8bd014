"""Database engines, sessions and schema upgrades.

Owns: building the async engine + sessionmaker for a ``DATABASE_URL`` (SQLite via
aiosqlite, PostgreSQL via asyncpg), the sync URL derived from it (Alembic, APScheduler's
job store), and ``upgrade_database`` — the only code that creates or alters tables —
with ``mark_schema_upgraded``, which lets the worker processes of ``kurashi serve
--workers N`` skip the upgrade their parent has already done.

Must not import the conversation core, channel adapters, platform SDKs or Settings (the
caller passes the URL).

SQLite notes (why the connect hooks below exist):
- WAL lets readers run while one writer writes; ``busy_timeout`` makes a second writer
  wait instead of failing at once; foreign keys are off in SQLite unless asked for, and
  ``ON DELETE CASCADE`` (forget me) needs them.
- Every transaction starts with ``BEGIN IMMEDIATE``: a transaction that reads and then
  writes (load a user, update its state) would otherwise fail with SQLITE_BUSY when
  another connection wrote in between, and busy_timeout cannot help with that. The price
  is that transactions are serialised, which is what a single SQLite file does anyway.
  Python's sqlite3 transaction handling is switched off so that SQLAlchemy's BEGIN is the
  one that counts (SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional
  DDL" for pysqlite/aiosqlite) — this also makes SAVEPOINT work.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import QueuePool

log = logging.getLogger("kurashi.db")

ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"
#: Set by ``mark_schema_upgraded`` (``kurashi serve --workers N``, in the parent, after it
#: upgraded the database): ``<digest of the database URL>:<migration heads>``. Processes that
#: inherit it skip ``upgrade_database`` for that database while their code has the same heads.
SCHEMA_UPGRADED_ENV = "KURASHI_SCHEMA_UPGRADED"
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Connections a process keeps open. The webhook path answers 16 events at once
#: (bot.inbound.PROCESSING_CONCURRENCY), each on a connection of its own, beside the
#: group-commit writer, the outbox relay, the scheduler and the console. With SQLAlchemy's
#: default (5 kept + 10 overflow) the overflow connections were closed on return and opened
#: again under load — a new PostgreSQL backend (fork, authentication) or a new SQLite
#: connection (a thread, the PRAGMAs below) every few events, which cost about a fifth of
#: the CPU per webhook event. ``kurashi serve --workers N`` on PostgreSQL: N × (POOL_SIZE +
#: POOL_OVERFLOW) must stay under ``max_connections`` (README, Several processes).
POOL_SIZE = 20
POOL_OVERFLOW = 5
#: SQLite: all connections kept, and no more at once than SQLAlchemy's default allowed (15):
#: its writers take turns at one lock, and one more waiting in SQLite's busy handler (which
#: sleeps, up to 100 ms a time) rather than in the pool's queue (woken the moment a
#: connection is back) only lengthens the tail (bench: sporadic p99 of 0.4–0.8 s at 100/s).
SQLITE_POOL_SIZE = 15
#: A pooled connection idle for longer than this is checked with a round trip before use
#: (a PostgreSQL restart or an idle-connection timeout closes it); one in steady use is not
#: (SQLAlchemy's ``pool_pre_ping`` pings at every checkout: a round trip per transaction).
PING_IDLE_SECONDS = 10.0


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sync_url(async_url: str) -> str:
    """The same database for a sync driver: sqlite+aiosqlite→sqlite, postgresql+asyncpg→postgresql+psycopg."""
    url = make_url(async_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        url = url.set(drivername="sqlite")
    elif backend == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _install_idle_ping(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a pooled connection at checkout only when it has been idle for ``idle_seconds``
    (SQLAlchemy docs, "Disconnect Handling - Pessimistic", custom variant): a connection
    found dead is replaced by a fresh one before the caller sees it."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["kurashi_idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("kurashi_idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure to ping means "replace it"
            raise DisconnectionError(f"pooled connection found closed: {type(exc).__name__}") from exc
        if alive is False:
            raise DisconnectionError("pooled connection found closed")


def create_engine_and_sessionmaker(
    url: str, *, ping_idle_seconds: float = PING_IDLE_SECONDS, **engine_kwargs: Any
) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    """An async engine for ``url`` and a sessionmaker bound to it (``expire_on_commit=False``).

    ``hide_parameters``: a database error's message (logged with its traceback) never carries
    the statement's values — webhook payloads, user ids, consultation texts (README: no
    message text in logs). The pool keeps POOL_SIZE connections open (see there) and checks
    a connection before use only after ``ping_idle_seconds`` idle."""
    engine_kwargs.setdefault("hide_parameters", True)
    if "poolclass" not in engine_kwargs and not is_sqlite(url):
        engine_kwargs.setdefault("pool_size", POOL_SIZE)
        engine_kwargs.setdefault("max_overflow", POOL_OVERFLOW)
    elif "poolclass" not in engine_kwargs and _sqlite_file(url) is not None:
        engine_kwargs.setdefault("pool_size", SQLITE_POOL_SIZE)
        engine_kwargs.setdefault("max_overflow", 0)
    if is_sqlite(url):
        path = _sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_async_engine(url, **engine_kwargs)
        _install_sqlite_hooks(engine)
    else:
        engine = create_async_engine(url, **engine_kwargs)
        if not engine_kwargs.get("pool_pre_ping") and isinstance(engine.sync_engine.pool, QueuePool):
            _install_idle_ping(engine, ping_idle_seconds)
    return engine, async_sessionmaker(engine, expire_on_commit=False)


class TurnTransaction:
    """One transaction on one pooled connection, with an ORM session only when asked for.

    A resident's plain question needs no ORM: its turn reads and writes the user at the
    driver (bot/db/rawsql.py). Opening an ``AsyncSession`` anyway — its transaction state
    machine, connection binding, commit and close — cost ~0.25 ms of CPU per turn on
    PostgreSQL (more on SQLite), a tenth of a plain turn. The session, when a feature asks
    for one (``session``), joins this very transaction, so everything commits or rolls back
    together."""

    __slots__ = ("_maker", "_session", "connection")

    def __init__(self, maker: async_sessionmaker[AsyncSession], connection: AsyncConnection) -> None:
        self._maker = maker
        self.connection = connection
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            # Joined: its commit()/close() neither commits nor ends the connection's transaction.
            self._session = self._maker(bind=self.connection, join_transaction_mode="conditional_savepoint")
        return self._session


@asynccontextmanager
async def turn_transaction(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[TurnTransaction]:
    """A ``TurnTransaction`` on a connection of ``maker``'s engine: committed when the block
    ends (what a session holds is flushed first), rolled back when it raises."""
    engine = maker.kw["bind"]
    async with engine.connect() as conn, conn.begin():
        tx = TurnTransaction(maker, conn)
        try:
            yield tx
            if tx._session is not None:
                await tx._session.flush()
        finally:
            if tx._session is not None:
                await tx._session.close()


def alembic_config(url: str) -> Any:
    """An Alembic Config for bot/db/migrations pointed at ``url`` (async or sync form)."""
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(ALEMBIC_INI.parent / "migrations"))
    # Passed as an attribute, not through the ini, so '%' in passwords needs no escaping.
    config.attributes["sync_url"] = sync_url(url)
    return config


def upgrade_database_sync(url: str, revision: str = "heads") -> None:
    """Run Alembic ``upgrade`` to ``revision`` (default: every head) on ``url``."""
    from alembic import command

    if is_sqlite(url):
        path = _sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def _schema_stamp(url: str) -> str:
    """Which database (a digest of its URL: no password in the environment) at which heads."""
    from alembic.script import ScriptDirectory

    heads = sorted(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    return hashlib.sha256(sync_url(url).encode()).hexdigest()[:16] + ":" + ",".join(heads)


def mark_schema_upgraded(url: str) -> None:
    """Say (in this process's environment, inherited by the processes it starts from now on)
    that ``url`` is upgraded to this code's heads. ``kurashi serve --workers N`` calls it in
    the parent after ``upgrade_database_sync``: N workers migrating at once would race
    (CREATE TABLE twice, or a half-applied migration seen by another worker). A worker whose
    code has other heads (restarted after a deployment with a new migration) still upgrades."""
    os.environ[SCHEMA_UPGRADED_ENV] = _schema_stamp(url)


def _upgrade_unless_marked(url: str) -> None:
    marked = os.environ.get(SCHEMA_UPGRADED_ENV)
    if marked and marked == _schema_stamp(url):
        log.info("database schema already upgraded before the workers started: not migrating again")
        return
    upgrade_database_sync(url)


async def upgrade_database(url: str) -> None:
    """Bring the schema of ``url`` up to date (Alembic upgrade heads), off the event loop —
    unless ``mark_schema_upgraded`` said so for this database and these heads."""
    await asyncio.to_thread(_upgrade_unless_marked, url)
