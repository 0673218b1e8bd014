"""Set-up shared by the benchmarks that push through the real adapters to the fake platforms
(bench_outbox, bench_alerts; bench_webhook drops its database the same way).

Owns: the fake LINE and Telegram APIs started in a child process (``start_fake_platforms``;
their CPU does not count against the relay, spec validation off — the test suite validates
every request, here it would be the bottleneck), a throw-away database (SQLite in a
temporary folder, or a fresh PostgreSQL database when KURASHI_TEST_POSTGRES_URL is set),
the adapters pointed at the fakes (``start_senders``), and ``run_against_fakes`` which ties
them together. Not a benchmark itself: ``make bench`` runs the bench_*.py modules.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


async def start_fake_platforms(telegram_latency: float = 0.0) -> tuple[Any, Any, dict[str, str]]:
    """In the child process: (fake LINE API, fake Telegram Bot API, what the parent needs to
    reach them: base URLs and credentials). ``telegram_latency``: a simulated round trip (s)."""
    from tests.fakes.line_api import FakeLineAPI
    from tests.fakes.telegram_api import FakeTelegramAPI

    line_api = await FakeLineAPI(validate=False).start()
    telegram_api = await FakeTelegramAPI(validate=False, latency=telegram_latency).start()
    return line_api, telegram_api, {"line": line_api.base_url, "line_token": line_api.access_token,
                                    "telegram": telegram_api.base_url, "telegram_token": telegram_api.token}


async def start_senders(fakes: dict[str, str]) -> dict[str, Any]:
    """The real LINE and Telegram adapters (line-bot-sdk, python-telegram-bot), started, sending
    to the fakes; close them with ``close_senders``."""
    from bot.channels.line import LineChannel
    from bot.channels.telegram import TelegramChannel

    line = LineChannel(channel_secret="bench-secret", access_token=fakes["line_token"], api_base_url=fakes["line"])
    telegram = TelegramChannel(token=fakes["telegram_token"], api_base_url=fakes["telegram"])
    await line.start()
    await telegram.start()
    return {"line": line, "telegram": telegram}


async def close_senders(senders: dict[str, Any]) -> None:
    for sender in senders.values():
        await sender.close()


def make_database(tmp: Path, filename: str) -> tuple[str, str | None]:
    """(async URL, PostgreSQL database name to drop or None): a SQLite file ``tmp/filename``, or
    a new database on KURASHI_TEST_POSTGRES_URL's server."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from bot.db.session import sync_url

    admin_url = os.environ.get("KURASHI_TEST_POSTGRES_URL")
    if not admin_url:
        return f"sqlite+aiosqlite:///{tmp / filename}", None
    name = f"kurashi_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), name


def drop_database(name: str) -> None:
    """Drop the PostgreSQL database ``make_database`` created."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from bot.db.session import sync_url

    admin = create_engine(sync_url(os.environ["KURASHI_TEST_POSTGRES_URL"]), isolation_level="AUTOCOMMIT",
                          poolclass=NullPool)
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def run_against_fakes(serve_fakes: Callable[[Any], None],
                      bench: Callable[[str, dict[str, str], Any], Awaitable[dict[str, Any]]],
                      db_file: str) -> tuple[dict[str, Any], str]:
    """Start ``serve_fakes(conn)`` in a spawned child (it first sends what ``start_fake_platforms``
    returned, then answers the bench's commands on ``conn``), make the database, run
    ``bench(url, fakes, conn)``, stop the child and drop the database.
    Returns (the bench's result, "SQLite" or "PostgreSQL")."""
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    mp = multiprocessing.get_context("spawn")
    parent, child = mp.Pipe()
    process = mp.Process(target=serve_fakes, args=(child,), daemon=True)
    process.start()
    drop: str | None = None
    try:
        fakes = parent.recv()
        with tempfile.TemporaryDirectory() as tmp:
            url, drop = make_database(Path(tmp), db_file)
            result = asyncio.run(bench(url, fakes, parent))
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
        if drop:
            drop_database(drop)
    return result, "PostgreSQL" if drop else "SQLite"
