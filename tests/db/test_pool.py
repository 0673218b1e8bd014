"""The connection pool: connections are kept (not reopened under load) and one found dead
after a quiet spell is replaced before anyone sees it — on SQLite and PostgreSQL."""
import asyncio

import pytest
from sqlalchemy import event, text

from bot.db.session import POOL_SIZE, SQLITE_POOL_SIZE, create_engine_and_sessionmaker
from bot.inbound import PROCESSING_CONCURRENCY


async def test_the_pool_keeps_its_connections_across_bursts(database_url: str) -> None:
    """16 turns at once plus the writer, relay and console: with SQLAlchemy's default pool
    (5 kept + 10 overflow) the extra connections were closed on return and opened again on
    the next burst. PostgreSQL keeps one for every concurrent turn; SQLite keeps its 15 (its
    writers take turns anyway) and the rest wait in the pool's queue."""
    engine, maker = create_engine_and_sessionmaker(database_url)
    postgres = engine.dialect.name == "postgresql"
    assert POOL_SIZE > PROCESSING_CONCURRENCY
    opened = 0

    @event.listens_for(engine.sync_engine, "connect")
    def _count(*_args: object) -> None:
        nonlocal opened
        opened += 1

    async def turn() -> None:
        async with maker() as session:
            await session.execute(text("SELECT 1"))
            await asyncio.sleep(0.02)          # all of them want a connection at once

    burst = PROCESSING_CONCURRENCY + 2
    try:
        await asyncio.gather(*(turn() for _ in range(burst)))
        first_burst = opened
        for _ in range(3):
            await asyncio.gather(*(turn() for _ in range(burst)))
        assert first_burst == (burst if postgres else SQLITE_POOL_SIZE)
        assert opened == first_burst            # later bursts reuse them: nothing reopened
    finally:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize(("ping_idle_seconds", "replaced"), [(0.2, True), (3600.0, False)])
async def test_a_connection_closed_while_idle_is_replaced_before_use(postgres_url: str, ping_idle_seconds: float,
                                                                     replaced: bool) -> None:
    """PostgreSQL restarted (or an idle timeout) while the pool held a connection: the next
    transaction after a quiet spell (here 0.2 s) still works, on a fresh connection. A
    connection idle for less than ``ping_idle_seconds`` is not checked (no round trip per
    transaction): the dead one then fails its transaction — the failure the check prevents."""
    engine, maker = create_engine_and_sessionmaker(postgres_url, ping_idle_seconds=ping_idle_seconds)
    _admin, admin_maker = create_engine_and_sessionmaker(postgres_url)
    try:
        async with maker() as session:
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
        async with admin_maker() as admin:
            assert await admin.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            for _ in range(100):        # until the backend is gone
                if not await admin.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                          {"pid": pid}):
                    break
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)
        if replaced:
            async with maker() as session:
                assert await session.scalar(text("SELECT pg_backend_pid()")) != pid
        else:
            with pytest.raises(Exception):  # noqa: B017 - asyncpg's or SQLAlchemy's disconnect error
                async with maker() as session:
                    await session.scalar(text("SELECT pg_backend_pid()"))
    finally:
        await engine.dispose()
        await _admin.dispose()
