"""Clean shutdown of the webhook path (SQLite and PostgreSQL): an event being answered when
shutdown begins is finished within the grace period; one cut off after the grace period is
handed back (pending, no lease) and answered once by the next process; webhooks arriving
during shutdown are stored and answered by the next start; after shutdown, 503.

The fake LINE API holds the profile look-up of a follow event, so the app is caught with
an event in flight at a known point (before any answer went out)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import select

from bot.app import create_app
from bot.db.models import InboundEvent
from bot.db.session import create_engine_and_sessionmaker
from tests.channels.conftest import Kurashi, kurashi_settings
from tests.fakes.line_api import FakeLineAPI
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.webhooks import line_body, line_follow_event, line_text_event

USER_A = "U" + "a1" * 16
USER_B = "U" + "b2" * 16


class Process:
    """One kurashi process over ``database_url``: started by ``start``, shut down by ``stop``
    (the app's real lifespan), so that a test can act while it shuts down."""

    def __init__(self, database_url: str, line_api: FakeLineAPI, telegram_api: FakeTelegramAPI) -> None:
        self.settings = kurashi_settings(database_url, line_api, telegram_api)
        self.app = create_app(self.settings)
        self._lifespan = self.app.router.lifespan_context(self.app)
        self.line_api, self.telegram_api = line_api, telegram_api
        self.client: httpx.AsyncClient | None = None

    async def start(self) -> Kurashi:
        await self._lifespan.__aenter__()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://kurashi.test")
        return Kurashi(self.app, self.client, self.settings, self.line_api, self.telegram_api)

    async def stop(self) -> None:
        await self._lifespan.__aexit__(None, None, None)


@asynccontextmanager
async def running(database_url: str, line_api: FakeLineAPI, telegram_api: FakeTelegramAPI) -> AsyncIterator[Kurashi]:
    process = Process(database_url, line_api, telegram_api)
    k = await process.start()
    try:
        yield k
        await k.settle()
    finally:
        await process.stop()
        assert process.client is not None
        await process.client.aclose()


async def _events(k: Kurashi) -> dict[str, InboundEvent]:
    """Stored LINE events by platform event id (read with the process's database)."""
    async with k.services.sessionmaker() as session:
        rows = (await session.execute(select(InboundEvent).where(InboundEvent.channel == "line"))).scalars()
        return {row.event_id: row for row in rows}


async def _all_done(k: Kurashi, timeout: float = 20.0) -> dict[str, InboundEvent]:
    """The stored events once none is pending or processing (the start-up resume answers
    them in its own task, which ``Kurashi.settle`` does not wait for)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        events = await _events(k)
        if all(e.status in ("done", "failed") for e in events.values()):
            return events
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"events still open: {[e.status for e in events.values()]}")
        await asyncio.sleep(0.05)


async def _stored_states(database_url: str) -> dict[str, tuple[str, Any]]:
    """(status, lease) of every stored LINE event, read between two processes."""
    engine, maker = create_engine_and_sessionmaker(database_url)
    try:
        async with maker() as session:
            rows = (await session.execute(select(InboundEvent).where(InboundEvent.channel == "line"))).scalars()
            return {row.event_id: (row.status, row.claimed_until) for row in rows}
    finally:
        await engine.dispose()


async def _wait_for_profile_request(line_api: FakeLineAPI, user_id: str) -> None:
    await line_api.wait_until(lambda: any(r.path.endswith(f"/profile/{user_id}") for r in line_api.requests),
                              timeout=20)


def _reply_calls(line_api: FakeLineAPI, token: str) -> list[Any]:
    return [r for r in line_api.requests_to("/v2/bot/message/reply") if (r.json or {}).get("replyToken") == token]


async def test_shutdown_finishes_an_event_in_flight_and_stores_late_webhooks_for_the_next_start(
        database_url: str, line_api: FakeLineAPI, telegram_api: FakeTelegramAPI) -> None:
    process = Process(database_url, line_api, telegram_api)
    k = await process.start()
    try:
        follow_token = line_api.issue_reply_token(USER_A)
        follow = line_follow_event(USER_A, reply_token=follow_token)
        gate = line_api.hold("profile")
        assert (await k.post_line(line_body(follow))).status_code == 200
        await _wait_for_profile_request(line_api, USER_A)

        shutdown = asyncio.create_task(process.stop())
        while not k.services.closing:
            await asyncio.sleep(0.01)
        # A delivery during shutdown: stored (so LINE's 200 loses nothing), not answered now.
        late_token = line_api.issue_reply_token(USER_B)
        late = line_text_event(USER_B, "garbage", reply_token=late_token)
        assert (await k.post_line(line_body(late))).status_code == 200
        assert not shutdown.done()   # still waiting for the follow being answered
        gate.set()
        await asyncio.wait_for(shutdown, 30)

        assert len(_reply_calls(line_api, follow_token)) == 1      # finished, not cut off
        assert _reply_calls(line_api, late_token) == []
        assert k.services.closed
        closed = await k.post_line(line_body(line_text_event(USER_B, "hello")))
        assert closed.status_code == 503
    finally:
        line_api.release("profile")
        if not k.services.closing:   # failed before the shutdown: still stop the process
            await process.stop()
        assert process.client is not None
        await process.client.aclose()

    states = await _stored_states(database_url)
    assert states == {follow["webhookEventId"]: ("done", None), late["webhookEventId"]: ("pending", None)}

    async with running(database_url, line_api, telegram_api) as k2:
        await line_api.wait_for_reply(late_token, timeout=20)
        events = await _all_done(k2)
        assert len(events) == 2           # the 503 delivery was not stored
    assert len(_reply_calls(line_api, follow_token)) == 1      # the next process did not answer it again
    assert len(_reply_calls(line_api, late_token)) == 1
    assert line_api.requests_to("/v2/bot/message/push") == []


async def test_an_event_cut_off_by_the_grace_period_is_handed_back_and_answered_once(
        database_url: str, line_api: FakeLineAPI, telegram_api: FakeTelegramAPI) -> None:
    process = Process(database_url, line_api, telegram_api)
    k = await process.start()
    token = line_api.issue_reply_token(USER_A)
    follow = line_follow_event(USER_A, reply_token=token)
    try:
        k.services.shutdown_grace = 0.2
        line_api.hold("profile")
        assert (await k.post_line(line_body(follow))).status_code == 200
        await _wait_for_profile_request(line_api, USER_A)
        await asyncio.wait_for(process.stop(), 30)
    finally:
        line_api.release("profile")
        if not k.services.closing:
            await process.stop()
        assert process.client is not None
        await process.client.aclose()
    assert _reply_calls(line_api, token) == []

    # Pending with no lease, not "processing" until the 120 s lease runs out.
    assert await _stored_states(database_url) == {follow["webhookEventId"]: ("pending", None)}

    async with running(database_url, line_api, telegram_api) as k2:
        await line_api.wait_for_reply(token, timeout=20)
        assert [e.status for e in (await _all_done(k2)).values()] == ["done"]
    assert len(_reply_calls(line_api, token)) == 1
    assert line_api.requests_to("/v2/bot/message/push") == []
