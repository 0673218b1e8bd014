"""``mark_schema_upgraded``: the worker processes of `kurashi serve --workers N` skip the
upgrade their parent did — for that database and those migration heads only."""
import os
import sqlite3

from bot.db.session import SCHEMA_UPGRADED_ENV, mark_schema_upgraded, upgrade_database


def _tables(path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def test_a_marked_database_is_not_migrated_again_but_others_are(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(SCHEMA_UPGRADED_ENV, "")          # restored after the test
    marked, other = tmp_path / "marked.db", tmp_path / "other.db"
    mark_schema_upgraded(f"sqlite+aiosqlite:///{marked}")

    await upgrade_database(f"sqlite+aiosqlite:///{marked}")
    assert not marked.exists()                            # skipped: Alembic never opened it
    await upgrade_database(f"sqlite+aiosqlite:///{other}")
    assert {"alembic_version", "users", "inbound_events"} <= _tables(other)


async def test_a_mark_for_other_migration_heads_is_not_trusted(tmp_path, monkeypatch) -> None:
    """A worker restarted with newer code (a new migration) than its parent upgrades itself."""
    monkeypatch.setenv(SCHEMA_UPGRADED_ENV, "")
    db = tmp_path / "kurashi.db"
    mark_schema_upgraded(f"sqlite+aiosqlite:///{db}")
    database, _heads = os.environ[SCHEMA_UPGRADED_ENV].split(":", 1)
    monkeypatch.setenv(SCHEMA_UPGRADED_ENV, f"{database}:0001")

    await upgrade_database(f"sqlite+aiosqlite:///{db}")
    assert {"alembic_version", "users"} <= _tables(db)
