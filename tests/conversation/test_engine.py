"""The conversation core end to end: real matcher, real database (SQLite and PostgreSQL),
the project's own messages.yaml and contacts.yaml, a small fixture topic set."""
from __future__ import annotations

from dataclasses import replace

import pytest

from bot.conversation.engine import ConversationEngine
from bot.db.models import Feedback, Unanswered, User
from delivery.messages import Channel, IncomingMessage, Kind
from intents.matcher import Matcher
from knowledge.schema import LANGUAGE_NAMES
from tests.conversation.conftest import ChatDriver, payloads


def msg(kb, key: str, lang: str, **fields) -> str:
    return kb.messages[key][lang].format(**fields) if fields else kb.messages[key][lang]


# --------------------------------------------------------------------------- first contact
async def test_first_question_gets_welcome_and_answer_in_its_language(chat: ChatDriver, kb):
    replies = await chat.say("vứt ghế sofa thế nào")

    assert replies[0].text == msg(kb, "welcome.first", "vi")
    answer = replies[1]
    assert answer.text.startswith("Câu trả lời về rác cỡ lớn.")
    assert "粗大ごみ" in answer.text                       # the official Japanese term
    assert {"i:garbage.collection_day", "fb:+:garbage.bulky", "fb:-:garbage.bulky"} <= set(payloads(answer))
    assert replies[-1].text == msg(kb, "onboard.offer", "vi")   # skippable area/segment offer
    assert "ob:skip" in payloads(replies[-1])
    user = await chat.user()
    assert user.language == "vi"


async def test_second_question_has_no_welcome_and_no_second_onboarding(chat: ChatDriver, kb):
    await chat.say("vứt ghế sofa thế nào")
    replies = await chat.say("ngày nào đổ rác")
    assert len(replies) == 1
    assert replies[0].text.startswith("Câu trả lời về ngày thu gom rác.")


async def test_follow_greets_in_the_platform_language(chat: ChatDriver, kb):
    replies = await chat.follow(hint="ko-KR")
    assert replies[0].text == msg(kb, "greeting.follow", "ko")
    assert "g:garbage" in payloads(replies[0])
    assert (await chat.user()).language == "ko"


async def test_follow_without_a_supported_hint_shows_the_language_picker(chat: ChatDriver, kb):
    replies = await chat.follow(hint="xx")
    picker = replies[0]
    assert [c.label for c in picker.quick_replies][:5] == [LANGUAGE_NAMES[c] for c in ("ja", "en", "vi", "zh", "ko")]
    assert msg(kb, "lang.pick", "vi") in picker.text and msg(kb, "lang.pick", "ja") in picker.text

    replies = await chat.press("l:zh")
    assert msg(kb, "lang.set", "zh") in replies[0].text
    assert (await chat.user()).language == "zh"


async def test_first_message_that_is_not_a_question_gets_the_picker(chat: ChatDriver, kb):
    replies = await chat.say("👍👍")
    assert any(msg(kb, "lang.pick", "en") in r.text for r in replies)
    assert (await chat.user()).language is None


async def test_message_in_another_language_is_answered_in_it_with_a_switch_offer(chat: ChatDriver, kb):
    await chat.follow(hint="en")
    replies = await chat.say("ngày nào đổ rác")

    assert replies[0].text.startswith("Câu trả lời về ngày thu gom rác.")
    offer = replies[-1]
    assert offer.text == msg(kb, "lang.switch_offer", "vi", language=LANGUAGE_NAMES["vi"])
    assert "l:vi" in payloads(offer)
    assert (await chat.user()).language == "en"          # nothing switched until asked

    await chat.press("l:vi")
    assert (await chat.user()).language == "vi"


# --------------------------------------------------------------------------- decisions
async def test_urgent_intent_puts_emergency_numbers_first(chat: ChatDriver, kb):
    await chat.follow(hint="en")
    replies = await chat.say("my friend collapsed")
    assert replies[0].text.startswith(msg(kb, "urgent.numbers", "en"))
    assert "Call 119 for an ambulance." in replies[0].text


CLARIFY_CANDIDATES = ("쓰레기", "ごみ", "垃圾", "garbage day sofa", "sofa", "trash", "rác")


