"""The staff Telegram group relay: answering a consultation from the organisation's group.

Owns ``handle_staff_group_update``: a Telegram update from a configured staff group. A
message that *replies to the bot's post about a case* is relayed to the resident as a
staff reply (``cases.staff_reply``); the bot confirms in the group. Two commands work the
same way, as a reply to a case post: ``/close`` (closes it with outcome "resolved"; the
resident is asked for a rating) and ``/note TEXT`` (an internal note, not sent).
bot/inbound.py hands every Telegram update here first.

Who may answer from the group (the choice asked for in issue 4): **any member of the
organisation's configured staff group**. The group is the organisation's private staff
room, so posting there is treated as acting for the organisation. Replies are accepted
only for cases of the organisation(s) that configured that group, only as replies to the
bot's own post, and are audited as ``telegram:<user id> <first name>`` — attributed to a
staff account when its ``telegram_user_id`` is linked (``kurashi staff add --telegram-id``).
Bots in groups with privacy mode on still receive replies to their own messages, so no
BotFather change is needed.

Must not import the conversation engine, FastAPI or platform SDKs (the Telegram update is
read as the raw JSON the webhook stored).
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from bot.consult import cases
from bot.consult.notify import CASE_NUMBER, staff_language
from bot.conversation.locale import Texts
from bot.db.consult_models import Case, OrgSettings, Staff
from delivery.messages import Reply
from delivery.outbox import enqueue

log = logging.getLogger("kurashi.consult.notify")


def _group_message(event: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(message, chat id) of a Telegram update from a group, else (None, None)."""
    for key in ("message", "edited_message"):
        message = event.get(key)
        if isinstance(message, dict):
            chat = message.get("chat") or {}
            if chat.get("type") in ("group", "supergroup"):
                return (message if key == "message" else None), str(chat.get("id"))
            return None, None
    query = event.get("callback_query")
    if isinstance(query, dict):
        chat = ((query.get("message") or {}).get("chat")) or {}
        if chat.get("type") in ("group", "supergroup"):
            return None, str(chat.get("id"))
    member = event.get("my_chat_member")
    if isinstance(member, dict):
        chat = member.get("chat") or {}
        if chat.get("type") in ("group", "supergroup"):
            return None, str(chat.get("id"))
    return None, None


async def handle_staff_group_update(services: Any, channel: str, event: dict[str, Any]) -> bool:
    """Handle a Telegram update coming from a configured staff group; True when it was one
    (then nothing else must handle it), False for every other update."""
    if channel != "telegram" or not isinstance(event, dict):
        return False
    message, chat_id = _group_message(event)
    if chat_id is None:
        return False
    adapter = services.channels.get("telegram")
    bot_id = getattr(adapter, "bot_id", None)
    answer_key: str | None = None
    case_no = ""
    async with services.sessionmaker() as session, session.begin():
        orgs = list((await session.execute(
            select(OrgSettings.org).where(OrgSettings.telegram_chat_id == chat_id))).scalars())
        if not orgs:
            if message is None and isinstance(event.get("my_chat_member"), dict):
                # Tell the operator how to make this group an organisation's staff group.
                log.info("telegram group is not a staff group; register it with "
                         "`kurashi staff notify --org ORG --telegram-chat %s`", chat_id)
            return False
        if message is None:
            return True                                   # edits, buttons, membership changes
        reply_to = message.get("reply_to_message") or {}
        text = message.get("text") or message.get("caption")
        sender = message.get("from") or {}
        if not reply_to or not text or sender.get("is_bot"):
            return True                                   # staff talking among themselves
        if bot_id is not None and (reply_to.get("from") or {}).get("id") != bot_id:
            return True                                   # a reply to a colleague, not to a case post
        match = CASE_NUMBER.search(reply_to.get("text") or "")
        lang = staff_language(services.kb, orgs[0])
        case = await session.get(Case, int(match.group(1))) if match else None
        if case is None or case.org not in orgs:
            answer_key = "staff.relay_unknown"
        else:
            case_no = case.number
            lang = staff_language(services.kb, case.org)
            staff = await session.scalar(select(Staff).where(
                Staff.telegram_user_id == sender.get("id"), Staff.org == case.org, Staff.active.is_(True)))
            actor = cases.Actor.telegram(case.org, sender.get("id", "?"), sender.get("first_name"), staff)
            command, _, rest = text.strip().partition(" ")
            command = command.split("@", 1)[0].lower()
            try:
                if command == "/close":
                    await cases.close(session, services.kb, actor, case.id, "resolved")
                    answer_key = "staff.closed_ok"
                elif command == "/note" and rest.strip():
                    await cases.add_note(session, actor, case.id, rest)
                    answer_key = "staff.noted_ok"
                else:
                    await cases.staff_reply(session, services.kb, actor, case.id, text)
                    answer_key = "staff.relay_ok"
            except (cases.CaseClosed, cases.CaseNotFound):
                answer_key = "staff.relay_closed"
            except cases.InvalidAction:
                answer_key = "staff.relay_unknown"
        note = Texts(services.kb).t(answer_key, lang, case_no=case_no or "-")
        await enqueue(session, channel="telegram", recipients=[chat_id], replies=[Reply(note)],
                      kind="staff_telegram", ref=f"case:{case.id}" if case is not None else None)
    notify = getattr(services.relay, "notify", None)
    if notify is not None:
        notify()
    return True
