"""LineChannel against the fake LINE API: rendering within LINE's limits (validated by the
fake against messaging-api.yml), push/multicast with retry keys, and error translation."""
from __future__ import annotations

import uuid

import pytest

from bot.channels.line import LineChannel, ReplyTokenUnusable
from delivery.messages import Card, Choice, Reply
from delivery.senders import PermanentFailure, RetryLater

USER = "U" + "b" * 32
OTHERS = ["U" + c * 32 for c in "cde"]


@pytest.fixture
async def line(line_api):
    channel = LineChannel(channel_secret=line_api.channel_secret, access_token=line_api.access_token,
                          api_base_url=line_api.base_url)
    await channel.start()
    yield channel
    await channel.close()


def test_signature_matches_the_sdk_test_vector() -> None:
    channel = LineChannel(channel_secret="channel_secret", access_token="t")
    assert channel.verify(b"bodybodybodybody", "/gg9a+LvFevTH1sd7XCQycD7tsWclCsInj7MhBHxN7k=")
    assert not channel.verify(b"bodybodybodybody!", "/gg9a+LvFevTH1sd7XCQycD7tsWclCsInj7MhBHxN7k=")
    assert not channel.verify(b"bodybodybodybody", None)


async def test_push_to_one_uses_push_with_the_retry_key(line, line_api) -> None:
    key = str(uuid.uuid4())
    await line.push([USER], [Reply(text="hello")], retry_key=key)
    (request,) = line_api.requests_to("/v2/bot/message/push")
    assert request.headers["X-Line-Retry-Key"] == key
    assert line_api.texts_for(USER) == ["hello"]


async def test_push_to_many_uses_multicast(line, line_api) -> None:
    await line.push(OTHERS, [Reply(text="alert")], retry_key=str(uuid.uuid4()))
    assert len(line_api.requests_to("/v2/bot/message/multicast")) == 1
    assert all(line_api.texts_for(u) == ["alert"] for u in OTHERS)


@pytest.mark.parametrize("status, error", [(429, RetryLater), (500, RetryLater), (400, PermanentFailure),
                                           (403, PermanentFailure)])
async def test_push_errors_are_translated(line, line_api, status, error) -> None:
    line_api.fail_next("push", status, retry_after=7 if status == 429 else None)
    with pytest.raises(error) as caught:
        await line.push([USER], [Reply(text="x")], retry_key=str(uuid.uuid4()))
    if status == 429:
        assert caught.value.retry_after == 7.0
    assert line_api.texts_for(USER) == []


@pytest.mark.parametrize("status, error", [(429, RetryLater), (503, RetryLater), (400, PermanentFailure)])
async def test_multicast_errors_are_translated(line, line_api, status, error) -> None:
    line_api.fail_next("multicast", status, retry_after=3 if status == 429 else None)
    with pytest.raises(error) as caught:
        await line.push(OTHERS, [Reply(text="x")], retry_key=str(uuid.uuid4()))
    assert getattr(caught.value, "retry_after", None) == (3.0 if status == 429 else None)
    assert all(line_api.texts_for(u) == [] for u in OTHERS)


async def test_an_accepted_multicast_retry_key_is_success_without_a_second_delivery(line, line_api) -> None:
    key = str(uuid.uuid4())
    line_api.fail_next("multicast", 500, deliver=True)
    with pytest.raises(RetryLater):
        await line.push(OTHERS, [Reply(text="once")], retry_key=key)
    await line.push(OTHERS, [Reply(text="once")], retry_key=key)   # 409 → success
    assert [r.status for r in line_api.requests_to("/v2/bot/message/multicast")] == [500, 409]
    assert all(line_api.texts_for(u) == ["once"] for u in OTHERS)


async def test_push_to_an_unreachable_line_is_retry_later() -> None:
    from tests.fakes.line_api import FakeLineAPI

    async with FakeLineAPI() as gone:
        base_url = gone.base_url          # the port is closed once the fake stops
    channel = LineChannel(channel_secret="s", access_token="t", api_base_url=base_url)
    try:
        with pytest.raises(RetryLater, match="unreachable"):
            await channel.push([USER], [Reply(text="x")], retry_key=str(uuid.uuid4()))
    finally:
        await channel.close()


async def test_retry_after_an_accepted_but_failed_push_is_not_delivered_twice(line, line_api) -> None:
    key = str(uuid.uuid4())
    line_api.fail_next("push", 500, deliver=True)
    with pytest.raises(RetryLater):
        await line.push([USER], [Reply(text="once")], retry_key=key)
    await line.push([USER], [Reply(text="once")], retry_key=key)   # 409 → success
    assert line_api.texts_for(USER) == ["once"]


