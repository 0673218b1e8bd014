"""Event notices: publish to targeted users through the outbox, cancel/edit before publishing,
the day-before reminder, the sweep after a missed job, the job store, and the events.upcoming answer.

Jobs are called directly with a fixed clock (APScheduler is not started); SQLite and PostgreSQL.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.conversation.engine import ConversationEngine
from bot.db.events_models import EVENT_CANCELLED, EVENT_SENT, Event
from delivery.messages import Channel, IncomingMessage, Kind
from intents.matcher import Matcher
from scheduler import events
from scheduler.events import EventError, EventSpec
from scheduler.runner import get_job
from tests.events.helpers import add_users, make_ctx, outbox_rows, texts_by_recipient

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)                 # Tue 09:00 JST
PUBLISH = datetime(2026, 12, 2, 10, 0, tzinfo=TOKYO)           # Wed 10:00 JST
STARTS = datetime(2026, 12, 5, 10, 0, tzinfo=TOKYO)            # Sat 10:00 JST


def spec(**changes) -> EventSpec:
    data = {
        "title": {"ja": "にほんごきょうしつ", "en": "Japanese class", "vi": "Lớp tiếng Nhật"},
        "body": {"ja": "だれでも さんか できます。", "en": "Anyone can join.", "vi": "Ai cũng có thể tham gia."},
        "starts_at": STARTS.replace(tzinfo=None).isoformat(),     # naive = Asia/Tokyo
        "place": "Community centre",
        "map_url": "https://example.org/map",
        "areas": ["oodono"],
        "segments": ["student", "trainee"],
        "publish_at": PUBLISH.isoformat(),
        "remind_day_before": True,
        **changes,
    }
    return EventSpec.from_dict(data, districts=["oodono", "yuda"])


TARGETED = {"en-1", "vi-1", "ko-1", "tg-ja"}


async def targeted_users(sessionmaker) -> dict[str, int]:
    return await add_users(
        sessionmaker,
        {"platform_user_id": "en-1", "language": "en", "opt_events": True, "area": "oodono", "segment": "student"},
        {"platform_user_id": "vi-1", "language": "vi", "opt_events": True, "area": "oodono", "segment": "trainee"},
        {"platform_user_id": "ko-1", "language": "ko", "opt_events": True, "area": "oodono", "segment": "student"},
        {"platform_user_id": "tg-ja", "channel": "telegram", "language": "ja", "opt_events": True,
         "area": "oodono", "segment": "student"},
        {"platform_user_id": "optout", "language": "en", "opt_events": False, "area": "oodono", "segment": "student"},
        {"platform_user_id": "yuda", "language": "en", "opt_events": True, "area": "yuda", "segment": "student"},
        {"platform_user_id": "no-area", "language": "en", "opt_events": True, "area": None, "segment": "student"},
        {"platform_user_id": "other-seg", "language": "en", "opt_events": True, "area": "oodono", "segment": "other"},
        {"platform_user_id": "blocked", "language": "en", "opt_events": True, "area": "oodono",
         "segment": "student", "status": "blocked"},
        {"platform_user_id": "cli-1", "channel": "cli", "language": "en", "opt_events": True, "area": "oodono",
         "segment": "student"},
    )


async def create(sessionmaker, s: EventSpec, now: datetime = NOW) -> int:
    async with sessionmaker() as session, session.begin():
        event = await events.create_event(session, s, created_by="test", now=now)
        return event.id


async def test_publish_sends_to_targeted_users_only_in_their_language(database_url, sessionmaker, kb):
    await targeted_users(sessionmaker)
    event_id = await create(sessionmaker, spec())
    ctx, clock = make_ctx(database_url, sessionmaker, kb, NOW)

    assert await events.publish_event(event_id, ctx=ctx) is None          # before publish_at
    assert await outbox_rows(sessionmaker, "event") == []

    clock.at = PUBLISH.astimezone(UTC) + timedelta(minutes=1)
    assert await events.publish_event(event_id, ctx=ctx) == len(TARGETED)
    rows = await outbox_rows(sessionmaker, "event")
    texts = texts_by_recipient(rows)
    assert set(texts) == TARGETED
    assert {r.ref for r in rows} == {f"event:{event_id}"}
    assert "Lớp tiếng Nhật" in texts["vi-1"] and "Thời gian" in texts["vi-1"] and "Ai cũng" in texts["vi-1"]
    assert "Japanese class" in texts["en-1"] and "Saturday, December 5, 2026, 10:00 (Japan Time)" in texts["en-1"]
    # Korean has no title of its own: English title, Korean labels.
    assert "Japanese class" in texts["ko-1"] and "일시" in texts["ko-1"] and "2026년 12월 5일 토요일 10:00" in texts["ko-1"]
    assert "にほんごきょうしつ" in texts["tg-ja"] and "いつ" in texts["tg-ja"]
    assert all("https://example.org/map" in t for t in texts.values())

    # A second fire of the job, or the sweep, sends nothing more.
    assert await events.publish_event(event_id, ctx=ctx) is None
    assert await events.sweep_events(ctx=ctx) == {"published": 0, "reminded": 0}
    assert len(await outbox_rows(sessionmaker, "event")) == len(rows)
    async with sessionmaker() as session:
        event = await session.get(Event, event_id)
        assert event.status == EVENT_SENT and event.published_at == clock.at


async def test_cancel_before_publish_sends_nothing(database_url, sessionmaker, kb):
    await targeted_users(sessionmaker)
    event_id = await create(sessionmaker, spec())
    async with sessionmaker() as session, session.begin():
        await events.cancel_event(session, event_id, now=NOW)
    ctx, clock = make_ctx(database_url, sessionmaker, kb, PUBLISH.astimezone(UTC) + timedelta(hours=1))
    # The publish job fires anyway (e.g. removed too late): the database says cancelled.
    assert await events.publish_event(event_id, ctx=ctx) is None
    clock.at = STARTS.astimezone(UTC) - timedelta(hours=12)
    assert await events.remind_event(event_id, ctx=ctx) is None
    assert await events.sweep_events(ctx=ctx) == {"published": 0, "reminded": 0}
    assert await outbox_rows(sessionmaker, "event") == []
    assert await outbox_rows(sessionmaker, "event_reminder") == []


async def test_edit_before_publish_changes_the_sent_text_and_targets(database_url, sessionmaker, kb):
    await targeted_users(sessionmaker)
    event_id = await create(sessionmaker, spec())
    async with sessionmaker() as session, session.begin():
        await events.update_event(session, event_id, spec(
            title={"en": "Japanese class (new room)", "ja": "にほんごきょうしつ（へやが かわりました）"},
            body={"en": "Room 2 this time."}, areas=["oodono", "yuda"], segments=[]), now=NOW)
    ctx, _ = make_ctx(database_url, sessionmaker, kb, PUBLISH.astimezone(UTC))
    await events.publish_event(event_id, ctx=ctx)
    texts = texts_by_recipient(await outbox_rows(sessionmaker, "event"))
    assert set(texts) == TARGETED | {"yuda", "other-seg"}
    assert "Japanese class (new room)" in texts["en-1"] and "Room 2 this time." in texts["en-1"]
    assert "Lớp tiếng Nhật" not in texts["vi-1"] and "Japanese class (new room)" in texts["vi-1"]
    assert "へやが かわりました" in texts["tg-ja"]
    assert not any("Anyone can join" in t for t in texts.values())


async def test_reminder_the_day_before_once(database_url, sessionmaker, kb):
    await targeted_users(sessionmaker)
    event_id = await create(sessionmaker, spec())
    ctx, clock = make_ctx(database_url, sessionmaker, kb, PUBLISH.astimezone(UTC))
    await events.publish_event(event_id, ctx=ctx)
    clock.at = datetime(2026, 12, 4, 17, 59, tzinfo=TOKYO).astimezone(UTC)
    assert await events.remind_event(event_id, ctx=ctx) is None           # not yet 18:00 the day before
    clock.at = datetime(2026, 12, 4, 18, 1, tzinfo=TOKYO).astimezone(UTC)
    assert await events.remind_event(event_id, ctx=ctx) == len(TARGETED)
    assert await events.remind_event(event_id, ctx=ctx) is None
    assert (await events.sweep_events(ctx=ctx))["reminded"] == 0
    texts = texts_by_recipient(await outbox_rows(sessionmaker, "event_reminder"))
    assert set(texts) == TARGETED
    assert "Reminder" in texts["en-1"] and "내일" in texts["ko-1"]


async def test_sweep_publishes_an_event_whose_job_was_lost(database_url, sessionmaker, kb):
    await targeted_users(sessionmaker)
    event_id = await create(sessionmaker, spec(remind_day_before=False))
    ctx, clock = make_ctx(database_url, sessionmaker, kb, PUBLISH.astimezone(UTC) - timedelta(minutes=1))
    assert await events.sweep_events(ctx=ctx) == {"published": 0, "reminded": 0}
    clock.advance(minutes=5)
    assert await events.sweep_events(ctx=ctx) == {"published": 1, "reminded": 0}
    assert await events.publish_event(event_id, ctx=ctx) is None          # the late job finds it sent
    assert set(texts_by_recipient(await outbox_rows(sessionmaker, "event"))) == TARGETED
    # An event that was never published before it started is not announced afterwards.
    late = await create(sessionmaker, spec(publish_at=None), now=clock.at)
    clock.at = STARTS.astimezone(UTC) + timedelta(minutes=1)
    assert await events.publish_event(late, ctx=ctx) is None


async def test_quiet_hours_defer_the_notice(database_url, sessionmaker, kb):
    await add_users(sessionmaker, {"platform_user_id": "sleepy", "language": "en", "opt_events": True,
                                   "quiet_start": "22:00", "quiet_end": "07:00"},
                    {"platform_user_id": "awake", "language": "en", "opt_events": True})
    late_night = datetime(2026, 12, 2, 23, 0, tzinfo=TOKYO)
    event_id = await create(sessionmaker, spec(areas=[], segments=[], publish_at=late_night.isoformat()))
    ctx, _ = make_ctx(database_url, sessionmaker, kb, late_night.astimezone(UTC))
    assert await events.publish_event(event_id, ctx=ctx) == 2
    after = {r.recipients[0]: r.send_after for r in await outbox_rows(sessionmaker, "event")}
    assert after["awake"] == late_night.astimezone(UTC)
    assert after["sleepy"] == datetime(2026, 12, 3, 7, 0, tzinfo=TOKYO).astimezone(UTC)


async def test_cancel_after_publish_withdraws_unsent_notices(database_url, sessionmaker, kb):
    await targeted_users(sessionmaker)
    event_id = await create(sessionmaker, spec())
    ctx, clock = make_ctx(database_url, sessionmaker, kb, PUBLISH.astimezone(UTC))
    await events.publish_event(event_id, ctx=ctx)
    assert await outbox_rows(sessionmaker, "event")
    async with sessionmaker() as session, session.begin():
        event, withdrawn = await events.cancel_event(session, event_id, now=clock.at)
    assert withdrawn >= 2 and event.status == EVENT_CANCELLED
    assert await outbox_rows(sessionmaker, "event") == []
    clock.at = datetime(2026, 12, 4, 18, 30, tzinfo=TOKYO).astimezone(UTC)
    assert await events.remind_event(event_id, ctx=ctx) is None


async def test_jobs_follow_edits_and_cancellation(database_url, sessionmaker, kb, job_store):
    event_id = await create(sessionmaker, spec())
    wanted = await events.sync_event_jobs(event_id, database_url=database_url, sessionmaker=sessionmaker)
    publish = await get_job(events.publish_job_id(event_id), database_url=database_url)
    remind = await get_job(events.remind_job_id(event_id), database_url=database_url)
    assert publish is not None and publish.func == "scheduler.events:publish_event" and publish.args == (event_id,)
    assert publish.next_run_time == PUBLISH.astimezone(UTC) == wanted["publish"]
    assert remind is not None and remind.next_run_time == datetime(2026, 12, 4, 18, 0, tzinfo=TOKYO).astimezone(UTC)

    later = datetime(2026, 12, 3, 9, 0, tzinfo=TOKYO)
    async with sessionmaker() as session, session.begin():
        await events.update_event(session, event_id, spec(publish_at=later.isoformat(), remind_day_before=False),
                                  now=NOW)
    await events.sync_event_jobs(event_id, database_url=database_url, sessionmaker=sessionmaker)
    moved = await get_job(events.publish_job_id(event_id), database_url=database_url)
    assert moved is not None and moved.next_run_time == later.astimezone(UTC)
    assert await get_job(events.remind_job_id(event_id), database_url=database_url) is None

    async with sessionmaker() as session, session.begin():
        await events.cancel_event(session, event_id, now=NOW)
    await events.sync_event_jobs(event_id, database_url=database_url, sessionmaker=sessionmaker)
    assert await get_job(events.publish_job_id(event_id), database_url=database_url) is None


def test_event_definitions_are_validated():
    with pytest.raises(EventError, match="starts_at"):
        EventSpec.from_dict({"title": {"en": "x"}})
    with pytest.raises(EventError, match="unknown field"):
        spec(colour="red")
    with pytest.raises(EventError, match="areas"):
        spec(areas=["atlantis"])
    with pytest.raises(EventError, match="ja or en"):
        spec(title={"vi": "Chỉ tiếng Việt"})
    with pytest.raises(EventError, match="segments"):
        spec(segments=["tourist"])


@pytest.fixture(scope="module")
def matcher(kb):
    return Matcher.from_knowledge(kb)


async def test_upcoming_answer_lists_db_events_in_the_users_language(sessionmaker, kb, matcher):
    await add_users(sessionmaker,
                    {"platform_user_id": "vi-1", "language": "vi", "area": "oodono", "segment": "trainee"},
                    {"platform_user_id": "en-yuda", "language": "en", "area": "yuda"})
    shown = await create(sessionmaker, spec(publish_at=None))
    await create(sessionmaker, spec(title={"en": "Not announced yet"}, areas=[], segments=[],
                                        publish_at=datetime(2026, 12, 3, 9, 0, tzinfo=TOKYO).isoformat()))
    await create(sessionmaker, spec(title={"en": "A draft"}, areas=[], segments=[], publish_at=None, draft=True))
    cancelled = await create(sessionmaker, spec(title={"en": "Cancelled party"}, areas=[], segments=[],
                                                publish_at=None))
    async with sessionmaker() as session, session.begin():
        await events.cancel_event(session, cancelled, now=NOW)
    engine = ConversationEngine(kb, matcher, sessionmaker, clock=lambda: NOW + timedelta(hours=1))
    events.register_answers(engine)

    [reply] = await engine.handle(IncomingMessage(Channel.LINE, "vi-1", Kind.POSTBACK, data="i:events.upcoming"))
    assert "Lớp tiếng Nhật" in reply.text and "Ai cũng có thể tham gia." in reply.text
    assert "Các sự kiện sắp tới" in reply.text
    for hidden in ("Not announced yet", "A draft", "Cancelled party"):
        assert hidden not in reply.text

    # The same question typed in English by a resident of another area: not their event.
    replies = await engine.handle(IncomingMessage(Channel.LINE, "en-yuda", Kind.TEXT, text="any events coming up?"))
    answer = next(r for r in replies if "event" in r.text.lower())
    assert "There are no upcoming events" in answer.text and "【Japanese class】" not in answer.text
    async with sessionmaker() as session:
        assert (await session.execute(select(Event.status).where(Event.id == shown))).scalar() == "scheduled"
