"""Garbage-day reminders (the evening before / the same morning, each user and date once) and the
live garbage answers (next collection days of the resident's area, where an item goes).

Uses the project's SAMPLE Yamaguchi calendar (knowledge/garbage/yamaguchi-sample): 大殿 (district
key ``oodono``) has 燃やせるごみ Mon/Thu, 燃やせないごみ 1st Wed, プラ容器包装 every Wed; 湯田
(``yuda``) has プラ容器包装 every Wed and 燃やせないごみ on the 3rd Wed. The reminder job is called
directly with a fixed clock; SQLite and PostgreSQL. Reminders are never sent from a sample
calendar, so the reminder tests use the same calendar marked real (``real_kb``).
"""
from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.conversation.engine import ConversationEngine
from bot.db.events_models import GarbageReminderSent
from delivery.messages import Channel, IncomingMessage, Kind
from intents.matcher import Matcher
from scheduler import garbage_jobs
from scheduler.garbage_jobs import calendar_of, lookup_item, send_garbage_reminders
from tests.events.helpers import add_users, make_ctx, outbox_rows, texts_by_recipient
from tests.garbage.calendars import as_real_calendar

TOKYO = ZoneInfo("Asia/Tokyo")
KIND = "garbage_reminder"


def jst(day: int, hour: int, minute: int = 0) -> datetime:
    """December 2026 in Asia/Tokyo (Tue 1st, Wed 2nd = the first Wednesday), as UTC."""
    return datetime(2026, 12, day, hour, minute, tzinfo=TOKYO).astimezone(UTC)


@pytest.fixture(autouse=True)
def _sample_calendar(kb):
    garbage = calendar_of(kb)
    if garbage is None or garbage.area_for("oodono") != "大殿":
        pytest.skip("the sample Yamaguchi calendar (knowledge/garbage/yamaguchi-sample) is not installed")


@pytest.fixture(scope="module")
def real_kb(kb):
    return as_real_calendar(kb)


async def reminder_users(sessionmaker) -> dict[str, int]:
    base = {"opt_garbage": True, "area": "oodono", "garbage_time": "19:00"}
    return await add_users(
        sessionmaker,
        {**base, "platform_user_id": "en-19", "language": "en"},
        {**base, "platform_user_id": "vi-19", "language": "vi"},
        {**base, "platform_user_id": "tg-ja", "channel": "telegram", "language": "ja"},
        {**base, "platform_user_id": "yuda-19", "language": "en", "area": "yuda"},
        {**base, "platform_user_id": "en-20", "language": "en", "garbage_time": "20:00"},
        {**base, "platform_user_id": "morning", "language": "en", "garbage_time": "07:00"},
        {**base, "platform_user_id": "optout", "language": "en", "opt_garbage": False},
        {**base, "platform_user_id": "no-area", "language": "en", "area": None},
        {**base, "platform_user_id": "quiet", "language": "en", "quiet_start": "18:00", "quiet_end": "07:00"},
    )


async def test_reminder_the_evening_before_in_the_users_language_once(database_url, sessionmaker, real_kb):
    await reminder_users(sessionmaker)
    ctx, clock = make_ctx(database_url, sessionmaker, real_kb, jst(1, 18, 55))
    assert (await send_garbage_reminders(ctx=ctx))["queued"] == 0
    assert await outbox_rows(sessionmaker, KIND) == []

    clock.at = jst(1, 19, 0)
    stats = await send_garbage_reminders(ctx=ctx)
    assert stats["queued"] == 5 and stats["no_area"] == 1
    texts = texts_by_recipient(await outbox_rows(sessionmaker, KIND))
    assert set(texts) == {"en-19", "vi-19", "tg-ja", "yuda-19", "quiet"}   # the time they chose, even in quiet hours
    en = texts["en-19"]
    assert "Tomorrow (Wednesday, December 2, 2026)" in en
    assert "Non-burnable garbage (燃やせないごみ)" in en and "Plastic packaging (プラ容器包装)" in en
    assert "燃やせるごみ" not in en.replace("燃やせないごみ", "")          # burnable is Mon/Thu, not Wednesday
    assert "SAMPLE" not in en                                             # a real calendar: no disclaimer
    assert "Ngày mai" in texts["vi-19"] and "Rác không cháy được（燃やせないごみ）" in texts["vi-19"]
    assert "あした" in texts["tg-ja"] and "燃やせないごみ" in texts["tg-ja"]
    # 湯田: only the plastic packaging on the first Wednesday.
    assert "プラ容器包装" in texts["yuda-19"] and "燃やせないごみ" not in texts["yuda-19"]

    # Not twice: the job runs every few minutes.
    clock.at = jst(1, 19, 5)
    assert (await send_garbage_reminders(ctx=ctx))["queued"] == 0
    clock.at = jst(1, 20, 0)
    assert (await send_garbage_reminders(ctx=ctx))["queued"] == 1          # en-20's own time
    clock.at = jst(1, 20, 5)
    assert (await send_garbage_reminders(ctx=ctx))["queued"] == 0
    assert len(texts_by_recipient(await outbox_rows(sessionmaker, KIND))) == 6
    async with sessionmaker() as session:
        sent = (await session.execute(select(GarbageReminderSent.date))).scalars().all()
    assert sent == [date(2026, 12, 2)] * 6


