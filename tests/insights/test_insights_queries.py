"""bot/insights.py on SQLite and PostgreSQL: normalised grouping, the distinct-text cap, resolving
a large group, sample export and the retention cut-off."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot import insights
from bot.db.models import Feedback, Unanswered
from tests.insights.conftest import T0, add_unanswered, add_votes


async def test_groups_merge_texts_that_normalise_alike_and_count_languages(sessionmaker):
    await add_unanswered(sessionmaker, [
        ("ＷＩＦＩ どこ？", "ja", "decline"),           # full width and punctuation
        ("wifi どこ", "ja", "clarify_abandoned"),
        ("Wifi   どこ 📶", "en", "decline"),           # emoji and spaces
        ("bus to the station", "en", "decline"),
    ])
    async with sessionmaker() as s:
        grouped = await insights.unanswered_groups(s)
        only_ja = await insights.unanswered_groups(s, language="ja")
        with pytest.raises(ValueError):
            await insights.unanswered_groups(s, decision="answer")

    assert [(g.key, g.count, g.variants) for g in grouped.groups] == [("wifi どこ", 3, 3), ("bus to the station", 1, 1)]
    wifi = grouped.groups[0]
    assert wifi.text == "Wifi   どこ 📶" and dict(wifi.languages) == {"ja": 2, "en": 1}
    assert dict(wifi.decisions) == {"decline": 2, "clarify_abandoned": 1}
    assert (wifi.first_at, wifi.last_at) == (T0, T0 + timedelta(minutes=2))
    assert (grouped.total_rows, grouped.total_groups, grouped.truncated) == (4, 2, False)
    assert [(g.key, g.count) for g in only_ja.groups] == [("wifi どこ", 2)]


async def test_only_the_most_recent_distinct_texts_are_merged_and_that_is_reported(sessionmaker):
    await add_unanswered(sessionmaker, [("old question", "en", "decline"), ("older wording", "en", "decline"),
                                        ("new question", "en", "decline")])
    async with sessionmaker() as s:
        capped = await insights.unanswered_groups(s, max_distinct=2)
        full = await insights.unanswered_groups(s, max_distinct=3)

    assert capped.truncated and [g.key for g in capped.groups] == ["new question", "older wording"]
    assert not full.truncated and full.total_groups == 3


async def test_resolving_a_group_covers_every_wording_within_the_filters(sessionmaker):
    wordings = [(f"Parking {'?' * (n % 7)}{' ' * (n % 5)}", "en" if n % 3 else "vi", "decline") for n in range(620)]
    wordings += [(f"parking{'!' * n}", "en", "decline") for n in range(1, 600)]   # > 500 distinct texts
    await add_unanswered(sessionmaker, wordings + [("something else", "en", "decline")])
    async with sessionmaker() as s, s.begin():
        english = await insights.resolve_unanswered_group(s, "parking", language="en")
    async with sessionmaker() as s, s.begin():
        rest = await insights.resolve_unanswered_group(s, "parking")
        again = await insights.resolve_unanswered_group(s, "parking")
    async with sessionmaker() as s:
        left = await insights.unanswered_groups(s)
        resolved = await insights.count_unanswered(s, status="resolved")

    vi = sum(1 for n in range(620) if n % 3 == 0)
    assert english == 620 - vi + 599 and rest == vi and again == 0
    assert [g.key for g in left.groups] == ["something else"] and resolved == 620 + 599


async def test_export_samples_skips_existing_samples_and_empty_texts(sessionmaker):
    await add_unanswered(sessionmaker, [
        ("Bike parking?", "en", "decline"), ("bike parking", "en", "decline"),
        ("Trash day", "en", "decline"), ("!!!", "en", "decline"), ("ごみ", "ja", "decline"),
        ("long\nquestion  on two lines", "en", "clarify_abandoned"),
    ])
    async with sessionmaker() as s:
        samples, skipped = await insights.export_samples(s, "en", existing=["TRASH DAY!"])
        declined, _ = await insights.export_samples(s, "en", decision="decline", limit=1)

    assert samples == ["bike parking", "long question on two lines"] and skipped == 1
    assert declined == ["bike parking"]


async def test_prune_insights_deletes_rows_older_than_the_cut_off(sessionmaker):
    await add_unanswered(sessionmaker, [("a", "en", "decline"), ("b", "en", "decline")], start=T0)
    await add_votes(sessionmaker, [("x.y", 1, "en", None), ("x.y", -1, "en", "why")], start=T0)
    async with sessionmaker() as s, s.begin():
        # now - 180 days lies between the two rows of each table (one minute apart)
        gone = await insights.prune_insights(s, older_than=timedelta(days=180),
                                             now=T0 + timedelta(days=180, seconds=30))
    async with sessionmaker() as s:
        left = (await s.scalar(select(func.count()).select_from(Unanswered)),
                await s.scalar(select(func.count()).select_from(Feedback)))
    assert gone == (1, 1) and left == (1, 1)


async def test_crisis_messages_are_never_listed_with_their_words(sessionmaker):
    """Should a message about suicide or self-harm ever be stored, no listing shows its words,
    and the database keeps them only until the retention cut-off (listing changes nothing)."""
    secret = "I want to kill myself tonight"
    await add_unanswered(sessionmaker, [(secret, "en", "decline"), ("死にたい", "ja", "decline"),
                                        ("bus to the station", "en", "decline")])
    await add_votes(sessionmaker, [("emergency.crisis", -1, "en", "i just want to die"),
                                   ("garbage.bulky", -1, "en", "sofa pickup")])
    async with sessionmaker() as s:
        grouped = await insights.unanswered_groups(s)
        rows = await insights.unanswered_rows(s)
        votes = await insights.negative_feedback(s)
        samples, _ = await insights.export_samples(s, "en")
        stored = list((await s.execute(select(Unanswered.text))).scalars())

    shown = [g.text for g in grouped.groups] + [g.key for g in grouped.groups] + [r.text for r in rows]
    assert not any(secret in t or "死にたい" in t for t in shown)
    assert [(g.key, g.count) for g in grouped.groups] == [(insights.CRISIS_HIDDEN, 2), ("bus to the station", 1)]
    assert [r.text for r in rows].count(insights.CRISIS_HIDDEN) == 2
    assert [v.question for v in votes] == ["sofa pickup", insights.CRISIS_HIDDEN]
    assert samples == ["bus to the station"]
    assert secret in stored                                  # listing redacts; it does not write
    async with sessionmaker() as s, s.begin():
        assert await insights.resolve_unanswered_group(s, insights.CRISIS_HIDDEN) == 2


async def test_a_clarify_offering_the_crisis_intent_is_hidden_too(sessionmaker):
    await add_unanswered(sessionmaker, [("everything is too much lately", "en", "clarify_abandoned")],
                         suggestions=["emergency.crisis", "consult.general"])
    async with sessionmaker() as s:
        rows = await insights.unanswered_rows(s)
    assert [r.text for r in rows] == [insights.CRISIS_HIDDEN]
