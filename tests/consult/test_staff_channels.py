"""Staff notifications end to end: the staff Telegram group (python-telegram-bot against the
fake Telegram API) gets the new case with its number, and a staff member's reply to that
post reaches the resident's LINE chat; e-mail goes through a real SMTP server (aiosmtpd) on
loopback. Replies from elsewhere are not relayed."""
from __future__ import annotations

import itertools
import time
from typing import Any

from sqlalchemy import select

from bot.consult.staff import add_staff, set_notify
from bot.db.consult_models import AuditEntry, Case, CaseMessage
from tests.consult.test_e2e_line import USER, _buttons, _texts, open_case_as_trainee

GROUP = -1001234567890
OTHER_GROUP = -1009999999999
_ids = itertools.count(880000001)


async def _configure(app, *, chat: int | None = GROUP, emails: list[str] | None = None) -> None:
    async with app.services.sessionmaker() as s, s.begin():
        await set_notify(s, app.services.kb, "otit", telegram_chat_id=str(chat) if chat else None,
                         emails=emails or [])
        await set_notify(s, app.services.kb, "yfrcc", telegram_chat_id=str(OTHER_GROUP))


def group_reply(chat_id: int, text: str, quoted: str, *, to_bot: int | None, sender: int = 4242) -> dict[str, Any]:
    chat = {"id": chat_id, "type": "supergroup", "title": "staff"}
    quoted_from = ({"id": to_bot, "is_bot": True, "first_name": "kurashi"} if to_bot
                   else {"id": 777, "is_bot": False, "first_name": "Colleague"})
    return {
        "update_id": next(_ids),
        "message": {
            "message_id": next(_ids) % 100000, "date": int(time.time()), "chat": chat, "text": text,
            "from": {"id": sender, "is_bot": False, "first_name": "Aiko"},
            "reply_to_message": {"message_id": 41, "date": int(time.time()), "chat": chat, "from": quoted_from,
                                 "text": quoted},
        },
    }


async def test_staff_group_gets_the_case_and_a_reply_reaches_the_resident(consult_app) -> None:
    app = consult_app
    await _configure(app)
    case = await open_case_as_trainee(app)
    app.services.relay.notify()
    posts = await app.telegram_api.wait_for_messages(GROUP, 1)
    post = posts[0]["text"]
    assert case.number in post and "Công ty không trả lương 2 tháng" in post and "[image]" in post
    bot_id = int(app.telegram_api.token.split(":")[0])

    before = len(app.line_api.messages_for(USER))
    response = await app.post_telegram(group_reply(GROUP, "Chúng tôi sẽ liên hệ với công ty.", post, to_bot=bot_id))
    assert response.status_code == 200
    await app.settle()
    app.services.relay.notify()
    pushed = await app.line_api.wait_for_messages(USER, before + 1)
    assert "Chúng tôi sẽ liên hệ với công ty." in _texts(pushed[before:])
    confirmations = await app.telegram_api.wait_for_messages(GROUP, 2)
    assert confirmations[-1]["text"].startswith("✅") and case.number in confirmations[-1]["text"]
    async with app.services.sessionmaker() as s:
        entry = (await s.execute(select(AuditEntry).where(AuditEntry.action == "replied"))).scalar_one()
        assert entry.actor == "telegram:4242 Aiko" and entry.org == "otit"
        assert (await s.get(Case, case.id)).status == "answered"


async def test_replies_that_are_not_for_a_case_are_not_relayed(consult_app) -> None:
    app = consult_app
    await _configure(app)
    case = await open_case_as_trainee(app)
    app.services.relay.notify()
    post = (await app.telegram_api.wait_for_messages(GROUP, 1))[0]["text"]
    bot_id = int(app.telegram_api.token.split(":")[0])
    # a reply to a colleague, plain chatter, and the post quoted in another organisation's group
    await app.post_telegram(group_reply(GROUP, "ok, I'll take it", post, to_bot=None))
    chatter = group_reply(GROUP, "lunch?", "", to_bot=bot_id)
    del chatter["message"]["reply_to_message"]
    await app.post_telegram(chatter)
    await app.post_telegram(group_reply(OTHER_GROUP, "Not ours but answering", post, to_bot=bot_id))
    await app.settle()
    app.services.relay.notify()
    unknown = await app.telegram_api.wait_for_messages(OTHER_GROUP, 1)
    assert unknown[-1]["text"].startswith("❓")
    async with app.services.sessionmaker() as s:
        outgoing = (await s.execute(select(CaseMessage).where(CaseMessage.direction == "out"))).all()
    assert outgoing == []
    assert len(app.telegram_api.messages_to(GROUP)) == 1             # only the case post; no confirmations
    assert case.status == "open"


async def test_new_case_e_mail_through_a_real_smtp_server(consult_app_with_smtp) -> None:
    app, mailbox = consult_app_with_smtp
    async with app.services.sessionmaker() as s, s.begin():
        await add_staff(s, app.services.kb, org="otit", email="Mai@OTIT.example", password="long password 9")
    await _configure(app, chat=None, emails=["desk@otit.example"])
    case = await open_case_as_trainee(app)
    app.services.relay.notify()
    received = await mailbox.wait_for(2)
    recipients = sorted(r for rcpts, _ in received for r in rcpts)
    assert recipients == ["desk@otit.example", "mai@otit.example"]
    _, message = received[0]
    assert case.number in message["Subject"] and message["From"] == "kurashi@test.example"
    body = message.get_content()
    assert "Công ty không trả lương 2 tháng" in body and case.number in body
    assert app.telegram_api.messages_to(GROUP) == []                 # no group configured for OTIT here


async def test_note_and_close_from_the_staff_group(consult_app) -> None:
    app = consult_app
    await _configure(app)
    case = await open_case_as_trainee(app)
    app.services.relay.notify()
    post = (await app.telegram_api.wait_for_messages(GROUP, 1))[0]["text"]
    bot_id = int(app.telegram_api.token.split(":")[0])
    await app.post_telegram(group_reply(GROUP, "/note called the company, no answer", post, to_bot=bot_id))
    await app.settle()
    app.services.relay.notify()
    await app.telegram_api.wait_for_messages(GROUP, 2)
    before = len(app.line_api.messages_for(USER))
    await app.post_telegram(group_reply(GROUP, "/close", post, to_bot=bot_id))
    await app.settle()
    app.services.relay.notify()
    pushed = await app.line_api.wait_for_messages(USER, before + 1)
    assert case.number in _texts(pushed[before:])
    assert _buttons(pushed) == [f"k:r:{case.id}:{n}" for n in range(1, 6)]          # the rating question
    confirmations = await app.telegram_api.wait_for_messages(GROUP, 3)
    assert confirmations[1]["text"].startswith("📝") and confirmations[2]["text"].startswith("✅")
    async with app.services.sessionmaker() as s:
        closed = await s.get(Case, case.id)
        notes = (await s.execute(select(CaseMessage).where(CaseMessage.direction == "note"))).scalars().all()
    assert closed.status == "closed" and closed.outcome == "resolved"
    assert [n.text for n in notes] == ["called the company, no answer"]
    assert not any("called the company" in m for m in _texts(app.line_api.messages_for(USER)).splitlines())
