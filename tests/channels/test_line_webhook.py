"""POST /webhooks/line end to end: real signatures, the real app and engine, line-bot-sdk
answering to the fake LINE API (every request validated against messaging-api.yml)."""
from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from bot.db import repo
from bot.db.models import utcnow
from tests.fakes.webhooks import (
    line_body,
    line_follow_event,
    line_join_event,
    line_message_event,
    line_postback_event,
    line_signed,
    line_text_event,
    line_unfollow_event,
    load_line_sample,
    sign_line,
)

SAMPLE_USER = "U206d25c2ea6bd87c17655609a1c37cb8"
SAMPLE_TOKEN = "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA"
USER = "U" + "a" * 32


@pytest.fixture
def sample_text() -> bytes:
    try:
        return load_line_sample("message-text.json")
    except FileNotFoundError:
        pytest.skip("../shared/reference/samples/line is absent")


async def test_sample_text_is_answered_with_the_reply_token(kurashi, sample_text) -> None:
    kurashi.line_api.bind_reply_token(SAMPLE_TOKEN, SAMPLE_USER)
    response = await kurashi.post_line(sample_text)
    await kurashi.settle()
    assert response.status_code == 200
    replies = kurashi.line_api.replies_to_token(SAMPLE_TOKEN)
    assert replies and all(m["type"] in ("text", "flex") for m in replies)
    assert kurashi.line_api.requests_to("/v2/bot/message/push") == []
    assert [e.status for e in await kurashi.stored_events()] == ["done"]


@pytest.mark.parametrize("headers, status", [
    ({"Content-Type": "application/json"}, 400),                                     # missing
    ({"Content-Type": "application/json", "X-Line-Signature": "AAAA"}, 401),           # forged
    ({"Content-Type": "application/json",
      "X-Line-Signature": sign_line(b"other body", "test-line-channel-secret")}, 401),  # replayed from another body
])
async def test_bad_signature_is_refused_and_nothing_is_stored(kurashi, headers, status) -> None:
    body = line_body(line_text_event(USER, "hello"))
    response = await kurashi.post_line(body, headers=headers)
    await kurashi.settle()
    assert response.status_code == status
    assert await kurashi.count_events() == 0
    assert kurashi.line_api.requests == []


async def test_signature_with_the_wrong_secret_is_refused(kurashi) -> None:
    body = line_body(line_text_event(USER, "hello"))
    response = await kurashi.post_line(body, headers=line_signed(body, "not-the-channel-secret"))
    assert response.status_code == 401
    assert await kurashi.count_events() == 0


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'{"destination": "x"}', b'{"events": [1]}', b"\xff\xfe"])
async def test_malformed_body_with_a_valid_signature_is_400(kurashi, raw) -> None:
    response = await kurashi.post_line(raw)
    assert response.status_code == 400
    assert await kurashi.count_events() == 0


async def test_empty_events_list_is_the_console_verify_call(kurashi) -> None:
    response = await kurashi.post_line(line_body())
    assert response.status_code == 200
    assert await kurashi.count_events() == 0


@pytest.mark.parametrize("text", ["", "🙏😀🎌", "あ" * 10_000, "ok " * 3_334])
async def test_awkward_texts_get_an_answer(kurashi, text) -> None:
    token = kurashi.line_api.issue_reply_token(USER)
    response = await kurashi.post_line(line_body(line_text_event(USER, text, reply_token=token)))
    await kurashi.settle()
    assert response.status_code == 200
    assert kurashi.line_api.replies_to_token(token)


async def test_unknown_event_type_is_stored_and_ignored(kurashi) -> None:
    event = line_text_event(USER, "x")
    event["type"] = "somethingNew"
    response = await kurashi.post_line(line_body(event))
    await kurashi.settle()
    assert response.status_code == 200
    assert [e.status for e in await kurashi.stored_events()] == ["done"]
    assert kurashi.line_api.requests == []


