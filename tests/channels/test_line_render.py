"""LineChannel.render: plain JSON-ready dicts in the Messaging API's own shape, exactly what
line-bot-sdk's models serialise to (the SDK reads each message back and writes it out
unchanged), and split_for_reply agreeing with rendering every prefix."""
from __future__ import annotations

import json
import random
from typing import Any

import pytest
from linebot.v3.messaging import FlexMessage, Message, TextMessage

from bot.channels.line import MAX_MESSAGES_PER_CALL, LineChannel
from delivery.messages import Card, Choice, Reply


def _choices(n: int, prefix: str = "Topic") -> list[Choice]:
    return [Choice(label=f"{prefix} {i}", data=f"intent:topic.{i}") for i in range(n)]


CITY_HALL = Card(title="City Hall", text="Open on weekdays", url="https://www.city.yamaguchi.lg.jp/",
                 image_url="https://example.org/x.jpg")

CASES: dict[str, list[Reply]] = {
    "text": [Reply(text="Hello! How can I help?")],
    "quick replies": [Reply(text="Which one?", quick_replies=_choices(3))],
    "buttons beyond 13 quick replies": [Reply(text="Pick a topic", quick_replies=_choices(5, "Q"), buttons=_choices(12))],
    "card with image and url": [Reply(text="See:", card=CITY_HALL)],
    "bare card": [Reply(text="", card=Card(title="", text=""))],
    "long text": [Reply(text=("Garbage is sorted into burnable and recyclables. " * 300)[:12_000],
                        quick_replies=_choices(2))],
    "long labels and data": [Reply(text="labels", buttons=[
        Choice(label="A rather long label that goes on 🙂🙂🙂", data="d" * 400),
        Choice(label="ごみの だしかた（出し方）について くわしく", data="intent:garbage.how")])],
    "several replies": [Reply(text="first", buttons=_choices(10)),
                        Reply(text="second", buttons=_choices(5, "B"), quick_replies=_choices(2, "Q")),
                        Reply(text="third", card=CITY_HALL)],
}


def _plain_json(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_json(v) for v in value)
    return value is None or isinstance(value, str | bool | int | float)


@pytest.fixture
def line() -> LineChannel:
    return LineChannel(channel_secret="secret", access_token="token")


@pytest.mark.parametrize("name", list(CASES))
def test_render_gives_plain_dicts_the_sdk_reads_back_unchanged(line, name) -> None:
    messages = line.render(CASES[name])
    assert messages and _plain_json(messages)
    assert json.loads(json.dumps(messages, ensure_ascii=False)) == messages
    for message in messages:
        model = Message.from_dict(message)
        assert isinstance(model, TextMessage | FlexMessage)
        assert model.to_dict() == message      # no unknown key, no missing default, camelCase aliases


def test_a_card_and_overflowing_buttons_in_the_messaging_api_shape(line) -> None:
    choices = _choices(14)
    messages = line.render([Reply(text="See:", card=CITY_HALL, buttons=choices)])
    assert [m["type"] for m in messages] == ["text", "flex", "flex"]
    assert messages[1] == {"type": "flex", "altText": "City Hall\nOpen on weekdays", "contents": {
        "type": "bubble",
        "hero": {"type": "image", "url": "https://example.org/x.jpg", "size": "full", "aspectMode": "cover",
                 "animated": False},
        "body": {"type": "box", "layout": "vertical", "contents": [
            {"type": "text", "text": "City Hall", "size": "md", "weight": "bold", "wrap": True},
            {"type": "text", "text": "Open on weekdays", "size": "sm", "wrap": True, "margin": "md"},
            {"type": "text", "text": CITY_HALL.url, "size": "xs", "color": "#1a73e8", "wrap": True, "margin": "md",
             "action": {"type": "uri", "uri": CITY_HALL.url}}]},
        "action": {"type": "uri", "uri": CITY_HALL.url}}}
    postback = {"type": "postback", "label": "Topic 13", "data": "intent:topic.13", "displayText": "Topic 13"}
    assert messages[2]["altText"] == "See:"
    assert messages[2]["contents"] == {"type": "bubble", "body": {
        "type": "box", "layout": "vertical", "spacing": "sm",
        "contents": [{"type": "button", "action": postback, "style": "link", "height": "sm"}]}}
    items = messages[2]["quickReply"]["items"]
    assert len(items) == 13 and items[0] == {"type": "action", "action": {
        "type": "postback", "label": "Topic 0", "data": "intent:topic.0", "displayText": "Topic 0"}}


def _random_reply(rng: random.Random) -> Reply:
    text = rng.choice(["", "short", "x " * 3000, "y" * 11_000])
    card = Card(title="T", text="t", url=rng.choice([None, "https://e.org/"])) if rng.random() < 0.3 else None
    return Reply(text=text, card=card, quick_replies=_choices(rng.choice([0, 0, 2, 7, 13]), "Q"),
                 buttons=_choices(rng.choice([0, 0, 3, 9, 14])))


def test_split_for_reply_agrees_with_rendering_every_prefix(line) -> None:
    """The split counts each reply's messages once; it must match the definition: the
    longest prefix (at least one reply) whose rendering fits one reply call."""
    rng = random.Random(10)
    for _ in range(300):
        replies = [_random_reply(rng) for _ in range(rng.randint(0, 6))]
        taken = 1 if replies else 0
        while taken < len(replies) and len(line.render(replies[:taken + 1])) <= MAX_MESSAGES_PER_CALL:
            taken += 1
        assert line.split_for_reply(replies) == (replies[:taken], replies[taken:])


def test_readings_are_shown_once_and_text_without_full_width_brackets_is_kept_as_is(line) -> None:
    text = "ゆだ（湯田） と 湯田（ゆだ）"
    assert [m["text"] for m in line.render([Reply(text=text)])] == ["ゆだ（湯田） と ゆだ"]
    plain = "Yuda (湯田) onsen; ゆだ(湯田) with half-width brackets"
    assert [m["text"] for m in line.render([Reply(text=plain)])] == [plain]
