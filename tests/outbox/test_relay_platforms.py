"""The relay end to end through the real adapters (line-bot-sdk, python-telegram-bot) to the fake platforms."""
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.channels.line import LineChannel
from bot.channels.telegram import TelegramChannel
from bot.db import repo
from bot.db.models import OutboxMessage, User
from delivery.messages import Choice, Reply
from delivery.outbox import OutboxRelay, enqueue
from delivery.ratelimit import ChannelLimit
from tests.fakes.line_api import DEFAULT_CHANNEL_SECRET
from tests.outbox.recording import FakeClock

FAST = {"line": ChannelLimit(rate=100_000), "telegram": ChannelLimit(rate=100_000, per_recipient_rate=1000)}


@pytest.fixture
async def line_channel(line_api):
    channel = LineChannel(channel_secret=DEFAULT_CHANNEL_SECRET, access_token=line_api.access_token,
                          api_base_url=line_api.base_url)
    await channel.start()
    yield channel
    await channel.close()


@pytest.fixture
async def telegram_channel(telegram_api):
    channel = TelegramChannel(token=telegram_api.token, api_base_url=telegram_api.base_url)
    await channel.start()
    yield channel
    await channel.close()


async def drain(relay):
    total = 0
    while (n := await relay.relay_once()) > 0:
        total += n
    return total


async def stored(sessionmaker):
    async with sessionmaker() as s:
        return list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def test_line_multicast_batches_reach_every_user_once_even_when_an_answer_is_lost(
    sessionmaker, line_api, line_channel
):
    clock = FakeClock()
    users = [f"U{i:032x}" for i in range(1100)]
    async with sessionmaker() as s, s.begin():
        await enqueue(s, channel="line", recipients=users, kind="alert", now=clock.now(),
                      replies=[Reply("Heavy rain warning", quick_replies=[Choice("Menu", "menu")])])
    # LINE accepts the first multicast, but the answer is lost (500): the relay must retry
    # with the same X-Line-Retry-Key, and LINE must not deliver it twice.
    line_api.fail_next("multicast", 500, deliver=True)
    relay = OutboxRelay(sessionmaker, {"line": line_channel}, FAST, clock, backoff_base=1.0)

    await drain(relay)
    clock.advance(5)
    await drain(relay)

    assert {r.status for r in await stored(sessionmaker)} == {"sent"}
    counts = Counter(u for d in line_api.deliveries for u in d.to)
    assert len(counts) == 1100 and set(counts.values()) == {1}
    assert all(len(d.to) <= 500 for d in line_api.deliveries)
    statuses = [r.status for r in line_api.requests_to("/v2/bot/message/multicast")]
    assert statuses.count(409) == 1 and statuses.count(500) == 1


async def test_line_429_is_retried_after_its_retry_after(sessionmaker, line_api, line_channel):
    clock = FakeClock()
    async with sessionmaker() as s, s.begin():
        await enqueue(s, channel="line", recipients=["U" + "a" * 32], replies=[Reply("hi")], kind="push",
                      now=clock.now())
    line_api.fail_next("push", 429, retry_after=30)
    relay = OutboxRelay(sessionmaker, {"line": line_channel}, FAST, clock, backoff_base=1.0)

    await relay.relay_once()
    [row] = await stored(sessionmaker)
    assert row.status == "pending" and row.send_after >= clock.now() + timedelta(seconds=30)
    clock.advance(30)
    await relay.relay_once()

    assert line_api.texts_for("U" + "a" * 32) == ["hi"]


async def test_telegram_pushes_flood_control_and_blocked_chats(sessionmaker, telegram_api, telegram_channel):
    clock = FakeClock()
    async with sessionmaker() as s, s.begin():
        for chat in ("101", "102", "103"):
            await repo.get_or_create_user(s, "telegram", chat)
        await enqueue(s, channel="telegram", recipients=["101", "102", "103"], kind="event", now=clock.now(),
                      replies=[Reply("Festival on Sunday", buttons=[Choice("More", "intent:events")])])
    telegram_api.block("103")
    telegram_api.fail_next("sendMessage", 429, retry_after=7)
    relay = OutboxRelay(sessionmaker, {"telegram": telegram_channel}, FAST, clock, backoff_base=1.0)

    await drain(relay)
    clock.advance(7)
    await drain(relay)

    rows = await stored(sessionmaker)
    assert [(r.recipients, r.status) for r in rows] == [(["101"], "sent"), (["102"], "sent"), (["103"], "failed")]
    assert telegram_api.texts_to("101") == ["Festival on Sunday"]
    assert telegram_api.texts_to("102") == ["Festival on Sunday"]
    assert telegram_api.texts_to("103") == []
    async with sessionmaker() as s:
        status = dict((await s.execute(select(User.platform_user_id, User.status))).all())
    assert status == {"101": "active", "102": "active", "103": "blocked"}
