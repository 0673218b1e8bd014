"""The reviewer's defects of the consultation feature, each reproduced end to end (LINE
through line-bot-sdk and the fake LINE API) or against the real database, on SQLite and
PostgreSQL: emergencies typed during a consultation, rating once, the SLA promise in
opening hours, organisations nobody would hear about, the segment question, the forget-me
wording, retention of case content."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.cli.consult import collect_stats
from bot.consult import cases
from bot.consult.retention import prune_expired_cases
from bot.consult.routing import TOKYO
from bot.consult.staff import add_staff
from bot.db import repo
from bot.db.consult_models import AuditEntry, Case, CaseMedia, CaseMessage, Staff
from bot.db.models import User
from bot.privacy import prune_case_content
from knowledge.loader import load_knowledge
from tests.consult.conftest import make_reachable
from tests.consult.test_e2e_line import USER, _buttons, _case, _texts, open_case_as_trainee, press, say

FIRE_VI = "cứu với, nhà tôi bị cháy"


async def _messages(app, case_id: int) -> list[CaseMessage]:
    async with app.services.sessionmaker() as s:
        return list((await s.execute(select(CaseMessage).where(CaseMessage.case_id == case_id)
                                     .order_by(CaseMessage.id))).scalars())


# ------------------------------------------------------------------ 1. emergencies in a consultation

async def test_an_emergency_typed_while_composing_gets_110_119_first(consult_app) -> None:
    app = consult_app
    await press(app, "l:vi")
    await press(app, "s:seg:trainee")
    await press(app, "c:work")
    await press(app, "k:y")
    replies = await say(app, FIRE_VI)
    assert "119" in replies[0]["text"] and "110" in replies[0]["text"]     # the numbers come first
    assert "(1)" in _texts(replies[-1:]) and _buttons(replies) == ["k:s", "k:x"]   # and it is in the draft
    draft = await _case(app)
    stored = await _messages(app, draft.id)
    assert [m.text for m in stored] == [FIRE_VI] and stored[0].intent == "emergency.fire"


async def test_an_emergency_typed_into_an_open_case_gets_110_119_first(consult_app) -> None:
    app = consult_app
    case = await open_case_as_trainee(app)
    replies = await say(app, FIRE_VI)
    first = replies[0]["text"]
    assert "119" in first and "110" in first
    assert case.number in _texts(replies[1:]) and _buttons(replies) == ["k:b"]
    assert FIRE_VI in [m.text for m in await _messages(app, case.id)]       # staff see it with the case
    # an ordinary follow-up still gets only the acknowledgement
    ack = await say(app, "Tên công ty là ABC")
    assert "119" not in _texts(ack) and len(ack) == 1


# ------------------------------------------------------------------ 2. ratings

async def test_only_the_first_rating_counts_and_foreign_or_open_cases_are_refused(consult_app) -> None:
    app = consult_app
    case = await open_case_as_trainee(app)
    early = await press(app, f"k:r:{case.id}:2")                           # not closed yet: refused
    assert "Hiện chưa thể đánh giá" in _texts(early)
    async with app.services.sessionmaker() as s:
        assert (await s.get(Case, case.id)).rating is None
    async with app.services.sessionmaker() as s, s.begin():
        staff = await add_staff(s, app.services.kb, org="otit", email="r@otit.example", password="long password 1")
        await cases.close(s, app.services.kb, staff, case.id, "resolved")
    thanks = await press(app, f"k:r:{case.id}:5")
    assert "Cảm ơn bạn đã đánh giá" in _texts(thanks)
    again = await press(app, f"k:r:{case.id}:1")
    assert "Bạn đã đánh giá cuộc tư vấn này rồi" in _texts(again)
    async with app.services.sessionmaker() as s:
        assert (await s.get(Case, case.id)).rating == 5
        stats = await collect_stats(s)
        rated = (await s.execute(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.case_id == case.id, AuditEntry.action == "rated"))).scalar()
    assert stats["ratings"]["5"] == 1 and stats["ratings"]["1"] == 0 and rated == 1

    # another resident pressing a forged payload for this case is refused
    other = "U" + "8" * 32
    token = app.line_api.issue_reply_token(other)
    from tests.fakes.webhooks import line_body, line_postback_event

    app.line_api.set_profile(other, language="en")
    await app.post_line(line_body(line_postback_event(other, f"k:r:{case.id}:1", reply_token=token)))
    await app.settle()
    assert "cannot be rated" in _texts(app.line_api.replies_to_token(token))
    async with app.services.sessionmaker() as s:
        assert (await s.get(Case, case.id)).rating == 5


async def test_rate_keeps_the_first_rating_in_the_service(sessionmaker) -> None:
    kb = load_knowledge()
    now = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    async with sessionmaker() as s, s.begin():
        user, _ = await repo.get_or_create_user(s, "web", "w-1", now=now)
        staff = await add_staff(s, kb, org="yfrcc", email="k@yfrcc.example", password="long password 2")
        case = await cases.create_case(s, user, topic="other", org="yfrcc", language="en", now=now)
        await cases.add_message(s, case, text="hello", now=now)
        await cases.submit_case(s, kb, case, now=now)
        await cases.close(s, kb, staff, case.id, "resolved", now=now)
        case_id, user_id = case.id, user.id
    async with sessionmaker() as s, s.begin():
        await cases.rate(s, await s.get(User, user_id), case_id, 4, now=now)
    async with sessionmaker() as s, s.begin():
        with pytest.raises(cases.AlreadyRated):
            await cases.rate(s, await s.get(User, user_id), case_id, 1, now=now)
    async with sessionmaker() as s:
        assert (await s.get(Case, case_id)).rating == 4


# ------------------------------------------------------------------ 3. the promise on a submitted case

async def test_a_case_sent_on_saturday_afternoon_is_promised_in_opening_hours(sessionmaker) -> None:
    kb = load_knowledge()
    saturday_4pm = datetime(2026, 11, 28, 16, 0, tzinfo=TOKYO)
    async with sessionmaker() as s, s.begin():
        user, _ = await repo.get_or_create_user(s, "web", "w-2", now=saturday_4pm)
        case = await cases.create_case(s, user, topic="other", org="yfrcc", language="en", now=saturday_4pm)
        await cases.add_message(s, case, text="hello", now=saturday_4pm)
        await cases.submit_case(s, kb, case, now=saturday_4pm)
        due = case.due_at.astimezone(TOKYO)
    # 1 h 15 on Saturday, nothing on the closed Sunday and Monday, Tue + Wed, 5 h 15 on Thursday
    assert due == datetime(2026, 12, 3, 13, 45, tzinfo=TOKYO)


# ------------------------------------------------------------------ 4. organisations nobody would hear about

async def test_routing_skips_organisations_without_target_or_staff(unconfigured_deployment_app) -> None:
    app = unconfigured_deployment_app
    await make_reachable(app.services, "yfrcc")                            # OTIT has no target, no staff
    await press(app, "l:vi")
    await press(app, "s:seg:trainee")
    offer = await press(app, "c:work")
    assert "OTIT" not in _texts(offer) and "Trung tâm Tư vấn Tổng hợp" in _texts(offer)
    # once OTIT has a staff account, the trainee is routed there again
    async with app.services.sessionmaker() as s, s.begin():
        await add_staff(s, app.services.kb, org="otit", email="m@otit.example", password="long password 3")
    await press(app, "k:n")
    offer = await press(app, "c:work")
    assert "Tư vấn bằng tiếng mẹ đẻ của OTIT" in _texts(offer)


async def test_no_organisation_with_staff_means_a_phone_number_and_no_silent_case(unconfigured_app,
                                                                                   caplog) -> None:
    """A fresh installation: nobody would read a case, so nothing is promised and nothing is
    stored; the resident gets the centre's phone and opening hours at once, and no ERROR."""
    app = unconfigured_app
    app.line_api.set_profile(USER, language="en")
    await press(app, "s:seg:other")
    with caplog.at_level(logging.INFO):
        reply = await press(app, "c:health")
    text = _texts(reply)
    centre = app.services.kb.contacts["yfrcc"]
    assert "cannot pass your question to a person yet" in text
    assert f"☎ {centre.phone}" in text and centre.hours["en"] in text
    assert "plans to answer" not in text and "k:y" not in _buttons(reply)
    assert await press(app, "k:y") and await _case(app) is None             # a stale "Yes" creates nothing
    await say(app, "I need a doctor who speaks English next week")
    async with app.services.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Case)) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("kurashi staff add" in r.getMessage() for r in caplog.records)


