"""The engine on the project's real knowledge base and matcher, in every core language."""
from __future__ import annotations

import pytest

from bot.conversation.engine import FIRST_LANGUAGE_CONFIDENCE, ConversationEngine
from delivery.messages import Channel, IncomingMessage, Kind
from intents.matcher import Matcher
from knowledge.loader import load_knowledge
from knowledge.render import render_answer
from knowledge.schema import CORE_LANGUAGES

INTENTS = ("garbage.bulky", "medical.emergency", "work.labor_trouble", "procedure.move_in")


@pytest.fixture(scope="module")
def real():
    kb = load_knowledge()
    return kb, Matcher.from_knowledge(kb)


def first_answered_sample(kb, matcher, intent_id: str, lang: str) -> str:
    """A sample question of the intent that the matcher answers with it, in that language."""
    for sample in kb.intents[intent_id].samples[lang]:
        m = matcher.match(sample)
        if (m.decision == "answer" and m.intent == intent_id and m.language == lang
                and m.language_confidence >= FIRST_LANGUAGE_CONFIDENCE):
            return sample
    raise AssertionError(f"no {lang} sample of {intent_id} is answered with it by the matcher")


@pytest.mark.parametrize("lang", CORE_LANGUAGES)
async def test_first_question_in_each_language_gets_the_answer_in_it(real, sqlite_url, lang):
    from bot.db.session import create_engine_and_sessionmaker

    kb, matcher = real
    db, sessionmaker = create_engine_and_sessionmaker(sqlite_url)
    engine = ConversationEngine(kb, matcher, sessionmaker)
    try:
        for n, intent_id in enumerate(INTENTS):
            text = first_answered_sample(kb, matcher, intent_id, lang)
            replies = await engine.handle(IncomingMessage(Channel.LINE, f"U{lang}{n}", Kind.TEXT, text=text))
            assert replies[0].text == kb.messages["welcome.first"][lang], (intent_id, text)
            answer = replies[1].text
            assert render_answer(kb, intent_id, lang) in answer, (intent_id, text)
            if kb.intents[intent_id].urgent:
                assert answer.startswith(kb.messages["urgent.numbers"][lang])
            if kb.intents[intent_id].escalates:
                assert any(c.data.startswith("c") for c in replies[1].quick_replies)
    finally:
        await db.dispose()


# --------------------------------------------------------------------------- Han-only text
async def _han_session(real, sqlite_url, user_id: str, first: str, hint: str | None = None):
    from bot.db.session import create_engine_and_sessionmaker

    kb, matcher = real
    db, sessionmaker = create_engine_and_sessionmaker(sqlite_url)
    engine = ConversationEngine(kb, matcher, sessionmaker)

    async def say(text: str, kind: Kind = Kind.TEXT, **fields):
        return await engine.handle(IncomingMessage(Channel.WEB, user_id, kind, text=text, **fields))

    if first:
        await say(first)
    else:
        await engine.handle(IncomingMessage(Channel.WEB, user_id, Kind.FOLLOW, language_hint=hint))
    return db, say


async def test_kanji_only_question_of_a_japanese_user_is_answered_in_japanese(real, sqlite_url):
    kb, _ = real
    db, say = await _han_session(real, sqlite_url, "web-ja", "こんにちは")
    try:
        replies = await say("地震")
        texts = "\n".join(r.text for r in replies)
        assert render_answer(kb, "disaster.earthquake", "ja") in texts
        assert render_answer(kb, "disaster.earthquake", "zh") not in texts
        assert not any(c.data.startswith("l:") for r in replies for c in r.quick_replies)
    finally:
        await db.dispose()


@pytest.mark.parametrize("lang", ["en", "vi", "ko"])
async def test_kanji_term_from_another_language_user_gets_their_language_and_no_switch(real, sqlite_url, lang):
    kb, _ = real
    db, say = await _han_session(real, sqlite_url, f"web-{lang}", "", hint=lang)
    try:
        replies = await say("地震")
        texts = "\n".join(r.text for r in replies)
        assert render_answer(kb, "disaster.earthquake", lang) in texts
        assert not any(c.data.startswith("l:") for r in replies for c in r.quick_replies)
        assert kb.messages["lang.switch_offer"]["zh"].split("{")[0] not in texts
    finally:
        await db.dispose()


async def test_kanji_only_first_message_without_a_stored_language_is_chinese(real, sqlite_url):
    kb, _ = real
    db, say = await _han_session(real, sqlite_url, "web-new", "")
    try:
        replies = await say("地震")
        assert render_answer(kb, "disaster.earthquake", "zh") in "\n".join(r.text for r in replies)
    finally:
        await db.dispose()


async def test_clearly_chinese_text_still_offers_a_switch_to_a_japanese_user(real, sqlite_url):
    db, say = await _han_session(real, sqlite_url, "web-ja2", "こんにちは")
    try:
        replies = await say("医院在哪里")
        assert any(c.data == "l:zh" for r in replies for c in r.quick_replies)
    finally:
        await db.dispose()
