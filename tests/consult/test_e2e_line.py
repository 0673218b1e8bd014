"""End to end through line-bot-sdk and the fake LINE API, on SQLite and PostgreSQL: a
Vietnamese technical intern trainee writes about unpaid wages → the consultation flow →
a case routed to OTIT → a staff reply arrives as a push with a retry key → the resident
answers (to the case, not the matcher) → staff close → the rating question → rating.
Also: the way back to the bot, an image kept with the case, forget-me with an open case."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bot.cli.consult import collect_stats
from bot.consult import cases
from bot.consult.staff import add_staff
from bot.db.consult_models import Case, CaseMedia, CaseMessage, Staff
from bot.db.models import User
from tests.fakes.webhooks import line_body, line_message_event, line_postback_event, line_text_event

USER = "U" + "7" * 32
WEEKEND = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)           # Saturday 19:00 in Yamaguchi
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200 + b"\xff\xd9"


def _texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or m.get("altText") or "" for m in messages)


def _buttons(messages: list[dict[str, Any]]) -> list[str]:
    items = (messages[-1].get("quickReply") or {}).get("items", []) if messages else []
    return [item["action"].get("data", "") for item in items]


async def say(app, text: str) -> list[dict[str, Any]]:
    token = app.line_api.issue_reply_token(USER)
    response = await app.post_line(line_body(line_text_event(USER, text, reply_token=token)))
    assert response.status_code == 200
    await app.settle()
    return app.line_api.replies_to_token(token)


async def press(app, data: str) -> list[dict[str, Any]]:
    token = app.line_api.issue_reply_token(USER)
    await app.post_line(line_body(line_postback_event(USER, data, reply_token=token)))
    await app.settle()
    return app.line_api.replies_to_token(token)


async def send_image(app, message_id: str) -> list[dict[str, Any]]:
    token = app.line_api.issue_reply_token(USER)
    event = line_message_event(USER, {"id": message_id, "type": "image", "contentProvider": {"type": "line"}},
                               reply_token=token)
    await app.post_line(line_body(event))
    await app.settle()
    return app.line_api.replies_to_token(token)


async def _case(app) -> Case:
    async with app.services.sessionmaker() as s:
        return (await s.execute(select(Case).order_by(Case.id.desc()))).scalars().first()


async def _staff(app, org: str = "otit") -> Staff:
    async with app.services.sessionmaker() as s, s.begin():
        return await add_staff(s, app.services.kb, org=org, email=f"desk@{org}.example", password="long password 1")


async def open_case_as_trainee(app) -> Case:
    """Vietnamese profile, segment trainee, the unpaid-wages question, consent, two messages, send."""
    app.line_api.set_profile(USER, display_name="Lan", language="vi")
    await press(app, "s:seg:trainee")
    answer = await say(app, "Công ty không trả lương cho tôi 2 tháng")
    assert "c:work" in _buttons(answer)                        # the escalating answer offers a consultant
    offer = await press(app, "c:work")
    text = _texts(offer)
    assert "Tư vấn bằng tiếng mẹ đẻ của OTIT" in text          # the organisation, in Vietnamese
    assert "Tin nhắn của bạn sẽ do" in text                     # who will read it (vi)
    assert _buttons(offer)[:2] == ["k:y", "k:n"]                # consent
    compose = await press(app, "k:y")
    assert _buttons(compose) == ["k:s", "k:x"]
    ack = await say(app, "Công ty không trả lương 2 tháng nay. Tôi phải làm gì?")
    assert "(1)" in _texts(ack) and _buttons(ack) == ["k:s", "k:x"]
    app.line_api.set_content("88001", JPEG)
    ack2 = await send_image(app, "88001")
    assert "(2)" in _texts(ack2)
    sent = await press(app, "k:s")
    case = await _case(app)
    assert case.number in _texts(sent) and "OTIT" in _texts(sent)
    assert _buttons(sent) == ["k:b"]                            # the visible way back to the bot
    return case


async def test_trainee_unpaid_wages_case_round_trip(consult_app) -> None:
    app = consult_app
    case = await open_case_as_trainee(app)
    assert (case.org, case.topic, case.language, case.segment, case.status) == ("otit", "work", "vi", "trainee", "open")
    staff = await _staff(app)
    async with app.services.sessionmaker() as s:
        messages = list((await s.execute(select(CaseMessage).where(CaseMessage.case_id == case.id)
                                         .order_by(CaseMessage.id))).scalars())
        # First the question that led to the hand-off with the bot's answer (issue 12), for staff only.
        assert [m.kind for m in messages] == ["handoff", "text", "image"]
        handoff = messages.pop(0)
        assert (handoff.direction, handoff.text) == ("system", "Công ty không trả lương cho tôi 2 tháng")
        assert handoff.extra["answer"] and handoff.intent == "work.labor_trouble"
        assert messages[0].language == "vi" and messages[0].intent == "work.labor_trouble"
        media = await cases.get_media(s, staff, messages[1].media[0].id)
        assert media.data == JPEG and media.mime_type == "image/jpeg"

    # staff reply (what the console's reply box calls) → push with a retry key at LINE
    before = len(app.line_api.messages_for(USER))
    async with app.services.sessionmaker() as s, s.begin():
        await cases.staff_reply(s, app.services.kb, staff, case.id, "Bạn hãy gửi ảnh hợp đồng lao động.")
    app.services.relay.notify()
    pushed = await app.line_api.wait_for_messages(USER, before + 1)
    assert "Bạn hãy gửi ảnh hợp đồng lao động." in _texts(pushed[before:])
    pushes = app.line_api.requests_to("/v2/bot/message/push")
    assert pushes and pushes[-1].headers.get("X-Line-Retry-Key")
    assert f"k:w:{case.id}" in _buttons(pushed)

    # the resident answers: it goes to the case, not to the matcher
    ack = await say(app, "Vâng, tôi sẽ gửi ngay. Giờ làm thêm cũng không được trả.")
    assert case.number in _texts(ack) and _buttons(ack) == ["k:b"]
    async with app.services.sessionmaker() as s:
        refreshed = await s.get(Case, case.id)
        assert refreshed.status == "open" and refreshed.first_response_at is not None
        count = len((await s.execute(select(CaseMessage.id).where(CaseMessage.case_id == case.id))).all())
    assert count == 5                                            # hand-off, 2 in, 1 staff reply, 1 in

    # staff close → the rating question → the resident rates
    before = len(app.line_api.messages_for(USER))
    async with app.services.sessionmaker() as s, s.begin():
        await cases.close(s, app.services.kb, staff, case.id, "resolved")
    app.services.relay.notify()
    pushed = await app.line_api.wait_for_messages(USER, before + 1)
    assert _buttons(pushed) == [f"k:r:{case.id}:{n}" for n in range(1, 6)]
    thanks = await press(app, f"k:r:{case.id}:5")
    assert "Cảm ơn bạn đã đánh giá" in _texts(thanks)
    async with app.services.sessionmaker() as s:
        assert (await s.get(Case, case.id)).rating == 5
        stats = await collect_stats(s)
    assert stats["ratings"]["5"] == 1 and stats["cases"]["org"] == {"otit": 1}

    # the case is closed: the resident's questions go to the matcher again
    answer = await say(app, "Công ty không trả lương cho tôi 2 tháng")
    assert "c:work" in _buttons(answer)


async def test_back_to_the_bot_and_write_again(consult_app) -> None:
    app = consult_app
    case = await open_case_as_trainee(app)
    back = await press(app, "k:b")
    assert f"k:w:{case.id}" in _buttons(back)
    answer = await say(app, "Công ty không trả lương cho tôi 2 tháng")
    assert "c:work" in _buttons(answer)                         # the matcher answered, not the case
    again = await press(app, "c:work")                          # the consultation entry shows the open case
    assert case.number in _texts(again) and f"k:w:{case.id}" in _buttons(again)
    write = await press(app, f"k:w:{case.id}")
    assert _buttons(write) == ["k:b"]
    await say(app, "Tôi quên nói: tên công ty là ABC.")
    menu = await say(app, "menu")                               # a typed command also returns to the bot
    assert "k:b" not in _buttons(menu)
    async with app.services.sessionmaker() as s:
        texts = [m.text for m in (await s.execute(
            select(CaseMessage).where(CaseMessage.case_id == case.id).order_by(CaseMessage.id))).scalars()]
    assert texts[-1] == "Tôi quên nói: tên công ty là ABC." and "menu" not in texts

    # back with the bot, staff answer: the resident's next message goes to the case again
    staff = await _staff(app)
    async with app.services.sessionmaker() as s, s.begin():
        await cases.staff_reply(s, app.services.kb, staff, case.id, "Công ty ABC ở đâu?")
    ack = await say(app, "Ở thành phố Yamaguchi")
    assert case.number in _texts(ack) and _buttons(ack) == ["k:b"]


async def test_cancelling_a_draft_sends_nothing(consult_app) -> None:
    app = consult_app
    app.line_api.set_profile(USER, language="vi")
    await press(app, "c")
    asked = await press(app, "k:t:housing")                    # routing of housing depends on the segment
    assert _buttons(asked) == ["k:g:trainee", "k:g:student", "k:g:other", "k:g:-"]
    topics = await press(app, "k:g:other")
    assert "k:y" in _buttons(topics)
    await press(app, "k:y")
    empty = await press(app, "k:s")
    assert _buttons(empty) == ["k:s", "k:x"]                    # nothing written yet: asked to write first
    await say(app, "Nhà tôi bị dột")
    await press(app, "k:x")
    async with app.services.sessionmaker() as s:
        assert (await s.execute(select(Case))).first() is None
        assert (await s.execute(select(CaseMessage))).first() is None


async def test_urgent_topic_shows_110_and_119_first(consult_app) -> None:
    app = consult_app
    app.line_api.set_profile(USER, language="en")
    await press(app, "c")
    offer = await press(app, "k:t:disaster")
    first = offer[0]["text"]
    assert "119" in first and "110" in first
    assert "k:y" in _buttons(offer)


async def test_forget_me_with_an_open_case(consult_app) -> None:
    app = consult_app
    case = await open_case_as_trainee(app)
    await press(app, "k:b")
    await press(app, "x")
    await press(app, "x:yes")
    async with app.services.sessionmaker() as s:
        assert (await s.execute(select(User).where(User.platform_user_id == USER))).first() is None
        kept = await s.get(Case, case.id)
        assert kept.user_id is None and kept.status == "closed" and kept.outcome == "forgotten"
        assert (await s.execute(select(CaseMessage))).first() is None
        assert (await s.execute(select(CaseMedia))).first() is None


async def test_the_offer_dates_are_unambiguous_in_the_residents_language(consult_app) -> None:
    app = consult_app
    await press(app, "l:vi")
    await press(app, "s:seg:other")
    app.services.engine.clock = lambda: WEEKEND
    offer = await press(app, "c:health")                        # the centre: official facts, closed now
    text = _texts(offer)
    assert "※" not in text
    assert "Thứ Ba, 1 tháng 12, 2026, 08:30" in text             # opens again Tuesday 08:30, in words
    assert "12/01" not in text and "/12" not in text


async def test_an_image_the_platform_cannot_give_is_still_kept_as_a_message(consult_app) -> None:
    app = consult_app
    await press(app, "l:vi")
    await press(app, "c:work")
    await press(app, "k:g:-")                                   # segment asked once: skipped
    await press(app, "k:y")
    ack = await send_image(app, "99404")                       # no content at the fake: 404
    assert "(1)" in _texts(ack)
    async with app.services.sessionmaker() as s:
        message = (await s.execute(select(CaseMessage))).scalar_one()
        assert message.kind == "image" and message.extra["platform_id"] == "99404"
        assert message.media[0].size == 0 and "fetch failed" in message.media[0].error
