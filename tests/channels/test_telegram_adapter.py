"""TelegramChannel against the fake Bot API: rendering within Telegram's limits (checked
by the fake against api-bot-api-10.0.json), push and error translation, polling."""
from __future__ import annotations

import asyncio

import pytest

from bot.channels.telegram import TelegramChannel
from delivery.messages import Card, Choice, Reply
from delivery.senders import PermanentFailure, RetryLater
from tests.fakes.webhooks import telegram_text_update

CHAT = "5550001"


@pytest.fixture
async def telegram(telegram_api):
    channel = TelegramChannel(token=telegram_api.token, webhook_secret="s3cret",
                              api_base_url=telegram_api.base_url)
    await channel.start()
    yield channel
    await channel.close()


def test_secret_is_compared_exactly() -> None:
    channel = TelegramChannel(token="1:x", webhook_secret="s3cret")
    assert channel.verify("s3cret")
    assert not channel.verify("s3cret ") and not channel.verify("") and not channel.verify(None)
    assert not TelegramChannel(token="1:x").verify("anything")  # no secret configured: trust nothing


async def test_push_sends_text_with_an_inline_keyboard(telegram, telegram_api) -> None:
    reply = Reply(text="Which day?", quick_replies=[Choice("Mon", "d:1"), Choice("Tue", "d:2"), Choice("Wed", "d:3")],
                  buttons=[Choice("👍", "fb:+"), Choice("👎", "fb:-")])
    await telegram.push([CHAT], [reply], retry_key="k1")
    (sent,) = telegram_api.messages_to(CHAT)
    rows = sent["reply_markup"]["inline_keyboard"]
    assert [[b["callback_data"] for b in row] for row in rows] == [["fb:+"], ["fb:-"], ["d:1", "d:2"], ["d:3"]]
    assert telegram_api.violations == []


async def test_long_text_is_split_at_4096_and_keyboard_rides_on_the_last_part(telegram, telegram_api) -> None:
    text = ("Line of an answer about garbage.\n" * 400)[:10_000]
    await telegram.push([CHAT], [Reply(text=text, quick_replies=[Choice("Menu", "menu")])], retry_key="k2")
    sent = telegram_api.messages_to(CHAT)
    assert len(sent) == 3 and all(len(m["text"]) <= 4096 for m in sent)
    assert [("reply_markup" in m) for m in sent] == [False, False, True]


async def test_card_is_sent_as_text(telegram, telegram_api) -> None:
    card = Card(title="City Hall", text="Weekdays", url="https://www.city.yamaguchi.lg.jp/")
    await telegram.push([CHAT], [Reply(text="See:", card=card)], retry_key="k3")
    assert telegram_api.texts_to(CHAT) == ["See:", "City Hall\nWeekdays\nhttps://www.city.yamaguchi.lg.jp/"]


async def test_long_callback_data_is_sent_as_a_digest_and_resolved(telegram, telegram_api) -> None:
    data = "intent:" + "é" * 60
    await telegram.push([CHAT], [Reply(text="x", buttons=[Choice("Go", data)])], retry_key="k4")
    sent_data = telegram_api.messages_to(CHAT)[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert len(sent_data.encode()) <= 64
    assert telegram.resolve_data(sent_data) == data
    assert telegram_api.violations == []


async def test_blocked_user_is_a_permanent_failure_naming_the_chat(telegram, telegram_api) -> None:
    telegram_api.block(CHAT)
    with pytest.raises(PermanentFailure) as caught:
        await telegram.push([CHAT], [Reply(text="x")], retry_key="k5")
    assert caught.value.blocked == [CHAT]


@pytest.mark.parametrize("status, error", [(429, RetryLater), (500, RetryLater), (400, PermanentFailure)])
async def test_send_errors_are_translated(telegram, telegram_api, status, error) -> None:
    telegram_api.fail_next("sendMessage", status, retry_after=7 if status == 429 else None)
    with pytest.raises(error) as caught:
        await telegram.push([CHAT], [Reply(text="x")], retry_key="k6")
    if status == 429:
        assert caught.value.retry_after == 7.0
    if status == 400:
        assert caught.value.blocked == []  # a bad request is not a block


async def test_retry_of_a_half_sent_push_does_not_repeat_the_sent_part(telegram, telegram_api) -> None:
    # too long for one message together: two sendMessage calls
    replies = [Reply(text="one " * 1000), Reply(text="two " * 100)]
    telegram_api.fail_next("sendMessage", 500, skip=1)
    with pytest.raises(RetryLater):
        await telegram.push([CHAT], replies, retry_key="k7")
    await telegram.push([CHAT], replies, retry_key="k7")
    assert telegram_api.texts_to(CHAT) == ["one " * 1000, "two " * 100]


async def test_short_replies_are_joined_into_one_message(telegram, telegram_api) -> None:
    replies = [Reply(text="one", quick_replies=[Choice("Menu", "m")]),
               Reply(text="two", quick_replies=[Choice("Yes", "ob:y"), Choice("Menu", "m")])]
    await telegram.push([CHAT], replies, retry_key="k8")
    (message,) = telegram_api.messages_to(CHAT)
    assert message["text"] == "one\n\ntwo"
    assert [b["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for b in row] == ["m", "ob:y"]


async def test_polling_hands_every_update_to_ingest(telegram, telegram_api) -> None:
    queued = [telegram_api.queue_update(telegram_text_update(7001, f"q{i}")) for i in range(3)]
    seen: list[dict] = []
    stop = asyncio.Event()

    async def ingest(update: dict) -> None:
        seen.append(update)
        if len(seen) == len(queued):
            stop.set()

    await asyncio.wait_for(telegram.poll(ingest, stop, timeout=1), timeout=30)
    assert [u["update_id"] for u in seen] == [u["update_id"] for u in queued]
    assert seen[0]["message"]["text"] == "q0"
    assert telegram_api.calls_of("deleteWebhook")


async def test_get_file_downloads_the_bytes(telegram, telegram_api) -> None:
    telegram_api.add_file("F9", b"%PDF-1.7", "documents/f9.pdf")
    assert await telegram.get_file("F9") == b"%PDF-1.7"


async def test_cli_webhook_set_registers_the_secret_and_info_reports_it(telegram_api) -> None:
    from bot.cli.telegram import manage_webhook
    from bot.settings import Settings

    settings = Settings(_env_file=None, telegram_bot_token=telegram_api.token, telegram_webhook_secret="s3cret-x",
                        telegram_api_base_url=telegram_api.base_url, public_base_url="https://kurashi.example.org")
    info = await manage_webhook(settings, "set")
    assert info["url"] == "https://kurashi.example.org/webhooks/telegram"
    assert telegram_api.webhook["secret_token"] == "s3cret-x"
    assert (await manage_webhook(settings, "delete"))["url"] == ""
    with pytest.raises(ValueError):
        await manage_webhook(settings, "set", "http://insecure.example.org/webhooks/telegram")


async def test_a_reading_in_brackets_is_shown_once_per_message(telegram, telegram_api) -> None:
    text = "ねんきん（年金）を はらいます。ねんきん（年金）の てがみ。"
    await telegram.push([CHAT], [Reply(text=text)], retry_key="k-ruby")
    assert telegram_api.texts_to(CHAT) == ["ねんきん（年金）を はらいます。ねんきんの てがみ。"]