async def test_staff_removed_after_the_offer_means_no_case(consult_app) -> None:
    app = consult_app
    app.line_api.set_profile(USER, language="en")
    await press(app, "s:seg:other")
    offer = await press(app, "c:health")
    assert "k:y" in _buttons(offer)
    async with app.services.sessionmaker() as s, s.begin():
        from bot.db.consult_models import OrgSettings

        await s.execute(OrgSettings.__table__.delete())                    # the targets are removed
    reply = await press(app, "k:y")
    assert "cannot pass your question to a person yet" in _texts(reply)
    assert await _case(app) is None


async def test_organisations_without_a_confirmed_contact_are_not_offered(project_app) -> None:
    """The project's own partners.yaml: the university office (no contact) and OTIT (facts
    from a third-party copy) are never presented; the centre takes those residents."""
    app = project_app
    app.line_api.set_profile(USER, language="en")
    await press(app, "s:seg:student")
    offer = _texts(await press(app, "c:residence"))
    assert "Yamaguchi University" not in offer and "Yamaguchi Foreign Residents Consultation Center" in offer
    assert "※" not in offer
    await press(app, "k:n")
    await press(app, "s:seg:trainee")
    offer = _texts(await press(app, "c:work"))
    assert "OTIT" not in offer and "Yamaguchi Foreign Residents Consultation Center" in offer


