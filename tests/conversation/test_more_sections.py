"""Long answers on a phone: an answer split with "---" lines shows its first section and a
"More" button; each press shows the next section; the last one carries the answer's own
buttons (consult, 👍/👎, menu). Same neutral Reply buttons on LINE, Telegram and the web."""
from __future__ import annotations

import dataclasses

import pytest

from bot.conversation.engine import ConversationEngine
from delivery.messages import Channel, IncomingMessage, Kind
from knowledge.render import render_answer

SECTIONS = {
    "en": "Unpaid wages: write down your hours.\n---\nAsk your employer in writing.\n---\nStill unpaid? Call 119 only in danger; "
          "otherwise {{yfrcc.name}}.",
    "ja": "きゅうりょう（給料）が ない ときは、じかんを かいて ください。\n---\nかいしゃに かいて ききます。",
}


@pytest.fixture
def long_engine(kb, matcher, sessionmaker) -> ConversationEngine:
    intent = kb.intents["work.labor_trouble"]
    answers = {**intent.answers, **SECTIONS}
    intents = {**kb.intents, "work.labor_trouble": intent.model_copy(update={"answers": answers})}
    return ConversationEngine(dataclasses.replace(kb, intents=intents), matcher, sessionmaker)


async def _press(engine: ConversationEngine, data: str, user: str = "U-more"):
    return await engine.handle(IncomingMessage(Channel.TELEGRAM, user, Kind.POSTBACK, data=data,
                                               language_hint="en"))


async def test_a_long_answer_comes_in_sections_behind_a_more_button(long_engine) -> None:
    [first] = await _press(long_engine, "i:work.labor_trouble")
    assert first.text.startswith("Unpaid wages: write down your hours.")
    assert "Ask your employer" not in first.text and "---" not in first.text
    assert "In Japanese:" in first.text                                   # the official term stays with part 1
    labels = {c.data: c.label for c in first.quick_replies}
    assert first.quick_replies[0].data == "mo:work.labor_trouble:1" and "More" in labels["mo:work.labor_trouble:1"]
    assert "c:work" in labels                                             # the consultation is offered at once

    [second] = await _press(long_engine, "mo:work.labor_trouble:1")
    assert second.text == "Ask your employer in writing."
    assert [c.data for c in second.quick_replies] == ["mo:work.labor_trouble:2", "m"]

    [last] = await _press(long_engine, "mo:work.labor_trouble:2")
    assert last.text.startswith("Still unpaid?") and "Yamaguchi Foreign Residents" in last.text
    data = [c.data for c in last.quick_replies]
    assert not any(d.startswith("mo:") for d in data)
    assert "c:work" in data and "fb:+:work.labor_trouble" in data and data[-1] == "m"


async def test_more_in_easy_japanese_and_stale_or_forged_payloads(long_engine) -> None:
    user = "U-more-ja"
    await _press(long_engine, "l:ja", user)
    [first] = await _press(long_engine, "i:work.labor_trouble", user)
    assert first.quick_replies[0].label == long_engine.kb.messages["answer.more"]["ja"]
    [again] = await _press(long_engine, "mo:work.labor_trouble:9", user)        # past the end: the last section
    assert again.text == "かいしゃに かいて ききます。"
    [menu] = await _press(long_engine, "mo:no.such_intent:1", user)
    assert menu.quick_replies and all(not c.data.startswith("mo:") for c in menu.quick_replies)


async def test_a_short_answer_has_no_more_button_and_the_full_text_renders_without_markers(long_engine) -> None:
    [reply] = await _press(long_engine, "i:garbage.bulky", "U-short")
    assert not any(c.data.startswith("mo:") for c in reply.quick_replies)
    full = render_answer(long_engine.kb, "work.labor_trouble", "en")
    assert "---" not in full and "Ask your employer" in full and "Still unpaid?" in full