def strict(matcher) -> Matcher:
    """The same model, asking back whenever it is not certain (so a test can see a clarify)."""
    return Matcher(matcher.model, matcher.urgent, replace(matcher.thresholds, answer=1.0, margin=1.0,
                                                          urgent=1.0, clarify=0.01, oos=1.01))


def clarifying_text(matcher) -> str:
    """A message the matcher answers with "Did you mean…" on the fixture KB."""
    for text in CLARIFY_CANDIDATES:
        if matcher.match(text).decision == "clarify":
            return text
    raise AssertionError(f"the matcher clarifies none of {CLARIFY_CANDIDATES} on the fixture KB")


DECLINE_CANDIDATES = ("how tall is mount fuji", "what is the capital of France", "recommend a good ramen shop",
                      "what is your favourite colour")


def declining_text(matcher) -> str:
    """An out-of-scope English question the real matcher declines on the fixture KB."""
    for text in DECLINE_CANDIDATES:
        match = matcher.match(text)
        if match.decision == "decline" and match.language == "en":
            return text
    raise AssertionError(f"the matcher declines none of {DECLINE_CANDIDATES} on the fixture KB")


#: An in-domain question the model is unsure of (with ``unsure``): a knowledge gap.
GAP_TEXT = "how to throw away a big sofa"


def unsure(matcher) -> Matcher:
    """The same model declining everything it cannot answer from an exact sample."""
    return Matcher(matcher.model, matcher.urgent, replace(matcher.thresholds, clarify=1.01, oos=1.01, crisis=1.01))


async def test_clarify_offers_top_suggestions_a_person_and_abandoning_it_is_recorded(chat: ChatDriver, kb, matcher):
    chat.engine.matcher = m = strict(matcher)
    text = clarifying_text(m)
    match = m.match(text)
    expected = match.suggestions[:3]
    await chat.follow(hint=match.language)
    replies = await chat.say(text)

    assert replies[0].text == msg(kb, "clarify.text", match.language)
    assert [d for d in payloads(replies[0]) if d.startswith("i:")] == [f"i:{s}" for s in expected]
    assert "c" in payloads(replies[0])                          # always a way to reach a person
    assert "cn" in payloads(replies[0])                         # "none of these"
    await chat.say("menu")                                     # walks away from the question
    rows = await chat.rows(Unanswered)
    assert [(r.text, r.decision, r.suggestions) for r in rows] == [(text, "clarify_abandoned", expected)]


async def test_picking_a_clarify_suggestion_answers_and_records_nothing(chat: ChatDriver, kb, matcher):
    chat.engine.matcher = m = strict(matcher)
    text = clarifying_text(m)
    lang = m.match(text).language
    await chat.follow(hint=lang)
    replies = await chat.say(text)
    first = next(d for d in payloads(replies[0]) if d.startswith("i:"))
    answer = await chat.press(first)
    assert answer[0].text.startswith(kb.intents[first[2:]].answers[lang].split("{")[0])
    assert await chat.count(Unanswered) == 0


async def test_out_of_scope_is_declined_honestly_and_not_stored(chat: ChatDriver, kb, matcher):
    text = declining_text(matcher)
    assert matcher.match(text).reason == "out_of_scope"
    await chat.follow(hint="en")
    replies = await chat.say(text)
    assert replies[0].text == msg(kb, "decline.out_of_scope", "en")
    assert "saved" not in replies[0].text
    assert {"m", "c"} <= set(payloads(replies[0]))
    assert await chat.count(Unanswered) == 0


@pytest.mark.parametrize("text", ["you are stupid", "asdkjh qwpoeiru", "zzzz xxxx"])
async def test_insults_and_gibberish_are_not_stored(chat: ChatDriver, kb, matcher, text):
    await chat.follow(hint="en")
    replies = await chat.say(text)
    assert replies[0].text in (msg(kb, "decline.out_of_scope", "en"), msg(kb, "decline.empty", "en"))
    assert await chat.count(Unanswered) == 0


async def test_an_in_domain_question_without_an_answer_is_stored_for_the_operators(chat: ChatDriver, kb, matcher):
    chat.engine.matcher = unsure(matcher)
    assert chat.engine.matcher.match(GAP_TEXT).reason == "unsure"
    await chat.follow(hint="en")
    replies = await chat.say(GAP_TEXT)
    assert replies[0].text == msg(kb, "decline.text", "en")
    assert {"m", "c"} <= set(payloads(replies[0]))
    rows = await chat.rows(Unanswered)
    assert [(r.text, r.decision, r.language) for r in rows] == [(GAP_TEXT, "decline", "en")]


