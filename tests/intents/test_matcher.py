"""The matcher on a small fixture knowledge base: answers per language, decline, clarify, urgent, crisis."""
from __future__ import annotations

import builtins
import io
import pathlib
from dataclasses import replace

import numpy as np
import pytest

from intents.crisis import CRISIS_INTENT
from intents.matcher import DECLINE_EMPTY, DECLINE_OUT_OF_SCOPE, Match, Matcher, Thresholds, is_flow_intent
from knowledge.loader import KnowledgeBase


@pytest.mark.parametrize("text, intent", [
    ("how do i sort my trash", "garbage.sorting"),
    ("phan loai rac the nao", "garbage.sorting"),           # Vietnamese without diacritics
    ("phân loại rác thế nào", "garbage.sorting"),
    ("ごみの日 いつ", "garbage.collection_day"),
    ("gomi no hi wa itsu", "garbage.collection_day"),         # romaji
    ("ｺﾞﾐの日", "garbage.collection_day"),                     # half-width katakana
    ("쓰레기 요일", "garbage.collection_day"),
    ("垃圾什么时候收", "garbage.collection_day"),
    ("health insurance card lost", "insurance.health"),
    ("bao hiem y te", "insurance.health"),
    ("保険証 なくした", "insurance.health"),
    ("i moved here", "procedure.move_in"),
    ("転入届", "procedure.move_in"),                            # official term
    ("Hello!!", "greeting.hello"),
    ("xin chào 👋", "greeting.hello"),
])
def test_matches_the_right_intent(matcher, text, intent):
    m = matcher.match(text)
    assert m.decision in ("answer", "clarify"), m
    assert m.intent == intent, m


@pytest.mark.parametrize("text", ["", "   ", "😀", "👍👍🎉", "12345", "0120 000 000", "???", "!!!"])
def test_nothing_to_read_is_declined_as_empty(matcher, text):
    m = matcher.match(text)
    assert (m.decision, m.intent, m.suggestions, m.reason) == ("decline", None, [], DECLINE_EMPTY)


@pytest.mark.parametrize("text", ["qwxz kjhgf", "zzzzzzzz", "你喜欢什么颜色", "노래 불러 줘", "recommend a cheap laptop"])
def test_off_topic_and_gibberish_are_declined_as_out_of_scope(matcher, text):
    m = matcher.match(text)
    assert (m.decision, m.intent, m.suggestions) == ("decline", None, []), m
    assert m.reason == DECLINE_OUT_OF_SCOPE


def test_emergency_is_answered_at_once_above_its_threshold(matcher):
    for text in ("ambulance please", "my friend collapsed help", "救急車 よんで", "goi xe cap cuu"):
        m = matcher.match(text)
        assert (m.decision, m.intent) == ("answer", "medical.emergency"), m


def test_urgent_intent_below_its_own_threshold_is_clarified_not_answered(matcher):
    """An urgent intent is never answered on a guess: below ``urgent`` it is a "Did you mean"."""
    cautious = Matcher(matcher.model, matcher.urgent, replace(matcher.thresholds, urgent=0.9999, answer=0.0, margin=0.0))
    m = cautious.match("ambulance please")
    assert m.decision == "clarify" and m.suggestions[0] == "medical.emergency"
    # The same threshold does not hold back a non-urgent answer.
    assert cautious.match("how do i sort my trash").decision == "answer"


def test_clarify_offers_only_intents_close_by_probability(matcher):
    strict = Matcher(matcher.model, matcher.urgent, replace(matcher.thresholds, answer=1.0))
    for text in ("garbage", "ごみ", "rac"):
        m = strict.match(text)
        assert m.decision == "clarify", m
        assert m.suggestions[0] == m.intent and len(set(m.suggestions)) == len(m.suggestions) <= 3
        p = dict(zip(strict.intent_ids, strict.intent_proba(strict.score(text))))
        for s in m.suggestions[1:]:
            assert p[s] >= strict.thresholds.suggest_ratio * p[m.intent]
            assert not is_flow_intent(s)        # greeting.hello only when it is the best guess


def test_a_flow_intent_is_suggested_when_the_text_is_about_it(matcher):
    strict = Matcher(matcher.model, matcher.urgent, replace(matcher.thresholds, answer=1.0))
    m = strict.match("hello hello there")
    assert m.decision == "clarify" and m.suggestions[0] == "greeting.hello"


def test_language_is_detected_and_can_be_forced(matcher):
    assert matcher.match("phan loai rac").language == "vi"
    assert matcher.match("ごみの日").language == "ja"
    forced = matcher.match("phan loai rac", lang="en")
    assert forced.language == "en" and forced.intent == "garbage.sorting"
    assert forced.language_confidence == 1.0


def test_exact_sample_answers_with_full_confidence(matcher):
    m = matcher.match("GOMI NO HI")
    assert (m.decision, m.intent, m.confidence) == ("answer", "garbage.collection_day", 1.0)


def test_match_never_touches_files(matcher, monkeypatch):
    def no_files(*args, **kwargs):
        raise AssertionError("match() opened a file")

    monkeypatch.setattr(builtins, "open", no_files)
    monkeypatch.setattr(io, "open", no_files)
    monkeypatch.setattr(pathlib.Path, "open", no_files)
    monkeypatch.setattr(pathlib.Path, "read_text", no_files)
    for text in ("how do i sort my trash", "ごみの日", "쓰레기 요일", "something brand new 😀"):
        assert isinstance(matcher.match(text), Match)


def test_match_json_has_exactly_the_contract_keys(matcher):
    data = matcher.match("").as_json()
    assert list(data) == ["text", "intent", "decision", "confidence", "language", "suggestions"]
    assert data["intent"] is None and data["decision"] == "decline"


