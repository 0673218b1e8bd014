import sqlite3

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from bot.db.models import Base
from bot.db.session import alembic_config, sync_url, upgrade_database

STORAGE_TABLES = {"users", "inbound_events", "feedback", "unanswered", "outbox"}


def _diffs_in_storage_tables(url: str) -> list:
    engine = create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()

    def table_of(diff) -> str | None:
        for item in diff if isinstance(diff, list) else [diff]:
            for part in item[1:]:
                name = getattr(part, "name", None) if not isinstance(part, str) else part
                table = getattr(part, "table", None)
                if table is not None:
                    return table.name
                if name in STORAGE_TABLES:
                    return name
        return None

    return [d for d in diffs if table_of(d) in STORAGE_TABLES]


async def test_models_match_the_migrations(database_url):
    assert _diffs_in_storage_tables(database_url) == []


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_downgrade_to_base_and_upgrade_again(backend, tmp_path, request):
    url = (f"sqlite+aiosqlite:///{tmp_path / 'm.db'}" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))
    await upgrade_database(url)
    command.downgrade(alembic_config(url), "base")
    engine = create_engine(sync_url(url), poolclass=NullPool)
    with engine.connect() as conn:
        left = set(inspect(conn).get_table_names()) - {"alembic_version"}
    engine.dispose()
    assert not (left & STORAGE_TABLES)

    await upgrade_database(url)
    engine = create_engine(sync_url(url), poolclass=NullPool)
    with engine.connect() as conn:
        assert STORAGE_TABLES <= set(inspect(conn).get_table_names())
    engine.dispose()


def test_sqlite_database_is_in_wal_mode_with_foreign_keys(sqlite_url):
    from bot.db.session import create_engine_and_sessionmaker

    async def pragmas():
        engine, _ = create_engine_and_sessionmaker(sqlite_url)
        async with engine.connect() as conn:
            journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
        await engine.dispose()
        return journal, fks

    import asyncio

    assert asyncio.run(pragmas()) == ("wal", 1)
    path = sqlite_url.split("///", 1)[1]
    with sqlite3.connect(path) as conn:  # WAL is a property of the file, kept for every later connection
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
