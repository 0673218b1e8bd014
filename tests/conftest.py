"""Shared test fixtures: real databases (SQLite files and throw-away PostgreSQL databases).

Fixtures:
- ``database_url``: parametrised over ["sqlite", "postgres"]; an upgraded (Alembic heads),
  empty database, async URL. sqlite = a file of the test's own; postgres = one
  ``kurashi_test_<random>`` database per test run on the server of KURASHI_TEST_POSTGRES_URL
  (dropped WITH (FORCE) at the end), emptied before each test; skipped with the
  reason "KURASHI_TEST_POSTGRES_URL is not set" when that variable is unset.
- ``postgres_url``: a PostgreSQL database of the test's own (for schema-changing tests).
- ``db_engine`` / ``sessionmaker``: AsyncEngine and async_sessionmaker over ``database_url``.
- ``sqlite_url``: an upgraded SQLite-only database, for tests that need no PostgreSQL.
- ``shared_dir``: ../shared beside the repository root (skips when absent).
- ``chromium`` / ``new_page``: Debian's headless /usr/bin/chromium through Playwright (one
  launch, the same flags for every browser test), and pages of their own context in it.
  Tests marked ``browser`` are skipped with a reason where chromium is missing.

Must not import the conversation core or channel adapters (every test package uses it).
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import NullPool

from bot.db.session import create_engine_and_sessionmaker, sync_url, upgrade_database_sync

pytest_plugins = ["tests.fakes.plugin"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT / ".." / "shared"
POSTGRES_ENV = "KURASHI_TEST_POSTGRES_URL"
#: Debian's chromium (.ci/run installs it with apt when missing) and how every browser test starts it.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--no-proxy-server"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``browser`` skip, before any of their fixtures is set up, without chromium."""
    if CHROMIUM.exists():
        return
    missing = pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install chromium)")
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(missing)


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    """Headless chromium (a Playwright Browser), closed after the test."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


#: Where the browser tests leave their screenshots, to be looked at by hand (var/ is not committed).
SCREENSHOT_DIR = REPO_ROOT / "var" / "screenshots"


@pytest.fixture
def screenshot() -> Callable[..., Awaitable[Path]]:
    """``await screenshot(page, name, **options)``: the page saved as var/screenshots/<name>
    (options as Page.screenshot's: full_page…), checked to be a real picture (over
    ``min_bytes``), not an empty frame; returns its path."""
    async def take(page: Any, name: str, *, min_bytes: int = 5000, **options: Any) -> Path:
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / name
        await page.screenshot(path=str(path), **options)
        assert path.stat().st_size > min_bytes, f"{name}: an empty frame, not the page"
        return path

    return take


@pytest.fixture
def new_page(chromium: Any) -> Callable[..., Awaitable[Any]]:
    """``await new_page(width, height, locale, **context options)``: a page in a new context of
    ``chromium`` (options as Browser.new_context's: is_mobile, has_touch, device_scale_factor…);
    ``accept_dialogs=True`` answers every confirm() with OK."""
    async def open_page(width: int, height: int, locale: str, *, accept_dialogs: bool = False,
                        **options: Any) -> Any:
        context = await chromium.new_context(viewport={"width": width, "height": height}, locale=locale, **options)
        page = await context.new_page()
        if accept_dialogs:
            page.on("dialog", lambda dialog: dialog.accept())
        return page

    return open_page


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


def _postgres_admin() -> Engine:
    """A sync AUTOCOMMIT engine on the database named by KURASHI_TEST_POSTGRES_URL (for CREATE/DROP DATABASE)."""
    return create_engine(sync_url(os.environ[POSTGRES_ENV]), isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _postgres_url_for(name: str) -> str:
    return make_url(os.environ[POSTGRES_ENV]).set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(name: str) -> None:
    admin = _postgres_admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _create_postgres_database(prefix: str) -> str:
    """CREATE DATABASE <prefix><random>, migrated to the newest schema; returns its async URL."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    admin = _postgres_admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    url = _postgres_url_for(name)
    try:
        upgrade_database_sync(url)
    except BaseException:
        _drop_postgres_database(name)
        raise
    return url


@pytest.fixture(scope="session")
def _postgres_session_db() -> Iterator[str | None]:
    """One migrated PostgreSQL database per test run (CREATE DATABASE costs about a second here);
    ``database_url`` empties its tables before each test."""
    if not os.environ.get(POSTGRES_ENV):
        yield None
        return
    url = _create_postgres_database("kurashi_test_")
    try:
        yield url
    finally:
        _drop_postgres_database(make_url(url).database)


def _empty_postgres_tables(url: str) -> None:
    """DELETE every row and restart the id sequences. (TRUNCATE is much slower here: it
    creates and syncs new files for every table; the test tables hold a few rows.)"""
    engine = create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            tables = [row[0] for row in conn.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )]
            # Skip foreign-key triggers for this transaction, so the order of the DELETEs does
            # not matter (the test server's user is a superuser, as in .ci/run).
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            for table in tables:
                conn.exec_driver_sql(f'DELETE FROM "{table}"')
            for (sequence,) in conn.exec_driver_sql(
                "SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = 'public'"
            ):
                conn.exec_driver_sql(f"SELECT setval('\"{sequence}\"', 1, false)")
    finally:
        engine.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test's own (created, migrated, dropped after): for tests
    that change the schema. Slower than ``database_url``."""
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} is not set")
    url = _create_postgres_database("kurashi_test_")
    try:
        yield url
    finally:
        _drop_postgres_database(make_url(url).database)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, _sqlite_template: Path, tmp_path: Path
) -> Iterator[str]:
    """An upgraded, empty database, on SQLite (a file of its own) and on PostgreSQL (the run's
    database, tables emptied before the test). Async URL."""
    if request.param == "sqlite":
        yield _fresh_sqlite_url(_sqlite_template, tmp_path)
        return
    url = request.getfixturevalue("_postgres_session_db")
    if url is None:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    _empty_postgres_tables(url)
    yield url


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
