"""Durable web chat pushes and the abuse guards of POST /api/chat, over real uvicorn
servers on SQLite and PostgreSQL (tests/conftest.py ``database_url``)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from types import SimpleNamespace

import httpx
from sqlalchemy import func, select

from bot.app import create_app
from bot.db.models import OutboxMessage, User, WebMailboxMessage, utcnow
from bot.db.repo import get_or_create_user
from bot.db.session import create_engine_and_sessionmaker
from bot.privacy import prune_stored_rows
from bot.web.chat import NEW_SESSION_LIMIT, SlidingWindowLimiter
from delivery.messages import Reply
from delivery.outbox import OutboxRelay, enqueue
from tests.conversation.kbfixture import load_fixture_kb
from tests.web.conftest import RunningApp, make_settings, serve, session_id


@asynccontextmanager
async def running(database_url: str) -> AsyncIterator[RunningApp]:
    """One app process's life: start-up (lifespan) … shutdown."""
    app = create_app(make_settings(database_url), kb=load_fixture_kb())
    async for url in serve(app):
        yield RunningApp(url, app)


def client(app: RunningApp, cookies: httpx.Cookies | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=app.url, trust_env=False, timeout=30, cookies=cookies)


async def push_through_outbox(app: RunningApp, sid: str, texts: list[str]) -> None:
    """What a staff reply does: an outbox row, drained by the relay through the web channel."""
    services = app.services
    async with services.sessionmaker() as s, s.begin():
        await enqueue(s, channel="web", recipients=[sid], replies=[Reply(t) for t in texts], kind="case_reply")
    relay = OutboxRelay(services.sessionmaker, {"web": services.channels["web"]})
    assert await relay.relay_once(max_rows=10) == 1
    async with services.sessionmaker() as s:
        assert (await s.scalar(select(OutboxMessage.status))) == "sent"


async def count(database_url: str, model) -> int:
    engine, maker = create_engine_and_sessionmaker(database_url)
    try:
        async with maker() as s:
            return await s.scalar(select(func.count()).select_from(model))
    finally:
        await engine.dispose()


async def test_a_push_survives_a_restart_and_is_delivered_once(database_url):
    async with running(database_url) as first:
        async with client(first) as http:
            await http.post("/api/chat", json={"event": "start", "lang": "en"})
            cookies = http.cookies
            sid = session_id(cookies["kurashi_sid"])
        await push_through_outbox(first, sid, ["staff: your visa form is ready", "bring your residence card"])
    # The server restarted before the page polled: the reply is still there, exactly once.
    async with running(database_url) as second, client(second, cookies) as http:
        updates = (await http.get("/api/chat/updates")).json()["replies"]
        assert [u["text"] for u in updates] == ["staff: your visa form is ready", "bring your residence card"]
        assert (await http.get("/api/chat/updates")).json()["replies"] == []
        again = (await http.post("/api/chat", json={"text": "hello"})).json()["replies"]
        assert all(r["text"] != "bring your residence card" for r in again)


async def test_concurrent_polls_and_relay_retries_never_deliver_twice(database_url):
    async with running(database_url) as app, client(app) as http:
        await http.post("/api/chat", json={"event": "start", "lang": "en"})
        sid = session_id(http.cookies["kurashi_sid"])
        web = app.services.channels["web"]
        replies = [Reply(f"notice {i}") for i in range(3)]
        await web.push([sid], replies, retry_key="same-outbox-row")
        await web.push([sid], replies, retry_key="same-outbox-row")   # relay retry after a crash
        polls = await asyncio.gather(*(http.get("/api/chat/updates") for _ in range(6)))
        got = [r["text"] for p in polls for r in p.json()["replies"]]
        assert sorted(got) == ["notice 0", "notice 1", "notice 2"]
        # A push that arrives while the resident types comes with the answer, and only there.
        await web.push([sid], [Reply("late notice")], retry_key="other-row")
        answer = (await http.post("/api/chat", json={"text": "hello"})).json()["replies"]
        assert [r["text"] for r in answer].count("late notice") == 1
        assert (await http.get("/api/chat/updates")).json()["replies"] == []


