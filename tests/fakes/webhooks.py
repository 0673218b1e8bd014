"""Builders for inbound webhook requests as LINE and Telegram send them: LINE event bodies
with a real ``X-Line-Signature``, Telegram ``Update`` objects, and the reference samples
from ../shared/reference/samples/. Test-only; must not import ``bot``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
import uuid
from typing import Any

from tests.fakes._common import shared_path

LINE_DESTINATION = "U0123456789abcdef0123456789abcdef"
TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
LINE_SIGNATURE_HEADER = "X-Line-Signature"

_update_ids = itertools.count(700000001)
_message_ids = itertools.count(9001)


# -- LINE ------------------------------------------------------------------------------------
def sign_line(body: bytes, channel_secret: str) -> str:
    """X-Line-Signature: base64 of HMAC-SHA256 over the raw body with the channel secret."""
    digest = hmac.new(channel_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def line_body(*events: dict[str, Any], destination: str = LINE_DESTINATION) -> bytes:
    return json.dumps({"destination": destination, "events": list(events)}, ensure_ascii=False).encode("utf-8")


def line_signed(body: bytes, channel_secret: str) -> dict[str, str]:
    """Headers of a genuine LINE webhook delivery of ``body``."""
    return {"Content-Type": "application/json", LINE_SIGNATURE_HEADER: sign_line(body, channel_secret)}


def _line_event(kind: str, user_id: str, *, event_id: str | None = None, reply_token: str | None = None,
                redelivery: bool = False, group_id: str | None = None, **extra: Any) -> dict[str, Any]:
    source: dict[str, Any] = {"type": "user", "userId": user_id}
    if group_id:
        source = {"type": "group", "groupId": group_id, "userId": user_id}
    event: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": source,
        "webhookEventId": event_id or uuid.uuid4().hex.upper()[:26],
        "deliveryContext": {"isRedelivery": redelivery},
    }
    if reply_token is not None:
        event["replyToken"] = reply_token
    event.update(extra)
    return event


def line_text_event(user_id: str, text: str, *, reply_token: str | None = None, **kw: Any) -> dict[str, Any]:
    message = {"id": str(next(_message_ids)), "type": "text", "text": text, "quoteToken": uuid.uuid4().hex}
    return _line_event("message", user_id, reply_token=reply_token or uuid.uuid4().hex, message=message, **kw)


def line_message_event(user_id: str, message: dict[str, Any], *, reply_token: str | None = None,
                       **kw: Any) -> dict[str, Any]:
    """A message event of any type (sticker, image, location…); ``id`` is filled in when missing."""
    message = {"id": str(next(_message_ids)), **message}
    return _line_event("message", user_id, reply_token=reply_token or uuid.uuid4().hex, message=message, **kw)


def line_postback_event(user_id: str, data: str, *, reply_token: str | None = None, **kw: Any) -> dict[str, Any]:
    return _line_event("postback", user_id, reply_token=reply_token or uuid.uuid4().hex,
                       postback={"data": data}, **kw)


def line_follow_event(user_id: str, *, reply_token: str | None = None, unblocked: bool = False,
                      **kw: Any) -> dict[str, Any]:
    return _line_event("follow", user_id, reply_token=reply_token or uuid.uuid4().hex,
                       follow={"isUnblocked": unblocked}, **kw)


def line_unfollow_event(user_id: str, **kw: Any) -> dict[str, Any]:
    return _line_event("unfollow", user_id, **kw)


def line_join_event(group_id: str, *, reply_token: str | None = None, **kw: Any) -> dict[str, Any]:
    event = _line_event("join", "U" + "0" * 32, reply_token=reply_token or uuid.uuid4().hex, **kw)
    event["source"] = {"type": "group", "groupId": group_id}
    return event


def load_line_sample(name: str) -> bytes:
    """The exact bytes of ../shared/reference/samples/line/<name> (None-safe callers skip first)."""
    path = shared_path("samples", "line", name)
    if path is None:
        raise FileNotFoundError(f"../shared/reference/samples/line/{name} is absent")
    return path.read_bytes()


# -- Telegram --------------------------------------------------------------------------------
def telegram_user(user_id: int, *, language_code: str | None = "en", first_name: str = "Test") -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language_code:
        user["language_code"] = language_code
    return user


def _private_chat(chat_id: int, first_name: str = "Test") -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": first_name}


def telegram_message(chat_id: int, text: str, *, language_code: str | None = "en",
                     message_id: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": message_id or next(_message_ids),
        "from": telegram_user(chat_id, language_code=language_code),
        "chat": _private_chat(chat_id),
        "date": int(time.time()),
        "text": text,
    }
    if text.startswith("/"):
        command = text.split()[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return message


def telegram_text_update(chat_id: int, text: str, *, update_id: int | None = None,
                         language_code: str | None = "en") -> dict[str, Any]:
    return {"update_id": update_id or next(_update_ids),
            "message": telegram_message(chat_id, text, language_code=language_code)}


def telegram_edited_update(chat_id: int, text: str, *, update_id: int | None = None) -> dict[str, Any]:
    message = telegram_message(chat_id, text)
    message["edit_date"] = message["date"] + 5
    return {"update_id": update_id or next(_update_ids), "edited_message": message}


def telegram_callback_update(chat_id: int, data: str, *, update_id: int | None = None,
                             language_code: str | None = "en") -> dict[str, Any]:
    bot_message = {
        "message_id": next(_message_ids),
        "from": {"id": 123456789, "is_bot": True, "first_name": "kurashi (test)", "username": "kurashi_test_bot"},
        "chat": _private_chat(chat_id),
        "date": int(time.time()),
        "text": "…",
    }
    return {"update_id": update_id or next(_update_ids), "callback_query": {
        "id": str(uuid.uuid4().int)[:18],
        "from": telegram_user(chat_id, language_code=language_code),
        "message": bot_message,
        "chat_instance": "-1234567890123456789",
        "data": data,
    }}


def telegram_sticker_update(chat_id: int, *, update_id: int | None = None) -> dict[str, Any]:
    message = telegram_message(chat_id, "x")
    del message["text"]
    message["sticker"] = {"file_id": "CAACAgIAAxkBAAI", "file_unique_id": "AgADsticker", "type": "regular",
                          "width": 512, "height": 512, "is_animated": False, "is_video": False}
    return {"update_id": update_id or next(_update_ids), "message": message}


def telegram_photo_update(chat_id: int, *, file_id: str = "AgACAgIAAxkBAAIphoto", update_id: int | None = None) -> dict[str, Any]:
    message = telegram_message(chat_id, "x")
    del message["text"]
    message["photo"] = [{"file_id": file_id, "file_unique_id": "AQADphoto", "width": 90, "height": 90}]
    return {"update_id": update_id or next(_update_ids), "message": message}


def telegram_my_chat_member_update(chat_id: int, *, blocked: bool = True,
                                   update_id: int | None = None) -> dict[str, Any]:
    bot_user = {"id": 123456789, "is_bot": True, "first_name": "kurashi (test)", "username": "kurashi_test_bot"}
    member = {"status": "member", "user": bot_user}
    kicked = {"status": "kicked", "user": bot_user, "until_date": 0}
    old, new = (member, kicked) if blocked else (kicked, member)
    return {"update_id": update_id or next(_update_ids), "my_chat_member": {
        "chat": _private_chat(chat_id),
        "from": telegram_user(chat_id),
        "date": int(time.time()),
        "old_chat_member": old,
        "new_chat_member": new,
    }}


def load_telegram_sample(name: str) -> dict[str, Any]:
    path = shared_path("samples", "telegram", name)
    if path is None:
        raise FileNotFoundError(f"../shared/reference/samples/telegram/{name} is absent")
    return json.loads(path.read_text(encoding="utf-8"))
