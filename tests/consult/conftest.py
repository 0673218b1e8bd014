"""Fixtures of the consultation tests: the real app (lifespan, real knowledge base, the
outbox relay running) wired to the fake LINE and Telegram servers and, when asked, to a
real SMTP server on loopback (aiosmtpd) — on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bot.app import create_app
from tests.channels.conftest import Kurashi, kurashi_settings

#: Wednesday 14:00 in Yamaguchi: OTIT's Vietnamese line and the centre are open.
WEDNESDAY_2PM = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)


class Mailbox:
    """Messages received by the loopback SMTP server."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd handler
        from email import message_from_bytes, policy

        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    async def wait_for(self, count: int = 1, timeout: float = 15.0) -> list[Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.messages) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"expected {count} e-mails, got {len(self.messages)}")
            await asyncio.sleep(0.05)
        return self.messages


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, Mailbox]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1; yields (SMTP_URL, mailbox)."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    # aiosmtpd's start() connects to its own port to check it is up, so port 0 cannot be used.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", mailbox
    finally:
        controller.stop()


@pytest.fixture
async def consult_app(database_url: str, line_api, telegram_api) -> AsyncIterator[Kurashi]:
    """The running app on SQLite and PostgreSQL with a fixed conversation clock (Wednesday 14:00 JST)."""
    async for harness in _running(database_url, line_api, telegram_api):
        yield harness


@pytest.fixture
async def consult_app_with_smtp(sqlite_url: str, line_api, telegram_api, smtp_server) -> AsyncIterator[tuple[Kurashi, Any]]:
    url, mailbox = smtp_server
    async for harness in _running(sqlite_url, line_api, telegram_api, smtp_url=url, smtp_from="kurashi@test.example"):
        yield harness, mailbox


@pytest.fixture
async def unconfigured_app(database_url: str, line_api, telegram_api) -> AsyncIterator[Kurashi]:
    """Like ``consult_app`` but no organisation has a notification target or staff account."""
    async for harness in _running(database_url, line_api, telegram_api, reachable=False):
        yield harness


async def make_reachable(services: Any, *orgs: str) -> None:
    """Register an e-mail target (``kurashi staff notify --email``) for ``orgs`` (default: every
    partner), so routing may pick them (organisations nobody hears about are skipped)."""
    from bot.consult.staff import set_notify

    async with services.sessionmaker() as session, session.begin():
        for org in orgs or tuple(services.kb.partners.partners):
            await set_notify(session, services.kb, org, emails=[f"cases@{org}.example"])


async def _running(database_url: str, line_api: Any, telegram_api: Any, *, reachable: bool = True,
                   **overrides: Any) -> AsyncIterator[Kurashi]:
    settings = kurashi_settings(database_url, line_api, telegram_api, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        app.state.services.engine.clock = lambda: WEDNESDAY_2PM
        if reachable:   # a deployed organisation has its notification targets (kurashi staff notify)
            await make_reachable(app.state.services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kurashi.test") as client:
            harness = Kurashi(app, client, settings, line_api, telegram_api)
            yield harness
            await harness.settle()