async def test_escalating_answer_offers_consultation_with_the_centre_contact(chat: ChatDriver, kb):
    await chat.follow(hint="en")
    replies = await chat.say("the company took my passport")
    assert "c:work" in payloads(replies[0])
    assert kb.contacts["yfrcc"].phone in replies[0].text         # placeholder filled from contacts

    consult = await chat.press("c:work")
    assert kb.contacts["yfrcc"].phone in consult[0].text
    assert kb.contacts["yfrcc"].name["en"] in consult[0].text


async def test_missing_translation_falls_back_to_english_and_easy_japanese(chat: ChatDriver, kb):
    await chat.press("l:id")                       # Indonesian: no fixture answer in it
    replies = await chat.press("i:garbage.bulky")
    answer = next(r for r in replies if "bulky" in r.text)
    assert "Answer about bulky garbage." in answer.text
    assert "おおきい ごみ（粗大ごみ）の こたえ。" in answer.text


# --------------------------------------------------------------------------- commands
async def test_commands_work_as_words_in_every_language_and_as_slash_commands(chat: ChatDriver, kb):
    await chat.follow(hint="en")
    for word in ("menu", "メニュー", "菜单", "메뉴", "trợ giúp", "/help"):
        replies = await chat.say(word)
        assert "g:garbage" in payloads(replies[0]), word
    for word in ("settings", "せってい", "设置", "설정", "cài đặt", "/settings"):
        replies = await chat.say(word)
        assert "s:area" in payloads(replies[0]), word
    replies = await chat.say("/language")
    assert "l:vi" in payloads(replies[0])
    replies = await chat.say("상담")
    assert kb.contacts["yfrcc"].phone in replies[0].text


async def test_matched_bot_intents_run_their_flows(chat: ChatDriver, kb):
    await chat.follow(hint="en")
    replies = await chat.say("erase everything you know about me")
    assert replies[0].text == msg(kb, "forget.confirm", "en")
    assert payloads(replies[0]) == ["x:yes", "x:no"]


async def test_forget_me_deletes_everything_after_confirmation(chat: ChatDriver, kb, matcher):
    await chat.follow(hint="en")
    await chat.say("bulky garbage pickup")
    await chat.press("fb:+:garbage.bulky")
    chat.engine.matcher = unsure(matcher)
    await chat.say(GAP_TEXT)
    chat.engine.matcher = matcher
    assert await chat.count(Feedback) == 1 and await chat.count(Unanswered) == 1

    confirm = await chat.say("forget me")
    assert payloads(confirm[0]) == ["x:yes", "x:no"]
    cancelled = await chat.press("x:no")
    assert cancelled[0].text == msg(kb, "forget.cancelled", "en")
    assert await chat.user() is not None

    done = await chat.press("x:yes")
    assert done[0].text == msg(kb, "forget.done", "en")
    assert await chat.user() is None
    assert await chat.count(Feedback) == 0 and await chat.count(Unanswered) == 0


async def test_stop_notifications_turns_every_opt_in_off(chat: ChatDriver, kb):
    await chat.follow(hint="en")
    await chat.press("s:opt:garbage")
    replies = await chat.say("stop")
    assert replies[0].text == msg(kb, "stop.done", "en")
    user = await chat.user()
    assert (user.opt_alerts, user.opt_events, user.opt_garbage) == (False, False, False)


@pytest.mark.parametrize("word", ["dừng", "dung", "Dừng lại", "ngừng thông báo", "tat thong bao"])
async def test_vietnamese_stop_words_with_and_without_diacritics(chat: ChatDriver, kb, word):
    await chat.follow(hint="vi")
    await chat.press("s:opt:garbage")
    replies = await chat.say(word)
    assert replies[0].text == msg(kb, "stop.done", "vi")
    user = await chat.user()
    assert (user.opt_alerts, user.opt_events, user.opt_garbage) == (False, False, False)


async def test_a_word_that_only_folds_to_a_command_is_not_one(chat: ChatDriver, kb):
    await chat.follow(hint="vi")
    await chat.press("s:opt:garbage")
    replies = await chat.say("đúng")                 # "right", not "dừng" (stop)
    assert all(r.text != msg(kb, "stop.done", "vi") for r in replies)
    assert (await chat.user()).opt_garbage is True


