"""POST /webhooks/telegram end to end: the secret header, the real app and engine,
python-telegram-bot answering to the fake Bot API (every call checked against the spec)."""
from __future__ import annotations

import asyncio

import pytest

from tests.fakes.webhooks import (
    load_telegram_sample,
    telegram_edited_update,
    telegram_my_chat_member_update,
    telegram_photo_update,
    telegram_sticker_update,
    telegram_text_update,
)

SAMPLE_CHAT = 111111111
CHAT = 424242


def _sample(name: str) -> dict:
    try:
        return load_telegram_sample(name)
    except FileNotFoundError:
        pytest.skip("../shared/reference/samples/telegram is absent")


async def test_sample_text_is_answered(kurashi) -> None:
    response = await kurashi.post_telegram(_sample("message-text.json"))
    await kurashi.settle()
    assert response.status_code == 200
    assert kurashi.telegram_api.texts_to(SAMPLE_CHAT)
    assert [e.status for e in await kurashi.stored_events("telegram")] == ["done"]


@pytest.mark.parametrize("secret, status", [(None, 401), ("wrong-secret", 403), ("", 401)])
async def test_missing_or_wrong_secret_is_refused_and_nothing_stored(kurashi, secret, status) -> None:
    response = await kurashi.post_telegram(telegram_text_update(CHAT, "hi"), secret=secret)
    assert response.status_code == status
    assert await kurashi.count_events() == 0
    assert kurashi.telegram_api.calls_of("sendMessage") == []


@pytest.mark.parametrize("raw", [b"{oops", b"[]", b'{"message": {}}', b'{"update_id": "12"}', b"\xff"])
async def test_malformed_body_with_the_right_secret_is_400(kurashi, raw) -> None:
    response = await kurashi.post_telegram(None, raw=raw)
    assert response.status_code == 400
    assert await kurashi.count_events() == 0


async def test_start_greets_in_the_clients_language(kurashi) -> None:
    update = _sample("message-command-start.json")
    await kurashi.post_telegram(update)
    await kurashi.settle()
    chat = update["message"]["chat"]["id"]
    assert kurashi.telegram_api.texts_to(chat)
    user = await kurashi.user("telegram", str(chat))
    assert user is not None and user.language == update["message"]["from"]["language_code"]


async def test_start_in_vietnamese_sets_vietnamese(kurashi) -> None:
    await kurashi.post_telegram(telegram_text_update(CHAT, "/start", language_code="vi"))
    await kurashi.settle()
    assert (await kurashi.user("telegram", str(CHAT))).language == "vi"


async def test_callback_query_is_answered_and_handled(kurashi) -> None:
    update = _sample("callback-query.json")
    await kurashi.post_telegram(update)
    await kurashi.settle()
    answered = kurashi.telegram_api.calls_of("answerCallbackQuery")
    assert [c.params["callback_query_id"] for c in answered] == [update["callback_query"]["id"]]
    assert kurashi.telegram_api.texts_to(SAMPLE_CHAT)


async def test_blocking_the_bot_marks_the_user_and_sends_nothing(kurashi) -> None:
    await kurashi.post_telegram(telegram_text_update(SAMPLE_CHAT, "hello"))
    await kurashi.settle()
    sent_before = len(kurashi.telegram_api.sent)
    await kurashi.post_telegram(_sample("my-chat-member-blocked.json"))
    await kurashi.settle()
    assert len(kurashi.telegram_api.sent) == sent_before
    assert (await kurashi.user("telegram", str(SAMPLE_CHAT))).status == "blocked"


async def test_redelivered_update_is_answered_once(kurashi) -> None:
    update = telegram_text_update(CHAT, "garbage")
    await kurashi.post_telegram(update)
    await kurashi.settle()
    first = len(kurashi.telegram_api.sent)
    await kurashi.post_telegram(update)
    await kurashi.settle()
    assert first >= 1 and len(kurashi.telegram_api.sent) == first


async def test_the_same_update_twice_concurrently_is_answered_once(kurashi) -> None:
    update = telegram_text_update(CHAT, "garbage")
    responses = await asyncio.gather(*(kurashi.post_telegram(update) for _ in range(4)))
    await kurashi.settle()
    assert [r.status_code for r in responses] == [200] * 4
    assert len(await kurashi.stored_events("telegram")) == 1
    once = len(kurashi.telegram_api.sent)
    solo = telegram_text_update(CHAT + 1, "garbage")
    await kurashi.post_telegram(solo)
    await kurashi.settle()
    assert once == len(kurashi.telegram_api.sent) - once


@pytest.mark.parametrize("text", ["🙏😀", "x" * 10_000, "   "])
async def test_awkward_texts_get_an_answer(kurashi, text) -> None:
    await kurashi.post_telegram(telegram_text_update(CHAT, text))
    await kurashi.settle()
    assert kurashi.telegram_api.texts_to(CHAT)


