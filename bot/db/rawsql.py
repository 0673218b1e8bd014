"""Driver-level statements on a session's own connection, for the few statements every
resident message runs (the turn's user, its advisory lock).

Why: SQLAlchemy's async execution costs ~0.2–0.3 ms of CPU per statement (compile-cache
look-up, greenlet hop, result wrapping) where the driver itself — asyncpg, aiosqlite —
costs ~0.05 ms; a turn runs three or four of them (issue 10's profile: "raw SQL 5×
cheaper"). The statements run on the very connection — and inside the very transaction —
of the caller's ``AsyncSession``, so they commit or roll back with everything else the
turn wrote. Values go in and out through the columns' own SQLAlchemy type processors, so
what is written here reads back through the ORM unchanged (and the other way round).

SQL is written once with ``?`` markers; PostgreSQL's ``$1, $2…`` are derived from it.
Only for fixed statements of this package: never build SQL from input here.

Must not import the conversation core, channel adapters, platform SDKs or Settings.
"""
from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Column
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

_MARK = re.compile(r"\?")
_pg_sql: dict[str, str] = {}


def _postgres(sql: str) -> str:
    converted = _pg_sql.get(sql)
    if converted is None:
        numbers = iter(range(1, 10_000))
        converted = _pg_sql[sql] = _MARK.sub(lambda _m: f"${next(numbers)}", sql)
    return converted


class Driver:
    """The driver connection under an ``AsyncSession``'s current transaction."""

    __slots__ = ("connection", "dialect", "postgres")

    def __init__(self, dialect: Dialect, connection: Any) -> None:
        self.dialect = dialect
        self.connection = connection
        self.postgres = dialect.name == "postgresql"

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """Run ``sql`` and return its rows (an empty list for a statement without any)."""
        if self.postgres:
            return list(await self.connection.fetch(_postgres(sql), *params))
        return list(await self.connection.execute_fetchall(sql, tuple(params)))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self.postgres:
            await self.connection.execute(_postgres(sql), *params)
        else:
            await self.connection.execute_fetchall(sql, tuple(params))


async def driver_of(source: AsyncSession | AsyncConnection | Driver) -> Driver:
    """The driver connection of ``source``'s transaction (begun now if it was not yet): a
    session's, or a Core connection's (``bot.db.session.turn_transaction``); a ``Driver`` as
    it is (a turn resolves its own once, not at every statement)."""
    if isinstance(source, Driver):
        return source
    conn = await source.connection() if isinstance(source, AsyncSession) else source
    fairy = await conn.get_raw_connection()
    if conn.dialect.name == "postgresql":
        adapted = fairy.dbapi_connection
        # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the first statement it runs;
        # a statement sent past it would run outside the transaction (autocommitted).
        if getattr(adapted, "_transaction", None) is None and getattr(adapted, "isolation_level", None) != "autocommit":
            await adapted._start_transaction()
    return Driver(conn.dialect, fairy.driver_connection)


@asynccontextmanager
async def connection(engine: AsyncEngine) -> AsyncIterator[Driver]:
    """A driver connection from ``engine``'s pool with no transaction of its own (autocommit:
    for single statements — reads that need no BEGIN (on SQLite, BEGIN IMMEDIATE would take the
    write lock), or a write that is atomic on its own and so needs no BEGIN/COMMIT round trips)."""
    async with engine.connect() as conn:
        fairy = await conn.get_raw_connection()
        yield Driver(conn.dialect, fairy.driver_connection)


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[Driver]:
    """A transaction of its own at the driver, on a connection from ``engine``'s pool:
    committed when the block ends, rolled back when it raises. For writers that need no ORM
    (the webhook path's group commit): BEGIN/COMMIT cost ~0.1 ms here, ~0.5 ms through
    SQLAlchemy. SQLite's is ``BEGIN IMMEDIATE`` like every other (bot/db/session.py)."""
    async with engine.connect() as conn:
        fairy = await conn.get_raw_connection()
        driver = Driver(conn.dialect, fairy.driver_connection)
        if driver.postgres:
            tx = driver.connection.transaction()
            await tx.start()
            try:
                yield driver
            except BaseException:
                await tx.rollback()
                raise
            await tx.commit()
        else:
            await driver.connection.execute_fetchall("BEGIN IMMEDIATE")
            try:
                yield driver
            except BaseException:
                await driver.connection.execute_fetchall("ROLLBACK")
                raise
            await driver.connection.execute_fetchall("COMMIT")


class Codec:
    """Bind and result conversions of some columns for one dialect (their type processors)."""

    def __init__(self, columns: Sequence[Column[Any]], dialect: Dialect) -> None:
        self.keys = tuple(c.key for c in columns)
        self._bind = {c.key: c.type._cached_bind_processor(dialect) for c in columns}
        self._result = tuple(c.type._cached_result_processor(dialect, None) for c in columns)

    def bind(self, key: str, value: Any) -> Any:
        process = self._bind[key]
        return process(value) if process is not None and value is not None else value

    def row(self, raw: Sequence[Any]) -> dict[str, Any]:
        return {key: (process(value) if process is not None else value)
                for key, process, value in zip(self.keys, self._result, raw, strict=True)}


_codecs: dict[tuple[int, str], Codec] = {}


def codec(table_key: str, columns: Sequence[Column[Any]], dialect: Dialect) -> Codec:
    """The (cached) Codec of ``columns`` for ``dialect``."""
    key = (id(dialect), table_key)
    found = _codecs.get(key)
    if found is None:
        found = _codecs[key] = Codec(columns, dialect)
    return found
