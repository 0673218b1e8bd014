"""End to end: an event notice and a garbage reminder queued by their jobs reach the residents
through the outbox relay and the real LINE/Telegram adapters, driven against the loopback fakes
(tests/fakes). Also: the recurring jobs are registered under importable "module:function" ids."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.util import ref_to_obj

from scheduler import events, garbage_jobs
from scheduler.jobs import RECURRING_JOBS
from tests.events.helpers import add_users, make_ctx
from tests.garbage.calendars import as_real_calendar

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
async def platforms(line_api, telegram_api) -> AsyncIterator[dict[str, Any]]:
    from bot.channels.line import LineChannel
    from bot.channels.telegram import TelegramChannel
    from tests.fakes.line_api import DEFAULT_CHANNEL_SECRET

    line = LineChannel(channel_secret=DEFAULT_CHANNEL_SECRET, access_token=line_api.access_token,
                       api_base_url=line_api.base_url)
    telegram = TelegramChannel(token=telegram_api.token, api_base_url=telegram_api.base_url)
    await line.start()
    await telegram.start()
    yield {"line": line, "telegram": telegram}
    await line.close()
    await telegram.close()


async def _relay_all(sessionmaker, platforms, now: datetime) -> None:
    from delivery.outbox import OutboxRelay
    from delivery.ratelimit import ChannelLimit
    from tests.outbox.recording import FakeClock

    relay = OutboxRelay(sessionmaker, platforms, {"line": ChannelLimit(rate=1000),
                                                  "telegram": ChannelLimit(rate=1000, per_recipient_rate=100)},
                        FakeClock(now))
    while await relay.relay_once() > 0:
        pass


async def test_notice_and_reminder_reach_line_and_telegram(database_url, sessionmaker, kb, line_api,
                                                           telegram_api, platforms):
    await add_users(
        sessionmaker,
        {"platform_user_id": "U-vi", "language": "vi", "area": "oodono", "opt_events": True, "opt_garbage": True},
        {"platform_user_id": "U-en", "language": "en", "area": "oodono", "opt_events": True},
        {"platform_user_id": "200", "channel": "telegram", "language": "ja", "area": "oodono",
         "opt_events": True, "opt_garbage": True},
    )
    now = datetime(2026, 12, 1, 19, 0, tzinfo=TOKYO).astimezone(UTC)         # Tue evening; Wed is collection day
    async with sessionmaker() as session, session.begin():
        event = await events.create_event(session, events.EventSpec.from_dict({
            "title": {"en": "Bon dance", "vi": "Múa Bon", "ja": "ぼんおどり"},
            "starts_at": "2026-12-06T18:00", "areas": ["oodono"]}), now=now)
    # Reminders are never sent from a sample calendar: the same calendar marked real.
    ctx, _ = make_ctx(database_url, sessionmaker, as_real_calendar(kb), now)
    assert await events.publish_event(event.id, ctx=ctx) == 3
    assert (await garbage_jobs.send_garbage_reminders(ctx=ctx))["queued"] == 2
    await _relay_all(sessionmaker, platforms, now + timedelta(seconds=1))

    vi = line_api.texts_for("U-vi")
    assert len(vi) == 2 and any("Múa Bon" in t for t in vi) and any("燃やせないごみ" in t and "Ngày mai" in t for t in vi)
    assert ["Bon dance" in t for t in line_api.texts_for("U-en")] == [True]
    tg = telegram_api.texts_to("200")
    assert len(tg) == 2 and any("ぼんおどり" in t for t in tg) and any("あした" in t for t in tg)


def test_recurring_jobs_are_registered_and_importable():
    ids = {job.id: job for job in RECURRING_JOBS}
    assert ref_to_obj(ids["events:sweep"].func) is events.sweep_events
    assert ref_to_obj(ids["garbage:remind"].func) is garbage_jobs.send_garbage_reminders
    assert ref_to_obj("scheduler.events:publish_event") is events.publish_event
    assert ref_to_obj("scheduler.events:remind_event") is events.remind_event