async def test_forget_me_removes_pending_web_messages(database_url):
    async with running(database_url) as app, client(app) as http:
        await http.post("/api/chat", json={"event": "start", "lang": "en"})
        sid = session_id(http.cookies["kurashi_sid"])
        await app.services.channels["web"].push([sid], [Reply("unread staff reply")], retry_key="k")
        async with app.services.sessionmaker() as s:
            assert await s.scalar(select(func.count()).select_from(WebMailboxMessage)) == 1
        done = (await http.post("/api/chat", json={"data": "x:yes"})).json()["replies"]
        assert done[0]["text"] == app.services.kb.messages["forget.done"]["en"]
        assert all(r["text"] != "unread staff reply" for r in done)
        assert (await http.get("/api/chat/updates")).json()["replies"] == []
        async with app.services.sessionmaker() as s:
            assert await s.scalar(select(func.count()).select_from(WebMailboxMessage)) == 0
            assert await s.scalar(select(func.count()).select_from(User)) == 0
        # A staff reply queued for the forgotten session fails visibly instead of vanishing.
        async with app.services.sessionmaker() as s, s.begin():
            await enqueue(s, channel="web", recipients=[sid], replies=[Reply("too late")], kind="case_reply")
        relay = OutboxRelay(app.services.sessionmaker, {"web": app.services.channels["web"]})
        await relay.relay_once(max_rows=10)
        async with app.services.sessionmaker() as s:
            assert (await s.scalar(select(OutboxMessage.status))) == "failed"


async def test_post_without_a_cookie_is_rate_limited_per_address(database_url):
    # ``keeper``: an existing conversation from the same address.
    async with running(database_url) as app, client(app) as keeper:
        await keeper.post("/api/chat", json={"event": "start", "lang": "en"})
        statuses = []
        for _ in range(NEW_SESSION_LIMIT + 5):
            async with client(app) as curl:   # no cookie: each would be a new users row
                statuses.append(await curl.post("/api/chat", json={"text": "hi"}))
        refused = [r for r in statuses if r.status_code == 429]
        assert [r.status_code for r in statuses].count(200) == NEW_SESSION_LIMIT - 1
        assert len(refused) == 6
        assert int(refused[0].headers["Retry-After"]) >= 1
        body = refused[0].json()
        assert "too many requests" in body["error"] and body["retry_after"] >= 1
        assert "kurashi_sid" not in refused[0].cookies
        # The session that already exists goes on talking.
        assert (await keeper.post("/api/chat", json={"text": "hello"})).status_code == 200
    assert await count(database_url, User) == NEW_SESSION_LIMIT


def test_the_sliding_window_frees_up_and_stays_bounded():
    now = [0.0]
    limiter = SlidingWindowLimiter(2, 60.0, max_keys=3, clock=lambda: now[0])
    assert limiter.retry_after("a") == 0 and limiter.retry_after("a") == 0
    assert limiter.retry_after("a") == 60.0
    now[0] = 30.0
    assert limiter.retry_after("a") == 30.0          # refusals do not extend the wait
    now[0] = 60.0
    assert limiter.retry_after("a") == 0
    for key in "bcde":
        limiter.retry_after(key)
    assert len(limiter._hits) == 3 and "a" not in limiter._hits


async def test_the_daily_prune_forgets_delivered_pushes_and_idle_web_sessions(database_url):
    engine, maker = create_engine_and_sessionmaker(database_url)
    now = utcnow()
    try:
        from bot.channels.web import WebChannel

        web = WebChannel(maker)
        async with maker() as s, s.begin():
            await get_or_create_user(s, "web", "idle-session", now=now - timedelta(days=31))
            await get_or_create_user(s, "web", "active-session", now=now - timedelta(days=1))
            await get_or_create_user(s, "line", "U-idle-line", now=now - timedelta(days=90))
        await web.push(["active-session"], [Reply("old"), Reply("older")], retry_key="r1")
        await web.push(["active-session"], [Reply("unread")], retry_key="r2")
        async with maker() as s, s.begin():
            from delivery.web_mailbox import take_web_pushes

            await take_web_pushes(s, "active-session", now=now - timedelta(days=4))   # delivered r1… and r2
        await web.push(["active-session"], [Reply("new")], retry_key="r3")
        await web.push(["idle-session"], [Reply("never read")], retry_key="r4")

        ctx = SimpleNamespace(sessionmaker=maker, now=lambda: now,
                              settings=SimpleNamespace(insights_retention_days=180))
        result = await prune_stored_rows(ctx=ctx)
        assert (result["web_mailbox"], result["web_users"]) == (3, 1)
        async with maker() as s:
            users = set((await s.execute(select(User.platform_user_id))).scalars())
            left = [p["text"] for p in (await s.execute(select(WebMailboxMessage.payload))).scalars()]
        assert users == {"active-session", "U-idle-line"}
        assert left == ["new"]
    finally:
        await engine.dispose()
