"""Secrets and sessions of the public web app: signed web chat session ids (a made-up id is
a new session and counts against the new-session limit), Secure cookies behind https,
Content-Security-Policy and frame protection on every page, the optional /metrics token,
the /api/chat/updates throttle, unsafe settings said at start-up (refused in production),
and database errors logged without their parameters."""
from __future__ import annotations

import logging
import secrets

import httpx
import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.db.models import User
from bot.db.session import create_engine_and_sessionmaker
from bot.web import chat
from tests.conversation.kbfixture import load_fixture_kb
from tests.web.conftest import RunningApp, make_settings, serve, session_id


def client(app: RunningApp, **kw) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=app.url, trust_env=False, timeout=30, **kw)


async def _users(app: RunningApp) -> int:
    async with app.services.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_a_self_made_session_id_is_a_new_session_and_counts_against_the_limit(web_app: RunningApp):
    async with client(web_app) as http:
        start = await http.post("/api/chat", json={"event": "start", "lang": "en"})
        mine = session_id(start.cookies["kurashi_sid"])          # a signed id round-trips
        again = await http.post("/api/chat", json={"text": "hello"})
        assert again.status_code == 200 and session_id(http.cookies["kurashi_sid"]) == mine
    assert await _users(web_app) == 1
    statuses = []
    for i in range(chat.NEW_SESSION_LIMIT + 2):
        made_up = secrets.token_hex(16) if i % 2 else mine          # also: someone else's bare id
        async with client(web_app, cookies={"kurashi_sid": made_up}) as http:
            response = await http.post("/api/chat", json={"text": "hello"})
            statuses.append(response.status_code)
            if response.status_code == 200:
                assert session_id(response.cookies["kurashi_sid"]) not in (made_up, mine)
    # The first session took one of the ten; forged ids are new sessions, so the limit holds.
    assert statuses.count(200) == chat.NEW_SESSION_LIMIT - 1 and statuses[-1] == 429
    assert await _users(web_app) == chat.NEW_SESSION_LIMIT


@pytest.mark.parametrize("public, secure", [("https://kurashi.example.jp", True), ("http://127.0.0.1:8000", False)])
async def test_chat_cookie_is_secure_when_the_public_url_is_https(sqlite_url, public, secure):
    settings = make_settings(sqlite_url).model_copy(update={"public_base_url": public})
    app = create_app(settings, kb=load_fixture_kb())
    async for url in serve(app):
        async with httpx.AsyncClient(base_url=url, trust_env=False) as http:
            cookie = (await http.post("/api/chat", json={"event": "start"})).headers["set-cookie"]
    assert ("; secure" in cookie.lower()) is secure
    assert "httponly" in cookie.lower()


async def test_every_page_has_a_content_security_policy_and_cannot_be_framed(web_app: RunningApp):
    async with client(web_app) as http:
        for path in ("/", "/static/chat.js", "/api/chat/ui", "/console/login", "/healthz", "/nothing-here"):
            response = await http.get(path)
            csp = response.headers.get("content-security-policy", "")
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
            assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0], path
            assert response.headers.get("x-frame-options") == "DENY", path
            assert response.headers.get("x-content-type-options") == "nosniff", path


async def test_metrics_need_the_token_when_one_is_set(sqlite_url):
    settings = make_settings(sqlite_url).model_copy(update={"metrics_token": "scrape-token-7f3a9b"})
    app = create_app(settings, kb=load_fixture_kb())
    async for url in serve(app):
        async with httpx.AsyncClient(base_url=url, trust_env=False) as http:
            bare = await http.get("/metrics")
            wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
            right = await http.get("/metrics", headers={"Authorization": "Bearer scrape-token-7f3a9b"})
    assert (bare.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert "kurashi" in right.text


async def test_updates_polls_are_throttled_per_address(web_app: RunningApp):
    async with client(web_app) as http:
        await http.post("/api/chat", json={"event": "start"})
        statuses = [(await http.get("/api/chat/updates")).status_code for _ in range(chat.UPDATES_LIMIT + 1)]
    assert statuses[:-1] == [200] * chat.UPDATES_LIMIT
    assert statuses[-1] == 429


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("overrides, problem", [
    ({"secret_key": None}, "SECRET_KEY is not set"),
    ({"secret_key": "short-key"}, "SECRET_KEY is shorter than 32"),
    ({"telegram_bot_token": "123456:ABCdefGhIJKlmnOPQRstuVWXyz", "telegram_webhook_secret": None},
     "TELEGRAM_WEBHOOK_SECRET is not"),
])
async def test_unsafe_settings_are_said_at_start_up_and_refused_in_production(sqlite_url, overrides, problem):
    records = _Records()
    logging.getLogger().addHandler(records)
    try:
        settings = make_settings(sqlite_url).model_copy(update=overrides)
        app = create_app(settings, kb=load_fixture_kb())
        async with app.router.lifespan_context(app):
            pass                                                 # development: starts, and says why it is unsafe
        assert any(problem in m for m in records.messages), records.messages
        production = create_app(settings.model_copy(update={"environment": "production"}), kb=load_fixture_kb())
        with pytest.raises(RuntimeError, match="refusing to start"):
            async with production.router.lifespan_context(production):
                pass
    finally:
        logging.getLogger().removeHandler(records)
    safe = make_settings(sqlite_url).model_copy(update={"environment": "production"})
    assert safe.security_problems() == []


async def test_database_errors_do_not_carry_their_parameters(database_url):
    engine, maker = create_engine_and_sessionmaker(database_url)
    secret_text = "my visa expired and my boss keeps my passport"
    try:
        async with maker() as session:
            session.add(User(channel="line", platform_user_id=secret_text * 10))   # too long for PostgreSQL
            session.add(User(channel=None, platform_user_id=secret_text))          # NOT NULL everywhere
            with pytest.raises(Exception) as caught:
                await session.flush()
    finally:
        await engine.dispose()
    message = str(caught.value)
    assert secret_text not in message and "[parameters:" not in message
