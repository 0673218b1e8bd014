"""Fixtures of the consultation tests: the real app (lifespan, real knowledge base, the
outbox relay running) wired to the fake LINE and Telegram servers and, when asked, to a
real SMTP server on loopback (aiosmtpd) — on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

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
async def consult_app(database_url: str, line_api, telegram_api, deployment_kb_dir) -> AsyncIterator[Kurashi]:
    """The running app on SQLite and PostgreSQL with a fixed conversation clock (Wednesday 14:00 JST),
    on the deployment's knowledge base (``deployment_knowledge``)."""
    async for harness in _running(database_url, line_api, telegram_api, knowledge_dir=deployment_kb_dir):
        yield harness


@pytest.fixture
async def consult_app_with_smtp(sqlite_url: str, line_api, telegram_api, smtp_server,
                                deployment_kb_dir) -> AsyncIterator[tuple[Kurashi, Any]]:
    url, mailbox = smtp_server
    async for harness in _running(sqlite_url, line_api, telegram_api, smtp_url=url, smtp_from="kurashi@test.example",
                                  knowledge_dir=deployment_kb_dir):
        yield harness, mailbox


@pytest.fixture
async def unconfigured_app(database_url: str, line_api, telegram_api) -> AsyncIterator[Kurashi]:
    """The project's own knowledge base, and no organisation has a notification target or a
    staff account (a fresh installation)."""
    async for harness in _running(database_url, line_api, telegram_api, reachable=False):
        yield harness


@pytest.fixture
async def unconfigured_deployment_app(database_url: str, line_api, telegram_api, deployment_kb_dir) -> AsyncIterator[Kurashi]:
    """The deployment's knowledge base before any staff account or notification target exists."""
    async for harness in _running(database_url, line_api, telegram_api, reachable=False, knowledge_dir=deployment_kb_dir):
        yield harness


@pytest.fixture
async def project_app(database_url: str, line_api, telegram_api) -> AsyncIterator[Kurashi]:
    """The project's own knowledge base with every organisation reachable."""
    async for harness in _running(database_url, line_api, telegram_api):
        yield harness


async def make_reachable(services: Any, *orgs: str) -> None:
    """Register an e-mail target (``kurashi staff notify --email``) for ``orgs`` (default: every
    partner), so routing may pick them (organisations nobody hears about are skipped)."""
    from bot.consult.staff import set_notify

    async with services.sessionmaker() as session, session.begin():
        for org in orgs or tuple(services.kb.partners.partners):
            await set_notify(session, services.kb, org, emails=[f"cases@{org}.example"])


async def add_closed_case(session: Any, kb: Any, staff: Any, user: Any, *, at: datetime,
                          text: str = "private words") -> Any:
    """A consultation of ``user`` with one message, submitted and closed ("resolved") by
    ``staff``, all at ``at`` (in the caller's transaction); returns the case."""
    from bot.consult import cases

    case = await cases.create_case(session, user, topic="other", org="yfrcc", language="en", now=at)
    await cases.add_message(session, case, text=text, now=at)
    await cases.submit_case(session, kb, case, now=at)
    await cases.close(session, kb, staff, case.id, "resolved", now=at)
    return case


#: The answer times this test deployment agreed with its organisations (CONSULT_RESPONSE_HOURS).
RESPONSE_HOURS = "48,yfrcc=24,yiea=24,otit=24"
KNOWLEDGE = Path(__file__).resolve().parents[2] / "knowledge"


def deployment_knowledge(target: Path) -> Path:
    """The project's knowledge base as a deployment that has confirmed its trainee and
    student partners: OTIT's hotline and a university office with a (test-only) verified
    contact. The project's own file presents neither (no confirmed contact), so residents
    there are routed to the consultation centre; these tests exercise routing to them."""
    root = target / "knowledge"
    shutil.copytree(KNOWLEDGE, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    contacts_path, partners_path = root / "contacts.yaml", root / "partners.yaml"
    contacts = yaml.safe_load(contacts_path.read_text(encoding="utf-8"))
    contacts["contacts"]["otit_hotline"]["verified"] = True
    contacts["contacts"]["yu_test_office"] = {
        "name": {lang: "Yamaguchi University international student office (test)"
                 for lang in ("ja", "en", "vi", "zh", "ko")},
        "url": "https://example.org/yamaguchi-university-test", "source": "test deployment", "verified": True}
    contacts_path.write_text(yaml.safe_dump(contacts, allow_unicode=True, sort_keys=False), encoding="utf-8")
    partners = yaml.safe_load(partners_path.read_text(encoding="utf-8"))
    partners["partners"]["otit"]["verified"] = True
    partners["partners"]["yu_international"].update(contact="yu_test_office", verified=True)
    partners_path.write_text(yaml.safe_dump(partners, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def deployment_kb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return deployment_knowledge(tmp_path_factory.mktemp("deployment"))


@pytest.fixture(autouse=True)
def response_hours() -> Iterator[None]:
    """Tests that build cases without the app get the same deployment setting as the app."""
    from bot.consult.routing import configure_response_hours

    configure_response_hours(RESPONSE_HOURS)
    yield
    configure_response_hours(None)


async def _running(database_url: str, line_api: Any, telegram_api: Any, *, reachable: bool = True,
                   **overrides: Any) -> AsyncIterator[Kurashi]:
    overrides.setdefault("consult_response_hours", RESPONSE_HOURS)
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