def test_thresholds_file_rejects_unknown_keys(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("answer: 0.5\nanswr: 0.4\n")
    with pytest.raises(ValueError, match="answr"):
        Thresholds.load(path)
    path.write_text("answer: 0.5\n")
    assert Thresholds.load(path).answer == 0.5


def test_repo_thresholds_file_loads():
    th = Thresholds.load()
    assert 0 < th.clarify <= th.answer < 1
    assert th.clarify <= th.urgent


def test_long_message_is_read_by_its_head_and_tail(matcher):
    story = "I came to Japan two years ago and I live with my friends near the station. " * 20
    m = matcher.match(story + "How do I sort my trash?")
    assert m.text.endswith("trash?")
    assert m.intent == "garbage.sorting", m
    assert matcher.match("how do i sort my trash " + "blah " * 5000).decision in ("answer", "clarify", "decline")


def test_spelling_correction_uses_known_words_only_when_close(matcher):
    model = matcher.model
    assert model.spell("garbaje sortng") == "garbage sorting"
    assert model.spell("insurence card") == "insurance card"
    assert model.spell("xylophone") == "xylophone"          # nothing close: left alone
    assert model.spell("ごみの日") == "ごみの日"              # CJK is not spell-corrected
    m = matcher.match("helth insurence")
    assert m.intent == "insurance.health" and m.decision != "decline"


def test_empty_knowledge_base_declines_everything():
    empty = Matcher.from_knowledge(KnowledgeBase(intents={}, groups={}), Thresholds())
    for text in ("hello", "", "ごみ"):
        m = empty.match(text)
        assert (m.decision, m.intent, m.suggestions) == ("decline", None, [])


def test_single_intent_knowledge_base_works(fixture_kb, tmp_path):
    one = {"garbage.sorting": fixture_kb.intents["garbage.sorting"]}
    m = Matcher.from_knowledge(KnowledgeBase(intents=one, groups={"garbage": list(one)}), Thresholds(),
                               cache_dir=tmp_path)
    assert m.match("how do i sort my trash").intent == "garbage.sorting"
    assert m.match("recommend a cheap laptop").decision == "decline"


# ---- crisis -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def crisis_matcher(fixture_kb, tmp_path_factory):
    """The fixture knowledge base plus a crisis intent with a handful of samples."""
    base = fixture_kb.intents["medical.emergency"]
    crisis = base.model_copy(update={"id": CRISIS_INTENT, "terms": [], "related": [], "samples": {
        "en": ["i want to die", "i am thinking about suicide", "i want to end my life", "i cannot go on living"],
        "ja": ["しにたい", "じさつしたい", "いきているのがつらい"],
        "vi": ["toi muon chet", "toi khong muon song nua"],
    }})
    intents = {**fixture_kb.intents, CRISIS_INTENT: crisis}
    kb = KnowledgeBase(intents=intents, groups={**fixture_kb.groups, "emergency": [CRISIS_INTENT]})
    return Matcher.from_knowledge(kb, Thresholds(), cache_dir=tmp_path_factory.mktemp("crisis-cache"))


@pytest.mark.parametrize("text", [
    "I want to kill myself", "死にたい", "em muốn chết, không muốn sống nữa", "我不想活了", "죽고 싶어요",
    "saya ingin bunuh diri", "gusto ko nang mamatay", "म आत्महत्या गर्न चाहन्छु", "ကျွန်တော် သေချင်တယ်",
    "quero morrer", "tôi muốn tự tử",
])
def test_crisis_is_answered_at_once_in_every_language(crisis_matcher, text):
    m = crisis_matcher.match(text)
    assert (m.decision, m.intent) == ("answer", CRISIS_INTENT), m


def test_crisis_beats_decline_even_when_the_model_is_unsure(crisis_matcher):
    never = replace(crisis_matcher.thresholds, crisis=1.01, clarify=0.99, oos=0.0)
    strict = Matcher(crisis_matcher.model, crisis_matcher.urgent, never)
    assert strict.match("I want to kill myself").intent == CRISIS_INTENT
    assert strict.match("how do i sort my trash").decision == "decline"


@pytest.mark.parametrize("text", ["my phone died", "chán quá", "từ từ thôi", "I am killing time",
                                  "how do i sort my trash"])
def test_everyday_words_are_not_crisis(crisis_matcher, text):
    assert crisis_matcher.match(text).intent != CRISIS_INTENT


# ---- cost -----------------------------------------------------------------------------------

def test_query_cost_does_not_grow_with_samples(fixture_kb, matcher, tmp_path):
    """Ten times the samples: the model has the same classes, and a query touches only the
    weight rows of its own features (no per-sample work), so it costs about the same."""
    import time

    from bench.bench_matcher import synthetic_samples

    big_kb = synthetic_samples(fixture_kb, 10)
    count = lambda kb: sum(len(s) for i in kb.intents.values() for s in i.samples.values())
    assert count(big_kb) >= 10 * count(fixture_kb)
    big = Matcher.from_knowledge(big_kb, Thresholds(), cache_dir=tmp_path)
    assert big.model.classes == matcher.model.classes

    def cost(m: Matcher) -> float:
        texts = ["how do i sort my trash", "ごみの日 いつ", "ambulance please", "bao hiem y te"] * 25
        best = np.inf
        for _ in range(5):
            t = time.perf_counter()
            for x in texts:
                m.match(x)
            best = min(best, time.perf_counter() - t)
        return best

    cost(matcher), cost(big)  # warm-up
    assert cost(big) < 2.5 * cost(matcher) + 0.01