@pytest.mark.parametrize("make", [telegram_sticker_update, telegram_photo_update, telegram_edited_update])
async def test_stickers_photos_and_edits_get_a_polite_answer(kurashi, make) -> None:
    update = make(CHAT, "edited") if make is telegram_edited_update else make(CHAT)
    response = await kurashi.post_telegram(update)
    await kurashi.settle()
    assert response.status_code == 200
    assert kurashi.telegram_api.texts_to(CHAT)


async def test_added_to_a_group_declines_politely(kurashi) -> None:
    update = telegram_my_chat_member_update(-100777, blocked=False)
    update["my_chat_member"]["chat"] = {"id": -100777, "type": "group", "title": "Friends"}
    await kurashi.post_telegram(update)
    await kurashi.settle()
    assert kurashi.telegram_api.texts_to(-100777)
    assert await kurashi.user("telegram", "-100777") is None


async def test_forbidden_on_reply_marks_the_user_blocked(kurashi) -> None:
    await kurashi.post_telegram(telegram_text_update(CHAT, "hello"))
    await kurashi.settle()
    kurashi.telegram_api.block(CHAT)
    await kurashi.post_telegram(telegram_text_update(CHAT, "hello again"))
    await kurashi.settle()
    assert (await kurashi.user("telegram", str(CHAT))).status == "blocked"


async def test_flood_control_on_reply_is_delivered_later_by_the_outbox(kurashi) -> None:
    kurashi.telegram_api.fail_next("sendMessage", 429, retry_after=1)
    await kurashi.post_telegram(telegram_text_update(CHAT, "hello"))
    await kurashi.settle()
    assert await kurashi.telegram_api.wait_for_messages(CHAT, 1, timeout=20)


async def test_polling_mode_answers_updates_without_a_webhook(sqlite_url, line_api, telegram_api) -> None:
    from bot.app import create_app
    from tests.channels.conftest import kurashi_settings

    app = create_app(kurashi_settings(sqlite_url, line_api, telegram_api), telegram_polling=True)
    telegram_api.queue_update(telegram_text_update(CHAT, "/start", language_code="ko"))
    async with app.router.lifespan_context(app):
        assert await telegram_api.wait_for_messages(CHAT, 1, timeout=30)
    assert telegram_api.calls_of("deleteWebhook")
    assert telegram_api.calls_of("getUpdates")


async def test_metrics_count_webhook_outcomes(kurashi) -> None:
    await kurashi.post_telegram(telegram_text_update(CHAT, "hi"), secret="wrong")
    metrics = (await kurashi.client.get("/metrics")).text
    assert 'kurashi_webhook_events_total{channel="telegram",outcome="rejected"}' in metrics


async def test_first_contact_arrives_as_one_message(kurashi) -> None:
    """Welcome, answer and onboarding offer of a first contact: one sendMessage, every button under it."""
    await kurashi.post_telegram(telegram_text_update(CHAT, "how do I sort my garbage", language_code="en"))
    await kurashi.settle()
    (message,) = kurashi.telegram_api.messages_to(CHAT)
    data = [b["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for b in row]
    assert any(d.startswith(("i:", "mo:")) for d in data), data     # the answer's buttons
    assert any(d.startswith(("ob", "s:")) for d in data), data     # the onboarding offer's
    assert len(data) == len(set(data))                                             # no button twice


async def test_flood_control_half_way_sends_only_the_rest_later(kurashi) -> None:
    """Replies too long for one message go as several; flood control on the second part
    leaves exactly the undelivered replies for the outbox."""
    from delivery.messages import Reply
    from delivery.senders import RetryLater

    telegram = kurashi.services.channels["telegram"]
    replies = [Reply("a" * 4000), Reply("b" * 300), Reply("c" * 50)]
    assert [len(g) for g in telegram.groups(replies)] == [1, 2]
    kurashi.telegram_api.fail_next("sendMessage", 429, retry_after=1, skip=1)
    sent = 0

    def progress(n: int) -> None:
        nonlocal sent
        sent = n

    with pytest.raises(RetryLater):
        await telegram.reply(str(CHAT), replies, progress=progress)
    assert sent == 1 and kurashi.telegram_api.texts_to(CHAT) == ["a" * 4000]
    rest = telegram.unsent(replies, sent)
    assert [r.text for r in rest] == ["b" * 300, "c" * 50]
    await telegram.reply(str(CHAT), rest)
    assert kurashi.telegram_api.texts_to(CHAT) == ["a" * 4000, "b" * 300 + "\n\n" + "c" * 50]


async def test_direct_replies_do_not_wait_for_the_broadcast_budget(kurashi) -> None:
    """The outbox's Telegram budget is spent (a large alert going out, or paused after a 429
    on a push): an answer to the resident's own message still goes at once."""
    kurashi.services.relay.limiter.pause("telegram", 60)
    started = asyncio.get_running_loop().time()
    await kurashi.post_telegram(telegram_text_update(CHAT, "hello"))
    assert await kurashi.telegram_api.wait_for_messages(CHAT, 1, timeout=10)
    assert asyncio.get_running_loop().time() - started < 5