@pytest.mark.parametrize(("word", "lang", "key"), [("메뉴", "ko", "menu.text"), ("停止通知", "zh", "stop.done"),
                                                   ("dừng", "vi", "stop.done"), ("メニュー", "ja", "menu.text")])
async def test_a_command_in_another_language_is_answered_in_that_language(chat: ChatDriver, kb, word, lang, key):
    await chat.follow(hint="en")
    replies = await chat.say(word)
    assert replies[0].text == msg(kb, key, lang)
    assert (await chat.user()).language == "en"        # nothing switched for good


async def test_an_international_command_word_keeps_the_residents_language(chat: ChatDriver, kb):
    await chat.follow(hint="ko")
    replies = await chat.say("menu")
    assert replies[0].text == msg(kb, "menu.text", "ko")


# --------------------------------------------------------------------------- settings
async def test_settings_flow_area_segment_opt_ins_quiet_hours_and_reminder_time(chat: ChatDriver, kb):
    await chat.follow(hint="ja")
    page1 = (await chat.press("s:area"))[0]
    page2 = (await chat.press("s:area:p2"))[0]
    districts = [d for d in payloads(page1) + payloads(page2) if d.startswith("s:area:") and d[7:] not in ("p2", "skip")]
    assert len(districts) == 21 and len(page1.quick_replies) <= 13
    assert "地域" in page1.text                                   # the caveat names the city's own list

    replies = await chat.press("s:area:ogori")
    assert msg(kb, "area.set", "ja", area=msg(kb, "district.ogori", "ja")) in replies[0].text
    await chat.press("s:seg:student")
    await chat.press("s:opt:events")
    await chat.press("s:opt:alerts")
    await chat.press("s:gt:2000")
    asked = await chat.press("s:quiet")
    assert asked[0].text == msg(kb, "quiet.ask", "ja")
    bad = await chat.say("あした")
    assert bad[0].text == msg(kb, "quiet.bad", "ja")
    await chat.say("２２：００－７：００")                        # full-width input

    user = await chat.user()
    assert (user.area, user.segment, user.opt_events, user.opt_alerts) == ("ogori", "student", True, False)
    assert (user.garbage_time, user.quiet_start, user.quiet_end) == ("20:00", "22:00", "07:00")
    shown = (await chat.say("せってい"))[0].text
    assert "22:00–07:00" in shown and msg(kb, "district.ogori", "ja") in shown


async def test_pending_input_survives_a_new_engine_instance(chat: ChatDriver, kb, matcher, sessionmaker):
    await chat.follow(hint="en")
    await chat.press("s:quiet")
    chat.engine = ConversationEngine(kb, matcher, sessionmaker)    # another process, same database
    await chat.say("23:30-6:00")
    user = await chat.user()
    assert (user.quiet_start, user.quiet_end) == ("23:30", "06:00")


# --------------------------------------------------------------------------- feedback
async def test_thumbs_up_is_stored_and_thumbs_down_asks_for_the_question(chat: ChatDriver, kb):
    await chat.follow(hint="vi")
    await chat.say("vứt ghế sofa thế nào")
    up = await chat.press("fb:+:garbage.bulky")
    assert up[0].text == msg(kb, "fb.thanks", "vi")
    down = await chat.press("fb:-:garbage.bulky")
    assert down[0].text == msg(kb, "fb.ask_question", "vi")
    stored = await chat.say("tôi muốn biết phí bỏ tủ lạnh")
    # Not matched confidently again on the fixture KB: stored, with a way to rephrase or reach a person.
    assert stored[0].text == f'{msg(kb, "fb.stored", "vi")}\n\n{msg(kb, "rephrase.hint", "vi")}'
    assert "m" in payloads(stored[0]) and any(p == "c" or p.startswith("c:") for p in payloads(stored[0]))

    votes = sorted((f.vote, f.question) for f in await chat.rows(Feedback))
    assert votes == [(-1, "tôi muốn biết phí bỏ tủ lạnh"), (1, None)]


# --------------------------------------------------------------------------- other events
async def test_sticker_gets_a_polite_text_only_note_with_the_menu(chat: ChatDriver, kb):
    await chat.follow(hint="en")
    replies = await chat.send(Kind.STICKER)
    assert replies[0].text == msg(kb, "event.nontext", "en")
    assert "g:garbage" in payloads(replies[0])


