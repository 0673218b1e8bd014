"""Several `kurashi serve` processes on one PostgreSQL database: one resident's turns never
run at the same time (they would race on the stored conversation state); the second waits
for the first's commit. Another process is played by a connection holding the resident's
advisory lock."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from bot.conversation.engine import user_lock_key
from bot.db.session import create_engine_and_sessionmaker
from bot.services import build_services
from delivery.messages import Channel, IncomingMessage, Kind
from tests.conversation.kbfixture import load_fixture_kb
from tests.web.conftest import make_settings


async def test_one_residents_turns_are_serialised_across_processes(database_url) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises every writing turn already (one process, BEGIN IMMEDIATE)")
    services = await build_services(make_settings(database_url), kb=load_fixture_kb())
    other_engine, _ = create_engine_and_sessionmaker(database_url)
    user = "U" + "d" * 32
    try:
        async with other_engine.connect() as other:
            await other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": user_lock_key("line", user)})
            turn = asyncio.create_task(services.engine.handle(
                IncomingMessage(Channel.LINE, user, Kind.TEXT, text="hello")))
            done, _ = await asyncio.wait([turn], timeout=1.0)
            assert not done                                   # waits for the other process's turn
            someone_else = await services.engine.handle(
                IncomingMessage(Channel.LINE, "U" + "e" * 32, Kind.TEXT, text="hello"))
            assert someone_else                               # other residents are not held up
            await other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": user_lock_key("line", user)})
            assert await asyncio.wait_for(turn, 10)
    finally:
        await other_engine.dispose()
        await services.aclose()
