"""The fake platforms themselves, driven by the real SDKs: they accept what LINE/Telegram
accept, flag what the specs forbid, and fail on demand the way the platforms do."""
from __future__ import annotations

import uuid

import pytest
import telegram
from linebot.v3.messaging import (
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    Configuration,
    MulticastRequest,
    PushMessageRequest,
    ReplyMessageRequest,
    TextMessage,
)
from linebot.v3.messaging.exceptions import ApiException
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import Forbidden, RetryAfter

from tests.fakes.line_api import FakeLineAPI, limit_errors
from tests.fakes.telegram_api import FakeTelegramAPI, call_errors, object_errors
from tests.fakes.webhooks import load_telegram_sample

USER = "U" + "1" * 32


def _line_client(fake: FakeLineAPI) -> AsyncApiClient:
    return AsyncApiClient(Configuration(host=fake.base_url, access_token=fake.access_token))


async def test_line_push_is_delivered_and_valid(line_api: FakeLineAPI) -> None:
    async with _line_client(line_api) as client:
        api = AsyncMessagingApi(client)
        await api.push_message(PushMessageRequest(to=USER, messages=[TextMessage(text="hello")]),
                               x_line_retry_key=str(uuid.uuid4()))
    assert line_api.texts_for(USER) == ["hello"]
    assert line_api.violations == []


async def test_line_retry_key_twice_answers_409_and_delivers_once(line_api: FakeLineAPI) -> None:
    key = str(uuid.uuid4())
    request = PushMessageRequest(to=USER, messages=[TextMessage(text="once")])
    async with _line_client(line_api) as client:
        api = AsyncMessagingApi(client)
        await api.push_message(request, x_line_retry_key=key)
        with pytest.raises(ApiException) as caught:
            await api.push_message(request, x_line_retry_key=key)
    assert caught.value.status == 409
    assert caught.value.headers["x-line-accepted-request-id"] == line_api.deliveries[0].request_id
    assert line_api.texts_for(USER) == ["once"]


async def test_line_delivered_but_failed_then_retry_is_not_duplicated(line_api: FakeLineAPI) -> None:
    key = str(uuid.uuid4())
    line_api.fail_next("multicast", 500, deliver=True)
    request = MulticastRequest(to=[USER, "U" + "2" * 32], messages=[TextMessage(text="alert")])
    async with _line_client(line_api) as client:
        api = AsyncMessagingApi(client)
        with pytest.raises(ApiException) as first:
            await api.multicast(request, x_line_retry_key=key)
        with pytest.raises(ApiException) as second:
            await api.multicast(request, x_line_retry_key=key)
    assert (first.value.status, second.value.status) == (500, 409)
    assert line_api.texts_for(USER) == ["alert"]


async def test_line_programmed_429_carries_retry_after(line_api: FakeLineAPI) -> None:
    line_api.fail_next("push", 429, retry_after=7)
    async with _line_client(line_api) as client:
        api = AsyncMessagingApi(client)
        with pytest.raises(ApiException) as caught:
            await api.push_message(PushMessageRequest(to=USER, messages=[TextMessage(text="x")]))
        await api.push_message(PushMessageRequest(to=USER, messages=[TextMessage(text="y")]))
    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "7"
    assert line_api.texts_for(USER) == ["y"]


async def test_line_reply_token_works_once(line_api: FakeLineAPI) -> None:
    token = line_api.issue_reply_token(USER)
    async with _line_client(line_api) as client:
        api = AsyncMessagingApi(client)
        await api.reply_message(ReplyMessageRequest(reply_token=token, messages=[TextMessage(text="hi")]))
        with pytest.raises(ApiException) as caught:
            await api.reply_message(ReplyMessageRequest(reply_token=token, messages=[TextMessage(text="again")]))
    assert caught.value.status == 400
    assert "Invalid reply token" in caught.value.body
    assert line_api.texts_for(USER) == ["hi"]