async def test_morning_time_reminds_on_the_day_and_nothing_on_days_without_collection(database_url, sessionmaker,
                                                                                    real_kb):
    await reminder_users(sessionmaker)
    ctx, clock = make_ctx(database_url, sessionmaker, real_kb, jst(2, 7, 0))
    assert (await send_garbage_reminders(ctx=ctx))["queued"] == 1
    [row] = await outbox_rows(sessionmaker, KIND)
    assert row.recipients == ["morning"]
    assert "Today (Wednesday, December 2, 2026)" in row.payload[0]["text"]
    # Friday evening: nothing is collected in 大殿 on Saturday.
    clock.at = jst(4, 19, 0)
    stats = await send_garbage_reminders(ctx=ctx)
    assert stats["queued"] == 0 and stats["no_collection"] >= 4
    # Too late: a scheduler that was down from 19:00 to 23:30 sends no evening reminder at midnight.
    clock.at = jst(2, 23, 30)
    assert (await send_garbage_reminders(ctx=ctx))["due"] == 0


@pytest.fixture(scope="module")
def matcher(kb):
    return Matcher.from_knowledge(kb)


async def test_collection_day_answer_lists_the_areas_next_days(sessionmaker, kb, matcher):
    await add_users(sessionmaker, {"platform_user_id": "en-1", "language": "en", "area": "oodono"},
                    {"platform_user_id": "ko-1", "language": "ko", "area": "oodono"},
                    {"platform_user_id": "nowhere", "language": "en"})
    engine = ConversationEngine(kb, matcher, sessionmaker, clock=lambda: jst(1, 12, 0))
    garbage_jobs.register_answers(engine)

    [reply] = await engine.handle(IncomingMessage(Channel.LINE, "en-1", Kind.POSTBACK, data="i:garbage.collection_day"))
    assert "Next collection days in Ōdono" in reply.text
    assert "Burnable garbage (燃やせるごみ): Thursday, December 3, 2026; Monday, December 7, 2026" in reply.text
    assert "Non-burnable garbage (燃やせないごみ): Wednesday, December 2, 2026; Wednesday, January 6, 2027" in reply.text
    # A sample calendar: the disclaimer is the first thing the resident reads, before any date.
    assert reply.text.startswith(kb.messages["garbage.sample_note"]["en"])
    assert reply.text.index("SAMPLE") < reply.text.index("December")

    [reply] = await engine.handle(IncomingMessage(Channel.LINE, "ko-1", Kind.POSTBACK, data="i:garbage.collection_day"))
    assert "타는 쓰레기（燃やせるごみ）: 2026년 12월 3일 목요일" in reply.text
    assert reply.text.startswith(kb.messages["garbage.sample_note"]["ko"])

    [reply] = await engine.handle(IncomingMessage(Channel.LINE, "nowhere", Kind.POSTBACK,
                                                  data="i:garbage.collection_day"))
    assert "Choose your area in the settings" in reply.text


async def test_sorting_answer_finds_the_item_asked_about(sessionmaker, kb, matcher):
    await add_users(sessionmaker, {"platform_user_id": "en-1", "language": "en", "area": "oodono"})
    engine = ConversationEngine(kb, matcher, sessionmaker, clock=lambda: jst(1, 12, 0))
    garbage_jobs.register_answers(engine)
    replies = await engine.handle(IncomingMessage(Channel.LINE, "en-1", Kind.TEXT, text="where does cooking oil go?"))
    answer = next(r for r in replies if "Cooking oil" in r.text)
    assert "\"Cooking oil\" goes in: Burnable garbage (燃やせるごみ)" in answer.text
    assert "Soak it into paper or cloth" in answer.text


def test_item_lookup_in_each_language(kb):
    garbage = calendar_of(kb)
    assert lookup_item(garbage, "テレビ", "ja") == (
        "テレビ", "家電リサイクル", garbage.calendars["ja"].items[[i.name for i in garbage.calendars["ja"].items]
                                                             .index("テレビ")].notice)
    name, category, _ = lookup_item(garbage, "テレビ", "vi")
    assert name == "Television" and category == "Tái chế đồ điện gia dụng（家電リサイクル）"   # en text, vi category
    name, category, _ = lookup_item(garbage, "spray can", "zh")
    assert name == "Spray cans" and category == "定点回收（拠点回収）"
    assert lookup_item(garbage, "how do I sort garbage", "en") is None