async def test_redelivery_is_not_answered_twice(kurashi, sample_text) -> None:
    kurashi.line_api.bind_reply_token(SAMPLE_TOKEN, SAMPLE_USER)
    first = await kurashi.post_line(sample_text)
    await kurashi.settle()
    again = await kurashi.post_line(load_line_sample("message-text-redelivery.json"))
    await kurashi.settle()
    assert (first.status_code, again.status_code) == (200, 200)
    assert len(kurashi.line_api.requests_to("/v2/bot/message/reply")) == 1
    assert len(await kurashi.stored_events()) == 1


async def test_the_same_event_twice_concurrently_is_answered_once(kurashi) -> None:
    token = kurashi.line_api.issue_reply_token(USER)
    body = line_body(line_text_event(USER, "garbage day", reply_token=token))
    responses = await asyncio.gather(*(kurashi.post_line(body) for _ in range(4)))
    await kurashi.settle()
    assert [r.status_code for r in responses] == [200] * 4
    assert len(kurashi.line_api.requests_to("/v2/bot/message/reply")) == 1


@pytest.mark.parametrize("message", [
    {"type": "sticker", "packageId": "446", "stickerId": "1988", "stickerResourceType": "STATIC"},
    {"type": "image", "contentProvider": {"type": "line"}},
    {"type": "video", "duration": 1000, "contentProvider": {"type": "line"}},
    {"type": "audio", "duration": 1000, "contentProvider": {"type": "line"}},
    {"type": "file", "fileName": "a.pdf", "fileSize": 10},
])
async def test_media_messages_get_a_polite_answer(kurashi, message) -> None:
    token = kurashi.line_api.issue_reply_token(USER)
    await kurashi.post_line(line_body(line_message_event(USER, message, reply_token=token)))
    await kurashi.settle()
    assert kurashi.line_api.replies_to_token(token)


@pytest.mark.parametrize("name", ["message-sticker.json", "message-image.json", "message-location.json",
                                  "postback.json"])
async def test_reference_samples_are_answered(kurashi, sample_text, name) -> None:
    body = load_line_sample(name)
    token = json.loads(body)["events"][0]["replyToken"]
    kurashi.line_api.bind_reply_token(token, SAMPLE_USER)
    response = await kurashi.post_line(body)
    await kurashi.settle()
    assert response.status_code == 200
    assert kurashi.line_api.replies_to_token(token)


async def test_group_join_is_declined_and_group_chatter_ignored(kurashi) -> None:
    join_token = kurashi.line_api.issue_reply_token("Cgroup")
    chatter = line_text_event(USER, "hello all", group_id="C" + "1" * 32)
    await kurashi.post_line(line_body(line_join_event("C" + "1" * 32, reply_token=join_token), chatter))
    await kurashi.settle()
    assert kurashi.line_api.replies_to_token(join_token)
    assert len(kurashi.line_api.requests_to("/v2/bot/message/reply")) == 1
    assert await kurashi.user("line", USER) is None


async def test_follow_fetches_the_profile_language_and_greets(kurashi) -> None:
    kurashi.line_api.set_profile(USER, display_name="Lan", language="vi")
    token = kurashi.line_api.issue_reply_token(USER)
    await kurashi.post_line(line_body(line_follow_event(USER, reply_token=token)))
    await kurashi.settle()
    assert kurashi.line_api.requests_to(f"/v2/bot/profile/{USER}")
    assert kurashi.line_api.replies_to_token(token)
    user = await kurashi.user("line", USER)
    assert user is not None and user.language == "vi"


async def test_unfollow_sends_nothing_and_marks_the_user(kurashi) -> None:
    await kurashi.post_line(line_body(line_text_event(USER, "hello")))
    await kurashi.settle()
    requests_before = len(kurashi.line_api.requests)
    await kurashi.post_line(line_body(line_unfollow_event(USER)))
    await kurashi.settle()
    assert len(kurashi.line_api.requests) == requests_before
    assert (await kurashi.user("line", USER)).status == "unfollowed"


async def test_postback_is_handled(kurashi) -> None:
    token = kurashi.line_api.issue_reply_token(USER)
    await kurashi.post_line(line_body(line_postback_event(USER, "menu", reply_token=token)))
    await kurashi.settle()
    assert kurashi.line_api.replies_to_token(token)


