"""A student on Telegram (python-telegram-bot against the fake Bot API): the consultation
with inline buttons, a photo fetched through getFile and kept with the case, a case routed
to the university's office, and the staff reply pushed back with a "write to the case" button."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.consult import cases
from bot.consult.staff import add_staff
from bot.db.consult_models import Case, CaseMessage
from tests.fakes.webhooks import telegram_callback_update, telegram_photo_update, telegram_text_update

CHAT = 5550123
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 300


def _buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b.get("callback_data", "") for row in markup.get("inline_keyboard", []) for b in row]


async def _step(app, update: dict[str, Any]) -> list[dict[str, Any]]:
    before = len(app.telegram_api.messages_to(CHAT))
    assert (await app.post_telegram(update)).status_code == 200
    await app.settle()
    return app.telegram_api.messages_to(CHAT)[before:]


async def test_student_case_on_telegram_with_a_photo(consult_app) -> None:
    app = consult_app
    await _step(app, telegram_callback_update(CHAT, "s:seg:student"))
    topics = await _step(app, telegram_callback_update(CHAT, "c"))
    assert "k:t:residence" in _buttons(topics[-1])
    offer = await _step(app, telegram_callback_update(CHAT, "k:t:residence"))
    text = "\n".join(m["text"] for m in offer)
    assert "Yamaguchi University international student office" in text
    assert "not confirmed" in text                                # its hours are not sourced: said so
    await _step(app, telegram_callback_update(CHAT, "k:y"))
    await _step(app, telegram_text_update(CHAT, "My residence card expires next month. What do I do?"))
    app.telegram_api.add_file("AgACAgIAAxkBAAIphoto", PNG, "photos/card.png")
    ack = await _step(app, telegram_photo_update(CHAT))
    assert "(2)" in ack[-1]["text"]
    sent = await _step(app, telegram_callback_update(CHAT, "k:s"))
    assert "K-" in sent[-1]["text"] and _buttons(sent[-1]) == ["k:b"]

    before = len(app.telegram_api.messages_to(CHAT))
    async with app.services.sessionmaker() as s, s.begin():
        case = (await s.execute(select(Case))).scalar_one()
        assert (case.org, case.topic, case.segment, case.channel) == ("yu_international", "residence", "student",
                                                                       "telegram")
        staff = await add_staff(s, app.services.kb, org="yu_international", email="intl@yu.example",
                                password="long password 3")
        photo = (await s.execute(select(CaseMessage).where(CaseMessage.kind == "image"))).scalar_one()
        stored = await cases.get_media(s, staff, photo.media[0].id)
        assert stored.data == PNG and stored.mime_type == "image/png"
        await cases.staff_reply(s, app.services.kb, staff, case.id, "Please come to the office with your card.")
    app.services.relay.notify()
    pushed = await app.telegram_api.wait_for_messages(CHAT, before + 1)
    assert "Please come to the office with your card." in pushed[-1]["text"]
    assert _buttons(pushed[-1]) == [f"k:w:{case.id}"]