async def test_location_in_a_district_is_offered_as_area(chat: ChatDriver, kb):
    await chat.follow(hint="en")
    replies = await chat.location("山口県山口市小郡下郷1440-1")
    assert replies[0].text == msg(kb, "event.location_area", "en", area=msg(kb, "district.ogori", "en"))
    assert "s:area:ogori" in payloads(replies[0])

    unknown = await chat.location("東京都新宿区四谷1-6-1")
    assert unknown[0].text == msg(kb, "event.location_unknown", "en")
    assert "s:area:oodono" in payloads(unknown[0])


async def test_group_join_is_declined_and_stores_nothing(engine, kb, chat: ChatDriver):
    replies = await engine.handle(IncomingMessage(Channel.LINE, "C-group-1", Kind.GROUP_JOIN))
    assert msg(kb, "event.group", "en") in replies[0].text
    assert await chat.count(User) == 0


async def test_unfollow_marks_the_user_and_replies_nothing(chat: ChatDriver):
    await chat.follow(hint="en")
    assert await chat.send(Kind.UNFOLLOW) == []
    assert (await chat.user()).status == "unfollowed"
    await chat.follow(hint="en")                                  # came back
    assert (await chat.user()).status == "active"


async def test_edited_message_gets_a_polite_note(chat: ChatDriver, kb):
    await chat.follow(hint="zh")
    replies = await chat.send(Kind.EDITED, text="改了")
    assert replies[0].text == msg(kb, "event.edited", "zh")


async def test_every_button_payload_fits_telegram_callback_data(chat: ChatDriver):
    await chat.follow(hint="en")
    seen: list[str] = []
    for data in ("m", "g:garbage", "s", "s:area", "s:area:p2", "s:seg", "s:gt", "x"):
        for reply in await chat.press(data):
            seen += payloads(reply)
    for reply in await chat.say("the company took my passport"):
        seen += payloads(reply)
    assert seen and max(len(d.encode()) for d in seen) <= 64


async def test_dynamic_answer_is_shown_before_the_static_answer(chat: ChatDriver, kb):
    async def next_collection(session, user, lang):
        return f"next: {user.area or 'no area'} ({lang})"

    async def broken(session, user, lang):
        raise RuntimeError("feed down")

    chat.engine.dynamic_answers["garbage.collection_day"] = next_collection
    chat.engine.dynamic_answers["garbage.bulky"] = broken
    await chat.follow(hint="en")
    await chat.press("s:area:yuda")
    replies = await chat.press("i:garbage.collection_day")
    assert replies[0].text.startswith("next: yuda (en)\n\nAnswer about collection days.")
    replies = await chat.press("i:garbage.bulky")                  # a failing live part is left out
    assert replies[0].text.startswith("Answer about bulky garbage.")


async def test_info_logs_carry_no_message_text_or_user_id(chat: ChatDriver, caplog):
    import logging

    from bot.logging import JsonFormatter

    caplog.set_level(logging.INFO)
    await chat.follow(hint="en")
    await chat.say("the company took my passport")
    await chat.say("how tall is mount fuji")
    lines = [JsonFormatter().format(r) for r in caplog.records if r.levelno >= logging.INFO]
    assert any('"decision": "answer"' in line for line in lines)
    for line in lines:
        assert "passport" not in line and "fuji" not in line and chat.user_id not in line


def test_system_message_with_an_unverified_contact_fact_is_marked(kb):
    from dataclasses import replace

    from bot.conversation.locale import Texts

    yfrcc = kb.contacts["yfrcc"].model_copy(update={"verified": False})
    texts = Texts(replace(kb, contacts={**kb.contacts, "yfrcc": yfrcc}))
    text = texts.t("consult.contact", "en")
    assert f"{yfrcc.phone}※" in text and text.endswith(kb.messages["fact.unverified"]["en"])
    assert "※" not in Texts(kb).t("consult.contact", "en") or not kb.contacts["yfrcc"].verified


async def test_small_talk_gets_its_answer_without_feedback_buttons(chat: ChatDriver, kb):
    await chat.follow(hint="vi")
    replies = await chat.say("cảm ơn")
    assert replies[0].text.startswith("Không có gì.")
    assert not [d for d in payloads(replies[0]) if d.startswith("fb:")]