async def test_an_organisation_without_hours_gets_no_invented_hours(consult_app) -> None:
    app = consult_app
    app.line_api.set_profile(USER, language="en")
    await press(app, "s:seg:student")
    offer = _texts(await press(app, "c:residence"))                         # the university office: no hours
    assert "Yamaguchi University" in offer
    assert "not confirmed" in offer and "Open:" not in offer and "closed now" not in offer


# ------------------------------------------------------------------ 5. the segment question

async def test_a_trainee_with_no_segment_is_asked_and_routed_to_otit(consult_app) -> None:
    app = consult_app
    app.line_api.set_profile(USER, language="vi")
    await say(app, "Tôi là thực tập sinh")
    asked = await press(app, "c:work")
    assert _buttons(asked) == ["k:g:trainee", "k:g:student", "k:g:other", "k:g:-"]
    offer = await press(app, "k:g:trainee")
    assert "Tư vấn bằng tiếng mẹ đẻ của OTIT" in _texts(offer) and _buttons(offer)[:2] == ["k:y", "k:n"]
    async with app.services.sessionmaker() as s:
        user = (await s.execute(select(User).where(User.platform_user_id == USER))).scalar_one()
    assert user.segment == "trainee"


async def test_the_segment_is_asked_only_once_and_can_be_skipped(consult_app) -> None:
    app = consult_app
    app.line_api.set_profile(USER, language="en")
    await press(app, "l:en")
    asked = await press(app, "c:work")
    assert "k:g:-" in _buttons(asked)
    offer = await press(app, "k:g:-")
    assert "Yamaguchi Foreign Residents Consultation Center" in _texts(offer)   # unknown segment: the centre
    await press(app, "k:n")
    again = await press(app, "c:work")
    assert "k:g:-" not in _buttons(again) and "k:y" in _buttons(again)
    assert (await press(app, "k:g:trainee"))[0]["text"]                       # a stale press is harmless