async def test_line_profile_and_content(line_api: FakeLineAPI) -> None:
    line_api.set_profile(USER, display_name="Lan", language="vi")
    line_api.set_content("325708", b"\xff\xd8jpeg")
    async with _line_client(line_api) as client:
        profile = await AsyncMessagingApi(client).get_profile(USER)
        content = await AsyncMessagingApiBlob(client).get_message_content("325708")
    assert (profile.display_name, profile.language) == ("Lan", "vi")
    assert bytes(content) == b"\xff\xd8jpeg"


async def test_line_wrong_token_is_401(line_api: FakeLineAPI) -> None:
    config = Configuration(host=line_api.base_url, access_token="wrong")
    async with AsyncApiClient(config) as client:
        with pytest.raises(ApiException) as caught:
            await AsyncMessagingApi(client).push_message(PushMessageRequest(to=USER, messages=[TextMessage(text="x")]))
    assert caught.value.status == 401


async def test_line_fake_flags_spec_and_limit_violations(line_api: FakeLineAPI) -> None:
    line_api.allow_violations = True
    async with _line_client(line_api) as client:
        await AsyncMessagingApi(client).push_message(
            PushMessageRequest(to=USER, messages=[TextMessage(text="x" * 5001)]))
        with pytest.raises(ApiException):  # LINE refuses 6 messages; the fake too
            await client.rest_client.request(
                "POST", f"{line_api.base_url}/v2/bot/message/push",
                headers={"Authorization": f"Bearer {line_api.access_token}", "X-Line-Retry-Key": "not-a-uuid",
                         "Content-Type": "application/json"},
                body={"to": USER, "messages": [{"type": "text", "text": "y"}] * 6})
    assert any("longer than 5000" in v for v in line_api.violations)
    assert any("X-Line-Retry-Key" in v for v in line_api.violations)
    assert any("too long" in v for v in line_api.violations)


def test_line_limits_count_utf16_and_labels() -> None:
    body = {"messages": [{"type": "text", "text": "😀" * 2501, "quickReply": {"items": [
        {"type": "action", "action": {"type": "postback", "label": "x" * 21, "data": "d"}}]}}]}
    problems = limit_errors(body)
    assert any("longer than 5000" in p for p in problems)
    assert any("label longer than 20" in p for p in problems)


def _bot(fake: FakeTelegramAPI) -> telegram.Bot:
    return telegram.Bot(fake.token, base_url=f"{fake.base_url}/bot",
                        base_file_url=f"{fake.base_url}/file/bot")


