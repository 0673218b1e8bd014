"""A real uvicorn server on 127.0.0.1:0 running ``create_app`` (lifespan included) in the
test's event loop, over an upgraded SQLite database and the conversation fixture KB."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import uvicorn
from fastapi import FastAPI

from bot.app import create_app
from bot.settings import Settings
from tests.conversation.kbfixture import load_fixture_kb


@dataclass
class RunningApp:
    url: str
    app: FastAPI

    @property
    def services(self):
        return self.app.state.services


async def serve(app: FastAPI) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises the start-up error
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


TEST_SECRET_KEY = "web-tests-secret-key-0123456789abcdefghij"


def make_settings(database_url: str) -> Settings:
    return Settings(_env_file=None, database_url=database_url, run_sender=False, run_scheduler=False,
                    line_channel_secret=None, line_channel_access_token=None, telegram_bot_token=None,
                    secret_key=TEST_SECRET_KEY)


def session_id(cookie: str) -> str:
    """The web chat session id inside the signed ``kurashi_sid`` cookie."""
    from itsdangerous import Signer

    return Signer(TEST_SECRET_KEY, salt="kurashi.web.sid").unsign(cookie).decode()


@pytest.fixture
async def web_app(sqlite_url: str) -> AsyncIterator[RunningApp]:
    app = create_app(make_settings(sqlite_url), kb=load_fixture_kb())
    async for url in serve(app):
        yield RunningApp(url, app)


@pytest.fixture
async def real_web_app(sqlite_url: str) -> AsyncIterator[RunningApp]:
    """The app on the project's real knowledge base (loaded and validated at start-up)."""
    app = create_app(make_settings(sqlite_url))
    async for url in serve(app):
        yield RunningApp(url, app)
