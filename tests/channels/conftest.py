"""Fixtures of the channel tests: the real app (lifespan, SQLite, real knowledge base)
wired to the fake LINE and Telegram servers, driven through ASGI with real signatures."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.db.models import InboundEvent, User
from bot.settings import Settings
from tests.fakes.line_api import FakeLineAPI
from tests.fakes.telegram_api import FakeTelegramAPI, telegram_spec_available
from tests.fakes.webhooks import TELEGRAM_SECRET_HEADER, line_signed

TELEGRAM_SECRET = "test-telegram-webhook-secret-3f9a"


@pytest.fixture
def telegram_api_spec() -> None:
    if not telegram_spec_available():
        pytest.skip("../shared/reference/telegram-bot-api is absent")


@dataclass
class Kurashi:
    """The running app and ways to talk to it like LINE and Telegram do."""

    app: Any
    client: httpx.AsyncClient
    settings: Settings
    line_api: FakeLineAPI
    telegram_api: FakeTelegramAPI

    @property
    def services(self) -> Any:
        return self.app.state.services

    async def post_line(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        if headers is None:
            headers = line_signed(body, self.settings.line_channel_secret or "")
        return await self.client.post("/webhooks/line", content=body, headers=headers)

    async def post_telegram(self, update: Any, secret: str | None = TELEGRAM_SECRET,
                            raw: bytes | None = None) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[TELEGRAM_SECRET_HEADER] = secret
        if raw is not None:
            return await self.client.post("/webhooks/telegram", content=raw, headers=headers)
        return await self.client.post("/webhooks/telegram", json=update, headers=headers)

    async def settle(self, timeout: float = 20.0) -> None:
        """Wait until every webhook's background processing has finished (and the rich menu
        links its replies started)."""
        loop_deadline = asyncio.get_running_loop().time() + timeout
        while True:
            pending = [t for t in self.services.tasks
                       if t.get_name() in ("inbound-line", "inbound-telegram") and not t.done()]
            if not pending:
                # The rich menu link a reply may start (best effort, off the reply path).
                menus = getattr(self.services.channels.get("line"), "menus", None)
                if menus is not None and menus._tasks:
                    await menus.drain()
                    continue
                return
            remaining = loop_deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError("inbound processing did not finish")
            await asyncio.wait(pending, timeout=remaining)

    async def stored_events(self, channel: str | None = None) -> list[InboundEvent]:
        async with self.services.sessionmaker() as session:
            query = select(InboundEvent).order_by(InboundEvent.id)
            if channel:
                query = query.where(InboundEvent.channel == channel)
            return list((await session.execute(query)).scalars())

    async def finished_events(self, timeout: float = 20.0) -> list[InboundEvent]:
        """The stored events once none is pending or being processed (answered by the test's own
        call or by the app's 3-second sweep, whichever claimed them first)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            events = await self.stored_events()
            if all(e.status not in ("pending", "processing") for e in events):
                return events
            assert asyncio.get_running_loop().time() < deadline, [(e.event_id, e.status) for e in events]
            await asyncio.sleep(0.05)

    async def user(self, channel: str, platform_user_id: str) -> User | None:
        async with self.services.sessionmaker() as session:
            return await session.scalar(
                select(User).where(User.channel == channel, User.platform_user_id == platform_user_id))

    async def count_events(self) -> int:
        async with self.services.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(InboundEvent)) or 0)


def kurashi_settings(database_url: str, line_api: FakeLineAPI, telegram_api: FakeTelegramAPI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "line_channel_secret": line_api.channel_secret,
        "line_channel_access_token": line_api.access_token,
        "line_api_base_url": line_api.base_url,
        "telegram_bot_token": telegram_api.token,
        "telegram_webhook_secret": TELEGRAM_SECRET,
        "telegram_api_base_url": telegram_api.base_url,
        "run_sender": True,
        "run_scheduler": False,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def kurashi(sqlite_url: str, line_api: FakeLineAPI, telegram_api: FakeTelegramAPI) -> AsyncIterator[Kurashi]:
    """The app on SQLite, talking to the fakes."""
    async for harness in _run_kurashi(sqlite_url, line_api, telegram_api):
        yield harness


@pytest.fixture
async def kurashi_any_db(database_url: str, line_api: FakeLineAPI,
                         telegram_api: FakeTelegramAPI) -> AsyncIterator[Kurashi]:
    """The app on SQLite and on PostgreSQL (skipped without KURASHI_TEST_POSTGRES_URL)."""
    async for harness in _run_kurashi(database_url, line_api, telegram_api):
        yield harness


async def _run_kurashi(database_url: str, line_api: FakeLineAPI, telegram_api: FakeTelegramAPI) -> AsyncIterator[Kurashi]:
    settings = kurashi_settings(database_url, line_api, telegram_api)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kurashi.test") as client:
            harness = Kurashi(app, client, settings, line_api, telegram_api)
            yield harness
            await harness.settle()


@pytest.fixture
def line_api_spec() -> None:
    from tests.fakes.line_api import line_spec_available

    if not line_spec_available():
        pytest.skip("../shared/reference/line-openapi is absent")