async def test_telegram_send_message_with_keyboard_is_valid(telegram_api: FakeTelegramAPI) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="intent:garbage.bulky")]])
    async with _bot(telegram_api) as bot:
        message = await bot.send_message(chat_id=111, text="hello", reply_markup=markup)
        await bot.answer_callback_query("42")
        await bot.send_chat_action(111, "typing")
    assert message.text == "hello" and message.chat.id == 111
    sent = telegram_api.messages_to(111)
    assert sent[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "intent:garbage.bulky"
    assert telegram_api.violations == []


async def test_telegram_blocked_user_is_forbidden(telegram_api: FakeTelegramAPI) -> None:
    telegram_api.block(222)
    async with _bot(telegram_api) as bot:
        with pytest.raises(Forbidden, match="blocked"):
            await bot.send_message(chat_id=222, text="hello")
    assert telegram_api.messages_to(222) == []


async def test_telegram_429_becomes_retry_after(telegram_api: FakeTelegramAPI) -> None:
    telegram_api.fail_next("sendMessage", 429, retry_after=7)
    async with _bot(telegram_api) as bot:
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(chat_id=111, text="x")
        await bot.send_message(chat_id=111, text="y")
    assert "retry in 7 seconds" in str(caught.value).lower()
    assert telegram_api.texts_to(111) == ["y"]


async def test_telegram_500_and_file_download(telegram_api: FakeTelegramAPI) -> None:
    telegram_api.fail_next("sendMessage", 500)
    telegram_api.add_file("F1", b"bytes!", "photos/f1.jpg")
    async with _bot(telegram_api) as bot:
        with pytest.raises(telegram.error.NetworkError):
            await bot.send_message(chat_id=111, text="x")
        file = await bot.get_file("F1")
        data = await file.download_as_bytearray()
    assert bytes(data) == b"bytes!"


async def test_telegram_polling_gets_queued_updates(telegram_api: FakeTelegramAPI) -> None:
    update = telegram_api.queue_update({"message": {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"},
                                                    "text": "hi"}})
    async with _bot(telegram_api) as bot:
        updates = await bot.get_updates(timeout=1)
        assert [u.update_id for u in updates] == [update["update_id"]]
        assert await bot.get_updates(offset=update["update_id"] + 1, timeout=0) == ()


def test_telegram_walker_flags_unknown_missing_and_wrong_types(telegram_api_spec: None) -> None:
    assert call_errors("sendMessage", {"chat_id": 1, "text": "ok"}) == []
    assert any("missing required field 'text'" in e for e in call_errors("sendMessage", {"chat_id": 1}))
    assert any("unknown field 'colour'" in e for e in call_errors("sendMessage", {"chat_id": 1, "text": "x", "colour": 1}))
    assert any("expected" in e for e in call_errors("sendMessage", {"chat_id": 1.5, "text": "x"}))
    long_data = {"inline_keyboard": [[{"text": "a", "callback_data": "é" * 33}]]}
    assert any("64 bytes" in e for e in call_errors("sendMessage", {"chat_id": 1, "text": "x", "reply_markup": long_data}))
    assert call_errors("noSuchMethod", {}) == ["unknown method 'noSuchMethod'"]


@pytest.mark.parametrize("name", ["message-text.json", "message-command-start.json", "callback-query.json",
                                  "my-chat-member-blocked.json", "my-chat-member-unblocked.json"])
def test_telegram_samples_are_valid_updates(telegram_api_spec: None, name: str) -> None:
    assert object_errors(load_telegram_sample(name), "Update") == []


def _all_line_builders() -> list[tuple[str, bytes]]:
    from tests.fakes.webhooks import (
        line_body,
        line_follow_event,
        line_join_event,
        line_message_event,
        line_postback_event,
        line_text_event,
        line_unfollow_event,
    )

    return [
        ("text", line_body(line_text_event(USER, "hello"))),
        ("group text", line_body(line_text_event(USER, "hi", group_id="C" + "1" * 32))),
        ("sticker", line_body(line_message_event(USER, {"type": "sticker", "packageId": "1", "stickerId": "2",
                                                        "stickerResourceType": "STATIC"}))),
        ("image", line_body(line_message_event(USER, {"type": "image", "contentProvider": {"type": "line"}}))),
        ("postback", line_body(line_postback_event(USER, "menu"))),
        ("follow", line_body(line_follow_event(USER))),
        ("unfollow", line_body(line_unfollow_event(USER))),
        ("join", line_body(line_join_event("C" + "2" * 32))),
    ]


@pytest.mark.parametrize("name, body", _all_line_builders(), ids=[n for n, _ in _all_line_builders()])
def test_line_webhook_builders_make_valid_deliveries(line_api_spec: None, name: str, body: bytes) -> None:
    from tests.fakes.line_api import webhook_body_errors

    assert webhook_body_errors(body) == []


def test_line_webhook_validator_catches_a_broken_event(line_api_spec: None) -> None:
    from tests.fakes.line_api import webhook_body_errors
    from tests.fakes.webhooks import line_body, line_text_event

    event = line_text_event(USER, "hello")
    del event["deliveryContext"]
    assert webhook_body_errors(line_body(event))


def test_telegram_update_builders_make_valid_updates(telegram_api_spec: None) -> None:
    from tests.fakes import webhooks as w

    updates = [w.telegram_text_update(5, "hi"), w.telegram_text_update(5, "/start"), w.telegram_edited_update(5, "x"),
               w.telegram_callback_update(5, "menu"), w.telegram_sticker_update(5), w.telegram_photo_update(5),
               w.telegram_my_chat_member_update(5), w.telegram_my_chat_member_update(5, blocked=False)]
    assert [object_errors(u, "Update") for u in updates] == [[] for _ in updates]
