"""TelegramChannel's own Bot API calls (plain JSON POSTs on one shared aiohttp session, no
python-telegram-bot on the send path): every body is valid against the Bot API spec
(../shared/reference/telegram-bot-api, checked here as sent, not only as the fake decodes
it), is what python-telegram-bot 22.8 sent before for the same replies (same method, same
fields, same values), and every error answer is translated as python-telegram-bot's
exceptions were (429 + retry_after, 403 blocked, 400 chat not found, 401/404, 409, 5xx,
no answer at all)."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import TelegramError

from bot.channels.telegram import TelegramChannel, answer_error, translate_error
from delivery.messages import Card, Choice, Reply
from delivery.senders import PermanentFailure, RetryLater, SendError
from tests.fakes.telegram_api import FakeTelegramAPI, call_errors
from tests.fakes.webhooks import telegram_text_update

CHAT = "5550001"          # kurashi's sends
OLD_CHAT = "5550002"      # python-telegram-bot's sends of the same parts


def _choices(n: int, prefix: str = "Topic") -> list[Choice]:
    return [Choice(label=f"{prefix} {i}", data=f"intent:topic.{i}") for i in range(n)]


CASES: dict[str, list[Reply]] = {
    "text": [Reply(text="Hello! How can I help?")],
    "quick replies, two short ones per row": [Reply(text="Which day?", quick_replies=_choices(3, "D"))],
    "buttons and quick replies": [Reply(text="Pick", buttons=_choices(4), quick_replies=_choices(5, "Q"))],
    "card": [Reply(text="See:", card=Card(title="City Hall", text="Weekdays", url="https://www.city.yamaguchi.lg.jp/"))],
    "long text split at 4096": [Reply(text=("Garbage is sorted into burnable and recyclables.\n" * 300)[:12_000],
                                      quick_replies=_choices(2))],
    "long labels, long data, emoji, furigana": [Reply(text="ねんきん（年金）を はらいます。ねんきん（年金）の てがみ。", buttons=[
        Choice(label="A rather long label that goes on and on and on and on and on 🙂🙂🙂", data="d" * 400),
        Choice(label="ごみの だしかた（出し方）について くわしく", data="intent:garbage.how"),
        Choice(label="👍", data="fb:+")])],
    "several replies joined": [Reply(text="first", quick_replies=[Choice("Menu", "m")]),
                               Reply(text="second", quick_replies=[Choice("Yes", "ob:y"), Choice("Menu", "m")])],
    "keyboard without text": [Reply(text="", buttons=_choices(1))],
    "digits and JSON-looking text": [Reply(text="123"), Reply(text='{"a": 1}', card=Card(title="true", text="null"))],
}


@pytest.fixture
async def telegram_channel(telegram_api):
    channel = TelegramChannel(token=telegram_api.token, webhook_secret="s3cret", api_base_url=telegram_api.base_url)
    yield channel
    await channel.close()


def _old_bot(fake: FakeTelegramAPI) -> telegram.Bot:
    return telegram.Bot(fake.token, base_url=f"{fake.base_url}/bot", base_file_url=f"{fake.base_url}/file/bot")


def _old_markup(markup: dict[str, Any] | None) -> InlineKeyboardMarkup | None:
    """The keyboard as the adapter built it with python-telegram-bot before (same labels and data)."""
    if markup is None:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b["text"], callback_data=b["callback_data"]) for b in row]
                                 for row in markup["inline_keyboard"]])


def _raw_params(call: Any) -> dict[str, Any]:
    """The parameters exactly as they went over the wire: JSON values, or form strings."""
    record = call.record
    if record.headers.get("Content-Type", "").startswith("application/json"):
        return json.loads(record.body)
    return dict(parse_qsl(record.body.decode("utf-8"), keep_blank_values=True))


@pytest.mark.parametrize("name", list(CASES))
async def test_every_send_is_a_valid_json_body_and_what_python_telegram_bot_sent(
        telegram_channel, telegram_api, name) -> None:
    replies = CASES[name]
    await telegram_channel.push([CHAT], replies, retry_key=f"k-{name}")
    async with _old_bot(telegram_api) as bot:        # the old send path, part by part
        for text, markup in telegram_channel.render(replies):
            await bot.send_message(chat_id=OLD_CHAT, text=text, reply_markup=_old_markup(markup))
    calls = telegram_api.calls_of("sendMessage")
    new = [c for c in calls if str(c.params["chat_id"]) == CHAT]
    old = [c for c in calls if str(c.params["chat_id"]) == OLD_CHAT]
    assert new and len(new) == len(old) == len(telegram_channel.render(replies))
    for ours, theirs in zip(new, old, strict=True):
        sent = _raw_params(ours)
        assert ours.record.headers["Content-Type"] == "application/json"
        assert isinstance(sent["text"], str) and sent["chat_id"] == CHAT
        assert call_errors("sendMessage", sent) == []          # the body itself, as JSON, against the spec
        assert ours.record.path == theirs.record.path == f"/bot{telegram_api.token}/sendMessage"
        assert set(sent) == set(_raw_params(theirs))           # the same fields, no parse_mode, no extras
        assert ours.params == {**theirs.params, "chat_id": ours.params["chat_id"]}   # the same values
    assert telegram_api.violations == []


async def test_answering_a_callback_query_is_json_and_what_python_telegram_bot_sent(
        telegram_channel, telegram_api) -> None:
    event = {"update_id": 9, "callback_query": {"id": "4382bfdwdsb323b2d9", "chat_instance": "c",
                                                "from": {"id": int(CHAT), "is_bot": False, "first_name": "A"},
                                                "data": "m"}}
    await telegram_channel.acknowledge(event)
    async with _old_bot(telegram_api) as bot:
        await bot.answer_callback_query("4382bfdwdsb323b2d9")
    ours, theirs = telegram_api.calls_of("answerCallbackQuery")
    assert _raw_params(ours) == {"callback_query_id": "4382bfdwdsb323b2d9"}
    assert call_errors("answerCallbackQuery", _raw_params(ours)) == []
    assert ours.params == theirs.params and set(_raw_params(theirs)) == {"callback_query_id"}


async def test_a_failed_callback_answer_is_only_logged(telegram_channel, telegram_api) -> None:
    telegram_api.fail_next("answerCallbackQuery", 400, description="Bad Request: query is too old")
    await telegram_channel.acknowledge({"callback_query": {"id": "77"}})      # no exception
    await telegram_channel.acknowledge({"message": {}})                         # nothing to answer
    assert len(telegram_api.calls_of("answerCallbackQuery")) == 1


async def test_the_calls_share_one_session_and_need_no_get_me(telegram_channel, telegram_api) -> None:
    await telegram_channel.push([CHAT], [Reply(text="one " * 1200)], retry_key="k-s")
    session = telegram_channel._http
    await telegram_channel.reply(CHAT, [Reply(text="two")])
    await telegram_channel.acknowledge({"callback_query": {"id": "1"}})
    assert session is not None and telegram_channel._http is session and not session.closed
    assert telegram_api.calls_of("getMe") == []          # the JSON calls do not initialise python-telegram-bot
    await telegram_channel.close()
    assert session.closed and telegram_channel._http is None
    await telegram_channel.reply(CHAT, [Reply(text="three")])    # a new session after close()
    assert telegram_api.texts_to(CHAT)[-2:] == ["two", "three"]


# -- errors: through the fake, compared with what python-telegram-bot raised -----------------------

FAILURES: dict[str, dict[str, Any]] = {
    "429 flood control": {"status": 429, "retry_after": 7},
    "403 blocked": {"status": 403},
    "403 deactivated": {"status": 403, "description": "Forbidden: user is deactivated"},
    "400 chat not found": {"status": 400, "description": "Bad Request: chat not found"},
    "400 message text is empty": {"status": 400},
    "401 unauthorized": {"status": 401, "description": "Unauthorized"},
    "404 not found": {"status": 404, "description": "Not Found"},
    "409 conflict": {"status": 409, "description": "Conflict: terminated by other getUpdates request"},
    "500 internal error": {"status": 500},
    "502 bad gateway": {"status": 502, "description": "Bad Gateway"},
    "503 unavailable": {"status": 503, "description": "Service Unavailable"},
}


def _shape(error: SendError) -> tuple[type, float | None, list[str]]:
    return type(error), getattr(error, "retry_after", None), getattr(error, "blocked", [])


@pytest.mark.parametrize("name", list(FAILURES))
async def test_an_error_answer_is_translated_as_python_telegram_bot_errors_were(
        telegram_channel, telegram_api, name) -> None:
    failure = FAILURES[name]
    telegram_api.fail_next("sendMessage", failure["status"], retry_after=failure.get("retry_after"),
                           description=failure.get("description"))
    with pytest.raises(SendError) as caught:
        await telegram_channel.push([CHAT], [Reply(text="x")], retry_key=f"k-{name}")
    telegram_api.fail_next("sendMessage", failure["status"], retry_after=failure.get("retry_after"),
                           description=failure.get("description"))
    async with _old_bot(telegram_api) as bot:
        with pytest.raises(TelegramError) as old:
            await bot.send_message(chat_id=CHAT, text="x")
    assert _shape(caught.value) == _shape(translate_error(old.value, CHAT))
    assert telegram_api.token not in str(caught.value)
    assert telegram_api.texts_to(CHAT) == []


async def test_the_kinds_the_rest_of_kurashi_relies_on(telegram_channel, telegram_api) -> None:
    telegram_api.fail_next("sendMessage", 429, retry_after=3)
    with pytest.raises(RetryLater) as flood:
        await telegram_channel.reply(CHAT, [Reply(text="x")])
    assert flood.value.retry_after == 3.0
    telegram_api.block(CHAT)
    with pytest.raises(PermanentFailure) as blocked:
        await telegram_channel.reply(CHAT, [Reply(text="x")])
    assert blocked.value.blocked == [CHAT]
    telegram_api.fail_next("sendMessage", 400, description="Bad Request: chat not found")
    with pytest.raises(PermanentFailure) as missing:
        await telegram_channel.reply("5550009", [Reply(text="x")])
    assert missing.value.blocked == [] and "chat not found" in str(missing.value)
    telegram_api.fail_next("sendMessage", 500)
    with pytest.raises(RetryLater) as server:
        await telegram_channel.reply("5550009", [Reply(text="x")])
    assert server.value.retry_after is None


async def test_an_unreachable_telegram_is_retry_later() -> None:
    async with FakeTelegramAPI() as gone:
        base_url, token = gone.base_url, gone.token       # the port is closed once the fake stops
    channel = TelegramChannel(token=token, api_base_url=base_url)
    try:
        with pytest.raises(RetryLater, match="NetworkError") as caught:
            await channel.push([CHAT], [Reply(text="x")], retry_key="k-gone")
        assert token not in str(caught.value)
    finally:
        await channel.close()


@pytest.mark.parametrize("status, body, expected", [
    (400, (b'{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat",'
           b'"parameters":{"migrate_to_chat_id":-1001234567890}}'), (PermanentFailure, None, [])),
    (400, b'{"ok":false,"error_code":400,"description":"x","parameters":{"retry_after":2}}', (RetryLater, 2.0, [])),
    (429, b'{"ok":false,"error_code":429,"description":"Too Many Requests"}', (RetryLater, None, [])),
    (403, b"<html>not JSON</html>", (PermanentFailure, None, [CHAT])),
    (500, b"", (RetryLater, None, [])),
    (418, b'{"ok":false,"error_code":418,"description":"I am a teapot"}', (RetryLater, None, [])),
])
def test_answer_error_covers_what_the_fake_does_not_send(status, body, expected) -> None:
    assert _shape(answer_error(status, body, CHAT)) == expected


async def test_a_webhook_update_is_answered_with_json_sends(kurashi) -> None:
    """The whole path: a Telegram update through the app, answered by a JSON sendMessage."""
    chat = 5550123
    await kurashi.post_telegram(telegram_text_update(chat, "how do I sort my garbage", language_code="en"))
    await kurashi.settle()
    (call,) = [c for c in kurashi.telegram_api.calls_of("sendMessage") if str(c.params.get("chat_id")) == str(chat)]
    assert call.record.headers["Content-Type"] == "application/json"
    assert call_errors("sendMessage", json.loads(call.record.body)) == []
