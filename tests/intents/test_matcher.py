"""The matcher on a small fixture knowledge base: answers per language, decline, clarify, urgent."""
from __future__ import annotations

import builtins
import io
import pathlib
from dataclasses import replace

import pytest

from intents.matcher import Match, Matcher, Thresholds


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


@pytest.mark.parametrize("text", [
    "", "   ", "😀", "👍👍🎉", "12345", "0120 000 000", "???", "!!!",
    "qwxz kjhgf", "zzzzzzzz",
    "你喜欢什么颜色", "노래 불러 줘", "recommend a cheap laptop",
])
def test_declines_out_of_scope_noise_and_non_text(matcher, text):
    m = matcher.match(text)
    assert m.decision == "decline", m
    assert m.intent is None and m.suggestions == []


def test_emergency_is_answered_not_clarified(matcher):
    for text in ("ambulance please", "my friend collapsed help", "救急車 よんで", "goi xe cap cuu"):
        m = matcher.match(text)
        assert (m.decision, m.intent) == ("answer", "medical.emergency"), m


def test_urgent_intent_skips_clarification_even_with_a_close_runner_up(matcher):
    # Force a situation where the margin rule alone would ask back.
    strict = Matcher(matcher.catalog, replace(matcher.thresholds, margin=1.0))
    m = strict.match("call an ambulance for my friend")
    assert (m.decision, m.intent) == ("answer", "medical.emergency")
    other = strict.match("how do i sort my trash")
    assert other.decision == "clarify"


def test_clarify_offers_distinct_top_suggestions_starting_with_the_best(matcher):
    strict = Matcher(matcher.catalog, replace(matcher.thresholds, margin=1.0))
    m = strict.match("garbage")
    assert m.decision == "clarify"
    assert len(m.suggestions) == 3 and len(set(m.suggestions)) == 3
    assert m.suggestions[0] == m.intent
    assert set(m.suggestions[:2]) == {"garbage.sorting", "garbage.collection_day"}


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


def test_fast_aggregation_equals_brute_force_for_the_top(matcher):
    """aggregate() computes exact scores only for intents that can reach the top; check the
    top (suggestions + 1) against a brute-force computation over every intent."""
    import numpy as np

    th = matcher.thresholds
    cat = matcher.catalog
    rng = np.random.default_rng(3)
    for _ in range(50):
        s = rng.random(len(cat.entries)).astype(np.float32) ** 3
        cc = rng.random(len(cat.intent_ids)).astype(np.float32) * 0.5
        fast = matcher.aggregate(s, cc)
        brute = np.zeros(len(cat.intent_ids))
        for g in range(len(cat.intent_ids)):
            v = np.sort(s[cat.entry_intent == g])[::-1]
            k = min(th.top_k, len(v))
            part = (1 - th.w_max) * v[:k].mean() + th.w_max * v[0]
            brute[g] = (1 - th.w_centroid) * part + th.w_centroid * cc[g]
        n = th.suggestions + 1
        top_brute = np.argsort(-brute, kind="stable")[:n]
        top_fast = np.argsort(-fast, kind="stable")[:n]
        assert list(top_fast) == list(top_brute)
        assert np.allclose(fast[top_fast], brute[top_brute], atol=1e-5)


def test_very_long_message_is_handled(matcher):
    text = "how do i sort my trash " + "blah " * 5000
    m = matcher.match(text)
    assert m.text == text
    assert m.decision in ("answer", "clarify", "decline")


def test_spelling_correction_uses_known_words_only_when_close(matcher):
    assert matcher.spell("garbaje sortng") == "garbage sorting"
    assert matcher.spell("insurence card") == "insurance card"
    assert matcher.spell("xylophone") == "xylophone"          # nothing close: left alone
    assert matcher.spell("ごみの日") == "ごみの日"              # CJK is not spell-corrected
    m = matcher.match("helth insurence")
    assert m.intent == "insurance.health" and m.decision != "decline"


def test_empty_knowledge_base_declines_everything():
    from knowledge.loader import KnowledgeBase

    empty = Matcher.from_knowledge(KnowledgeBase(intents={}, groups={}), Thresholds())
    for text in ("hello", "", "ごみ"):
        m = empty.match(text)
        assert (m.decision, m.intent, m.suggestions) == ("decline", None, [])


def test_single_intent_knowledge_base_works(fixture_kb, matcher):
    from knowledge.loader import KnowledgeBase

    one = {"garbage.sorting": fixture_kb.intents["garbage.sorting"]}
    m = Matcher.from_knowledge(KnowledgeBase(intents=one, groups={"garbage": list(one)}), matcher.thresholds)
    assert m.match("how do i sort my trash").intent == "garbage.sorting"
