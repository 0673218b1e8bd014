"""De-duplication of webhook deliveries on both databases: concurrent identical deliveries
and redeliveries are stored once and answered once (SQLite and PostgreSQL)."""
from __future__ import annotations

import asyncio

from tests.fakes.webhooks import line_body, line_text_event, telegram_text_update

USER = "U" + "f" * 32
CHAT = 31337


async def test_line_concurrent_duplicates_are_answered_once(kurashi_any_db) -> None:
    k = kurashi_any_db
    token = k.line_api.issue_reply_token(USER)
    body = line_body(line_text_event(USER, "garbage", reply_token=token))
    responses = await asyncio.gather(*(k.post_line(body) for _ in range(6)))
    await k.settle()
    redelivered = await k.post_line(body)
    await k.settle()
    assert {r.status_code for r in responses} | {redelivered.status_code} == {200}
    assert len(k.line_api.requests_to("/v2/bot/message/reply")) == 1
    assert [e.status for e in await k.stored_events("line")] == ["done"]


async def test_telegram_concurrent_duplicates_are_answered_once(kurashi_any_db) -> None:
    k = kurashi_any_db
    update = telegram_text_update(CHAT, "garbage")
    await asyncio.gather(*(k.post_telegram(update) for _ in range(6)))
    await k.settle()
    once = len(k.telegram_api.sent)
    await k.post_telegram(update)
    await k.settle()
    assert once >= 1 and len(k.telegram_api.sent) == once
    assert [e.status for e in await k.stored_events("telegram")] == ["done"]


async def test_batch_store_keeps_one_row_per_event(sessionmaker) -> None:
    """The webhook path's group commit stores many events in one statement: an event twice
    in the batch, or already stored, gets no second row and is reported as not new."""
    from datetime import timedelta

    from sqlalchemy import select

    from bot.db import repo
    from bot.db.models import InboundEvent, utcnow

    now = utcnow()
    async with sessionmaker() as session, session.begin():
        assert await repo.store_inbound_event(session, "line", "old", "{}")
    items = [("line", "a", "{}", now), ("line", "a", "{}", now), ("telegram", "a", "{}", now),
             ("line", "old", "{}", now)]
    async with sessionmaker() as session, session.begin():
        ids = await repo.store_claimed_inbound_events(session, items, lease=timedelta(seconds=60))
    assert ids[0] is not None and ids[2] is not None and ids[0] != ids[2]
    assert ids[1] is None and ids[3] is None
    async with sessionmaker() as session:
        rows = {(r.channel, r.event_id): r for r in (await session.execute(select(InboundEvent))).scalars()}
    assert len(rows) == 3
    assert (rows[("line", "a")].status, rows[("line", "a")].attempts) == ("processing", 1)
    assert rows[("line", "old")].status == "pending"