async def test_topics_that_do_not_depend_on_the_segment_are_not_asked(consult_app) -> None:
    app = consult_app
    app.line_api.set_profile(USER, language="en")
    await press(app, "l:en")
    offer = await press(app, "c:health")
    assert "k:y" in _buttons(offer)


# ------------------------------------------------------------------ 6. forget-me wording

@pytest.mark.parametrize("lang, word", [("ja", "そうだん"), ("en", "consultations"), ("vi", "tư vấn"),
                                        ("zh", "咨询"), ("ko", "상담")])
def test_forget_me_confirmation_mentions_consultations(lang: str, word: str) -> None:
    from bot.conversation.locale import Texts

    text = Texts(load_knowledge()).t("forget.confirm", lang)
    assert word in text


async def test_forget_me_confirmation_in_the_chat(consult_app) -> None:
    app = consult_app
    app.line_api.set_profile(USER, language="en")
    await press(app, "l:en")
    confirm = _texts(await press(app, "x"))
    assert "consultations" in confirm and "photos" in confirm and "statistics" in confirm


# ------------------------------------------------------------------ 7. retention of case content

async def _closed_case(sessionmaker, kb, user_id: str, closed: datetime, rating: int | None) -> int:
    async with sessionmaker() as s, s.begin():
        user, _ = await repo.get_or_create_user(s, "line", user_id, now=closed)
        staff = await s.scalar(select(Staff).where(Staff.org == "yfrcc"))
        if staff is None:
            staff = await add_staff(s, kb, org="yfrcc", email="x@yfrcc.example", password="long password 4")
        case = await cases.create_case(s, user, topic="other", org="yfrcc", language="en",
                                       display_name="Ann", now=closed - timedelta(days=1))
        await cases.add_message(s, case, text="my address is …", now=closed - timedelta(days=1))
        await cases.add_message(s, case, kind="image", extra={"platform_id": "m"},
                                media=cases.MediaContent(b"\x89PNG\r\n\x1a\n", "image/png"),
                                now=closed - timedelta(days=1))
        await cases.submit_case(s, kb, case, now=closed - timedelta(days=1))
        await cases.close(s, kb, staff, case.id, "resolved", now=closed)
        if rating:
            await cases.rate(s, user, case.id, rating, now=closed)
        return case.id


async def test_case_content_is_removed_after_the_retention_period(sessionmaker, database_url) -> None:
    from bot.settings import Settings
    from scheduler.jobs import RECURRING_JOBS
    from scheduler.runner import JobContext

    assert any(j.func == "bot.privacy:prune_case_content" for j in RECURRING_JOBS)
    kb = load_knowledge()
    now = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    old = await _closed_case(sessionmaker, kb, "U" + "1" * 32, now - timedelta(days=400), 4)
    recent = await _closed_case(sessionmaker, kb, "U" + "2" * 32, now - timedelta(days=10), None)
    ctx = JobContext(database_url=database_url, sessionmaker=sessionmaker, kb=kb,
                     settings=Settings(database_url=database_url, case_retention_days=365), now=lambda: now)
    assert await prune_case_content(ctx=ctx) == 1
    assert await prune_case_content(ctx=ctx) == 0                          # each case once
    async with sessionmaker() as s:
        kept = await s.get(Case, old)
        assert (kept.topic, kept.org, kept.language, kept.rating, kept.outcome) == ("other", "yfrcc", "en", 4, "resolved")
        assert kept.user_id is None and kept.display_name is None
        for model in (CaseMessage, CaseMedia):
            assert await s.scalar(select(func.count()).select_from(model).where(model.case_id == old)) == 0
            assert await s.scalar(select(func.count()).select_from(model).where(model.case_id == recent)) > 0
        assert (await s.get(Case, recent)).display_name == "Ann"
    assert await prune_expired_cases(sessionmaker, now, 5) == 1             # a shorter period reaches it too
    assert await prune_expired_cases(sessionmaker, now, 0) == 0             # 0 = keep forever
