"""The engine on the project's real knowledge base and matcher, in every core language."""
from __future__ import annotations

import pytest

from bot.conversation.engine import FIRST_LANGUAGE_CONFIDENCE, ConversationEngine
from delivery.messages import Channel, IncomingMessage, Kind
from intents.matcher import Matcher
from knowledge.loader import load_knowledge
from knowledge.render import render_sections
from knowledge.schema import CORE_LANGUAGES


def shown(kb, intent_id: str, lang: str) -> str:
    """What the resident reads at once: the answer's first section (the rest is behind "More")."""
    return render_sections(kb, intent_id, lang)[0]

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
            if kb.intents[intent_id].urgent:
                replies = [None, *replies]     # an emergency answer comes first, without the welcome
            else:
                assert replies[0].text == kb.messages["welcome.first"][lang], (intent_id, text)
            answer = replies[1].text
            assert shown(kb, intent_id, lang) in answer, (intent_id, text)
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
        assert shown(kb, "disaster.earthquake", "ja") in texts
        assert shown(kb, "disaster.earthquake", "zh") not in texts
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
        assert shown(kb, "disaster.earthquake", lang) in texts
        assert not any(c.data.startswith("l:") for r in replies for c in r.quick_replies)
        assert kb.messages["lang.switch_offer"]["zh"].split("{")[0] not in texts
    finally:
        await db.dispose()


async def test_kanji_only_first_message_without_a_stored_language_is_chinese(real, sqlite_url):
    kb, _ = real
    db, say = await _han_session(real, sqlite_url, "web-new", "")
    try:
        replies = await say("地震")
        assert shown(kb, "disaster.earthquake", "zh") in "\n".join(r.text for r in replies)
    finally:
        await db.dispose()


async def test_clearly_chinese_text_still_offers_a_switch_to_a_japanese_user(real, sqlite_url):
    db, say = await _han_session(real, sqlite_url, "web-ja2", "こんにちは")
    try:
        replies = await say("医院在哪里")
        assert any(c.data == "l:zh" for r in replies for c in r.quick_replies)
    finally:
        await db.dispose()


# --------------------------------------------------------------------------- crisis, traps, languages
async def _session(real, sqlite_url, user_id: str, hint: str | None):
    from bot.db.session import create_engine_and_sessionmaker

    kb, matcher = real
    db, sessionmaker = create_engine_and_sessionmaker(sqlite_url)
    engine = ConversationEngine(kb, matcher, sessionmaker)

    async def say(text: str):
        return await engine.handle(IncomingMessage(Channel.TELEGRAM, user_id, Kind.TEXT, text=text, language_hint=hint))

    async def unanswered() -> list:
        from sqlalchemy import select

        from bot.db.models import Unanswered

        async with sessionmaker() as s:
            return list((await s.execute(select(Unanswered.text))).scalars())

    return db, say, unanswered


@pytest.mark.parametrize("text, lang", [
    ("I want to kill myself", "en"), ("死にたい", "ja"), ("em muốn chết, không muốn sống nữa", "vi"),
    ("我真的不想活了", "zh"), ("죽고 싶어요", "ko"), ("saya ingin bunuh diri", "id"),
    ("gusto ko nang mamatay", "tl"), ("म आत्महत्या गर्न चाहन्छु", "ne"), ("quero morrer", "pt"),
])
async def test_crisis_is_answered_at_once_in_the_residents_language_and_never_stored(real, sqlite_url, text, lang):
    kb, _ = real
    db, say, unanswered = await _session(real, sqlite_url, f"tg-crisis-{lang}", hint=lang)
    try:
        replies = await say(text)
        assert shown(kb, "emergency.crisis", lang) in replies[0].text
        # the answer opens with its own words ("you are not alone"), not the generic 🚨 banner
        assert replies[0].text.startswith(shown(kb, "emergency.crisis", lang)[:15])
        assert not any(c.data.startswith("fb:") for c in replies[0].quick_replies)   # no "what did you want?"
        assert await unanswered() == []
    finally:
        await db.dispose()


async def test_crisis_from_an_english_session_in_vietnamese_is_answered_in_vietnamese(real, sqlite_url):
    kb, _ = real
    db, say, _ = await _session(real, sqlite_url, "tg-crisis-mixed", hint="en")
    try:
        replies = await say("em muốn chết, không muốn sống nữa")
        assert shown(kb, "emergency.crisis", "vi") in replies[0].text
    finally:
        await db.dispose()


@pytest.mark.parametrize("text", ["lam sim dien thoai o dau", "けいたいでんわを かいたいです", "chán quá",
                                  "fireworks festival this summer", "つまらない"])
async def test_everyday_words_shared_with_emergencies_never_get_a_110_119_answer(real, sqlite_url, text):
    kb, _ = real
    db, say, _ = await _session(real, sqlite_url, "tg-trap", hint="en")
    try:
        replies = await say(text)
        numbers = {kb.messages["urgent.numbers"][lang] for lang in kb.messages["urgent.numbers"]}
        assert not any(r.text.startswith(n) for r in replies for n in numbers), replies[0].text
    finally:
        await db.dispose()


async def test_romaji_from_an_english_session_is_answered_in_english(real, sqlite_url):
    kb, _ = real
    db, say, _ = await _session(real, sqlite_url, "tg-romaji", hint="en")
    try:
        replies = await say("gomi no hi wa itsu")
        texts = "\n".join(r.text for r in replies)
        assert shown(kb, "garbage.collection_day", "en") in texts
        assert not any(c.data.startswith("l:") for r in replies for c in r.quick_replies)
    finally:
        await db.dispose()


async def test_a_decline_is_in_the_language_the_message_was_written_in(real, sqlite_url):
    kb, _ = real
    db, say, unanswered = await _session(real, sqlite_url, "tg-decline", hint="en")
    try:
        replies = await say("tối nay xem phim gì hay nhỉ các bạn")
        assert replies[0].text == kb.messages["decline.out_of_scope"]["vi"]
        assert await unanswered() == []
    finally:
        await db.dispose()


@pytest.mark.parametrize("hint, lang", [("id", "id"), ("fil", "tl"), ("ne-NP", "ne"), ("my", "my"), ("pt-BR", "pt"),
                                        ("vi", "vi"), ("zh-hans", "zh"), ("ko-KR", "ko"), ("ja", "ja"), ("en-US", "en")])
async def test_every_platform_language_is_used_for_a_short_message(real, sqlite_url, hint, lang):
    """Telegram's language_code (LINE's profile language, the browser's Accept-Language go
    through the same mapping) picks the answer language of a message too short to tell."""
    kb, _ = real
    db, say, _ = await _session(real, sqlite_url, f"tg-hint-{hint}", hint=hint)
    try:
        replies = await say("119")
        assert replies[0].text in {kb.messages["decline.empty"].get(lang), kb.messages["decline.empty"]["en"]}
        replies = await say("ok")
        texts = "\n".join(r.text for r in replies)
        assert texts
    finally:
        await db.dispose()