async def test_expired_reply_token_falls_back_to_a_push_with_a_retry_key(kurashi) -> None:
    token = kurashi.line_api.issue_reply_token(USER)
    kurashi.line_api.expire_reply_token(token)
    await kurashi.post_line(line_body(line_text_event(USER, "hello", reply_token=token)))
    await kurashi.settle()
    messages = await kurashi.line_api.wait_for_messages(USER, 1)
    pushes = kurashi.line_api.requests_to("/v2/bot/message/push")
    assert messages and pushes
    assert all(p.headers.get("X-Line-Retry-Key") for p in pushes)


async def test_reply_failing_with_500_is_pushed_later(kurashi) -> None:
    kurashi.line_api.fail_next("reply", 500)
    token = kurashi.line_api.issue_reply_token(USER)
    await kurashi.post_line(line_body(line_text_event(USER, "hello", reply_token=token)))
    await kurashi.settle()
    assert await kurashi.line_api.wait_for_messages(USER, 1)


async def test_event_left_pending_by_a_crash_is_answered_by_push_at_start(sqlite_url, line_api, telegram_api) -> None:
    from bot.app import create_app
    from bot.db.session import create_engine_and_sessionmaker
    from tests.channels.conftest import kurashi_settings

    body = line_body(line_text_event(USER, "hello", reply_token=line_api.issue_reply_token(USER)))
    event = json.loads(body)["events"][0]
    engine, maker = create_engine_and_sessionmaker(sqlite_url)
    async with maker() as session, session.begin():
        await repo.store_inbound_event(session, "line", event["webhookEventId"],
                                       json.dumps({"destination": "x", "events": [event]}),
                                       now=utcnow() - timedelta(minutes=5))
    await engine.dispose()

    app = create_app(kurashi_settings(sqlite_url, line_api, telegram_api))
    async with app.router.lifespan_context(app):
        messages = await line_api.wait_for_messages(USER, 1)
    assert messages
    assert line_api.requests_to("/v2/bot/message/reply") == []


async def test_vietnamese_question_gets_the_vietnamese_knowledge_answer_as_a_reply(kurashi) -> None:
    first_line = kurashi.services.kb.intents["garbage.sorting"].answers["vi"].splitlines()[0]
    token = kurashi.line_api.issue_reply_token(USER)
    await kurashi.post_line(line_body(line_text_event(USER, "phân loại rác như thế nào", reply_token=token)))
    await kurashi.settle()
    texts = [m.get("text", "") for m in kurashi.line_api.replies_to_token(token)]
    assert any(first_line in t for t in texts)
    assert kurashi.line_api.requests_to("/v2/bot/message/push") == []


async def test_text_from_a_group_is_ignored(kurashi, sample_text) -> None:
    body = load_line_sample("message-text-group.json")
    response = await kurashi.post_line(body)
    await kurashi.settle()
    assert response.status_code == 200
    assert kurashi.line_api.requests == []


async def test_oversized_body_is_refused(kurashi) -> None:
    body = line_body(line_text_event(USER, "x" * 1_100_000))
    response = await kurashi.post_line(body)
    assert response.status_code == 413
    assert await kurashi.count_events() == 0


async def test_webhook_fast_path_answers_like_the_router_with_the_security_headers(kurashi, sample_text) -> None:
    """POST /webhooks/line goes past FastAPI's router (bot.web.webhooks.WebhookFastPath) and
    still carries every header the rest of the app has; other methods reach the router."""
    kurashi.line_api.bind_reply_token(SAMPLE_TOKEN, SAMPLE_USER)
    response = await kurashi.post_line(sample_text)
    assert response.status_code == 200 and response.json()["ok"] is True
    assert response.headers.get("x-frame-options") == "DENY"
    assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", "")
    assert (await kurashi.client.get("/webhooks/line")).status_code == 405
    assert (await kurashi.client.get("/webhooks/telegram")).status_code == 405
    await kurashi.settle()
    assert kurashi.line_api.replies_to_token(SAMPLE_TOKEN)
