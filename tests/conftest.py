"""Shared test fixtures: real databases (SQLite files and throw-away PostgreSQL databases).

Fixtures:
- ``database_url``: parametrised over ["sqlite", "postgres"]; an upgraded (Alembic heads)
  database, async URL. postgres = a fresh ``kurashi_test_<random>`` database on the server
  of KURASHI_TEST_POSTGRES_URL, dropped (WITH (FORCE)) afterwards; skipped with a reason
  when that variable is unset.
- ``db_engine`` / ``sessionmaker``: AsyncEngine and async_sessionmaker over ``database_url``.
- ``sqlite_url``: an upgraded SQLite-only database, for tests that need no PostgreSQL.
- ``shared_dir``: ../shared beside the repository root (skips when absent).

Must not import the conversation core or channel adapters (every test package uses it).
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.db.session import create_engine_and_sessionmaker, upgrade_database, upgrade_database_sync

pytest_plugins = ["tests.fakes.plugin"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT / ".." / "shared"
POSTGRES_ENV = "KURASHI_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ../shared folder (spec, eval, reference); skips the test when absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"{SHARED_DIR.resolve()} is absent (../shared beside the repository root)")
    return SHARED_DIR.resolve()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per test session; each test gets a copy (migrating is slower)."""
    path = tmp_path_factory.mktemp("db-template") / "template.db"
    upgrade_database_sync(f"sqlite+aiosqlite:///{path}")
    return path


def _fresh_sqlite_url(template: Path, tmp_path: Path) -> str:
    path = tmp_path / "kurashi-test.db"
    shutil.copyfile(template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """An upgraded SQLite database file of its own (async URL)."""
    return _fresh_sqlite_url(_sqlite_template, tmp_path)


async def _create_postgres_database() -> tuple[str, str]:
    """CREATE DATABASE kurashi_test_<random> on the test server; returns (admin_url, new_url)."""
    admin_url = os.environ[POSTGRES_ENV]
    name = f"kurashi_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        await admin.dispose()
    new_url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return admin_url, new_url


async def _drop_postgres_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, upgraded PostgreSQL database (dropped after the test)."""
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} is not set")
    admin_url, url = await _create_postgres_database()
    try:
        await upgrade_database(url)
        yield url
    finally:
        await _drop_postgres_database(admin_url, url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(
    request: pytest.FixtureRequest, _sqlite_template: Path, tmp_path: Path
) -> AsyncIterator[str]:
    """An upgraded database of its own, on SQLite and on PostgreSQL (async URL)."""
    if request.param == "sqlite":
        yield _fresh_sqlite_url(_sqlite_template, tmp_path)
        return
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} is not set")
    admin_url, url = await _create_postgres_database()
    try:
        await upgrade_database(url)
        yield url
    finally:
        await _drop_postgres_database(admin_url, url)


@pytest.fixture
async def _db(database_url: str) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession]]]:
    engine, maker = create_engine_and_sessionmaker(database_url)
    try:
        yield engine, maker
    finally:
        await engine.dispose()


@pytest.fixture
def db_engine(_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]]) -> AsyncEngine:
    """The AsyncEngine over ``database_url`` (disposed after the test)."""
    return _db[0]


@pytest.fixture
def sessionmaker(_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]]) -> async_sessionmaker[AsyncSession]:
    """An async_sessionmaker over ``database_url`` (expire_on_commit=False)."""
    return _db[1]