def test_frying_pan_in_real_5374_data(shared_dir):
    """The look-up on Nonoichi's real ja + en-US data (read from ../shared, not copied)."""
    from knowledge.garbage import load_garbage_set

    nonoichi = load_garbage_set(shared_dir / "reference" / "5374" / "nonoichi")
    ja_category = "燃えないごみ・あきかん・あきびん・容器包装プラスチック"
    assert lookup_item(nonoichi, "where does a frying pan go?", "en") == (
        "Frying pans", f"Non-burnable, Cans, Bottles, Plastic Containers（{ja_category}）", "")
    assert lookup_item(nonoichi, "フライパンは なにごみ？", "ja") == ("フライパン", ja_category, "")
    # No Vietnamese data: the English row, the category in English with the Japanese name.
    name, category, _ = lookup_item(nonoichi, "where does a frying pan go?", "vi")
    assert name == "Frying pans" and category.endswith(f"（{ja_category}）")


async def test_collection_day_answer_from_a_real_calendar_has_no_disclaimer(sessionmaker, real_kb, matcher):
    await add_users(sessionmaker, {"platform_user_id": "en-1", "language": "en", "area": "oodono"})
    engine = ConversationEngine(real_kb, matcher, sessionmaker, clock=lambda: jst(1, 12, 0))
    garbage_jobs.register_answers(engine)
    [reply] = await engine.handle(IncomingMessage(Channel.LINE, "en-1", Kind.POSTBACK, data="i:garbage.collection_day"))
    assert reply.text.startswith("Next collection days in Ōdono")
    assert "SAMPLE" not in reply.text


async def test_no_reminder_is_ever_sent_from_a_sample_calendar(database_url, sessionmaker, kb, caplog):
    await reminder_users(sessionmaker)
    garbage_jobs._SAMPLE_LOGGED.clear()
    ctx, clock = make_ctx(database_url, sessionmaker, kb, jst(1, 19, 0))
    with caplog.at_level("WARNING", logger="kurashi.garbage"):
        for at in (jst(1, 19, 0), jst(1, 20, 0), jst(2, 7, 0)):
            clock.at = at
            stats = await send_garbage_reminders(ctx=ctx)
            assert stats["queued"] == 0 and stats["sample"] == 1
    assert await outbox_rows(sessionmaker, KIND) == []
    async with sessionmaker() as session:
        assert (await session.execute(select(GarbageReminderSent))).first() is None
    assert len([r for r in caplog.records if "sample" in r.getMessage()]) == 1     # logged once, not every run


async def _settings_chat(sessionmaker, kb, matcher, user: dict):
    await add_users(sessionmaker, {"platform_user_id": "me", **user})
    engine = ConversationEngine(kb, matcher, sessionmaker)

    async def press(data: str):
        return await engine.handle(IncomingMessage(Channel.LINE, "me", Kind.POSTBACK, data=data))
    return press


async def test_settings_say_reminders_start_with_the_citys_calendar(sessionmaker, kb, matcher):
    press = await _settings_chat(sessionmaker, kb, matcher, {"language": "vi", "area": "oodono"})
    [reply] = await press("s:opt:garbage")
    assert kb.messages["garbage.reminders_pending"]["vi"] in reply.text
    [reply] = await press("s:opt:garbage")                      # off again: no note needed
    assert kb.messages["garbage.reminders_pending"]["vi"] not in reply.text


async def test_settings_with_a_real_calendar_have_no_pending_note(sessionmaker, real_kb, matcher):
    press = await _settings_chat(sessionmaker, real_kb, matcher, {"language": "en", "area": "oodono"})
    [reply] = await press("s:opt:garbage")
    assert real_kb.messages["garbage.reminders_pending"]["en"] not in reply.text


async def test_turning_reminders_on_without_an_area_asks_for_it(sessionmaker, kb, matcher):
    press = await _settings_chat(sessionmaker, kb, matcher, {"language": "en", "area": None})
    [reply] = await press("s:opt:garbage")
    assert kb.messages["garbage.need_area"]["en"] in reply.text
    payloads = [c.data for c in reply.quick_replies]
    assert "s:area:oodono" in payloads or "s:area:p2" in payloads     # the area picker
    [reply] = await press("s:area:oodono")
    assert "Ōdono" in reply.text
    async with sessionmaker() as session:
        from bot.db.models import User
        user = (await session.execute(select(User).where(User.platform_user_id == "me"))).scalar_one()
    assert user.opt_garbage is True and user.area == "oodono"