async def test_more_than_five_messages_go_in_batches_and_retries_skip_sent_batches(line, line_api) -> None:
    replies = [Reply(text=f"part {i}") for i in range(7)]
    key = str(uuid.uuid4())
    line_api.fail_next("push", 500)                       # attempt 1: the first batch fails
    with pytest.raises(RetryLater):
        await line.push([USER], replies, retry_key=key)
    line_api.fail_next("push", 500, skip=1, deliver=True)  # attempt 2: batch 2 accepted, answer lost
    with pytest.raises(RetryLater):
        await line.push([USER], replies, retry_key=key)
    await line.push([USER], replies, retry_key=key)        # attempt 3: both batches answer 409
    assert line_api.texts_for(USER) == [f"part {i}" for i in range(7)]
    assert [len(d.messages) for d in line_api.deliveries] == [5, 2]
    assert [r.status for r in line_api.requests_to("/v2/bot/message/push")] == [500, 200, 500, 409, 409]


async def test_long_text_many_choices_and_long_labels_stay_within_limits(line, line_api) -> None:
    text = ("Garbage is sorted into burnable, non-burnable and recyclables. " * 200)[:12_000]
    choices = [Choice(label=f"A rather long label number {i}", data=f"intent:topic.{i}") for i in range(20)]
    await line.push([USER], [Reply(text=text, quick_replies=choices[:13], buttons=choices[13:])],
                    retry_key=str(uuid.uuid4()))
    messages = line_api.messages_for(USER)
    assert [m["type"] for m in messages] == ["text", "text", "text", "flex"]
    assert "".join(m["text"] for m in messages[:3]).replace(" ", "") == text.replace(" ", "")
    items = messages[-1]["quickReply"]["items"]
    assert len(items) == 13 and all(len(i["action"]["label"]) <= 20 for i in items)
    assert line_api.violations == []


async def test_card_becomes_a_valid_flex_bubble(line, line_api) -> None:
    card = Card(title="City Hall", text="Open on weekdays", url="https://www.city.yamaguchi.lg.jp/",
                image_url="https://example.org/x.jpg")
    await line.push([USER], [Reply(text="See:", card=card)], retry_key=str(uuid.uuid4()))
    flex = line_api.messages_for(USER)[1]
    assert flex["type"] == "flex" and flex["contents"]["type"] == "bubble"
    assert flex["contents"]["action"]["uri"] == card.url
    assert line_api.violations == []


async def test_reply_sends_whole_replies_that_fit_and_returns_the_rest(line, line_api) -> None:
    token = line_api.issue_reply_token(USER)
    replies = [Reply(text=f"m{i}") for i in range(4)] + [Reply(text="a" * 9000)]   # the last one is 2 messages
    rest = await line.reply(token, USER, replies)
    assert rest == replies[4:]
    assert line_api.texts_for(USER) == ["m0", "m1", "m2", "m3"]
    assert line_api.requests_to("/v2/bot/message/push") == []


async def test_one_reply_longer_than_five_messages_is_completed_by_push(line, line_api) -> None:
    token = line_api.issue_reply_token(USER)
    rest = await line.reply(token, USER, [Reply(text="word " * 6000)])     # 30,000 characters: 6 messages
    assert rest == []
    assert len(line_api.requests_to("/v2/bot/message/reply")) == 1
    assert len(line_api.requests_to("/v2/bot/message/push")) == 1
    assert len(line_api.messages_for(USER)) == 6


async def test_used_reply_token_raises_reply_token_unusable(line, line_api) -> None:
    token = line_api.issue_reply_token(USER)
    await line.reply(token, USER, [Reply(text="first")])
    with pytest.raises(ReplyTokenUnusable):
        await line.reply(token, USER, [Reply(text="second")])


async def test_get_content_returns_the_bytes(line, line_api) -> None:
    line_api.set_content("9001", b"\x89PNG...", "image/png")
    assert await line.get_content("9001") == b"\x89PNG..."


async def test_a_reading_in_brackets_is_shown_once_per_message(line, line_api) -> None:
    text = "ざいりゅうカード（在留カード）を みせます。ざいりゅうカード（在留カード）を なくしたら…"
    await line.push([USER], [Reply(text=text)], retry_key=str(uuid.uuid4()))
    assert line_api.texts_for(USER) == ["ざいりゅうカード（在留カード）を みせます。ざいりゅうカードを なくしたら…"]
