"""Regression floors of the matcher on the test split of the project's evaluation set.

``intents/data/eval`` is written independently of the knowledge base; its ``tune`` split
fits the thresholds (``kurashi kb calibrate``), its ``test`` split is only measured —
here and by ``kurashi kb eval``. Floors sit a little below what was measured when they
were set (one message of a language is 3-4 points), so a real regression fails and noise
does not. Measured: see ``MEASURED``.
"""
from __future__ import annotations

import pytest

from intents.crisis import CRISIS_INTENT
from intents.evaluate import EVAL_DIR, evaluate, load_labelled
from intents.matcher import Matcher
from knowledge.loader import load_knowledge
from knowledge.schema import CORE_LANGUAGES, EXTRA_LANGUAGES

#: Test split when the floors were set: right at once (core, extra), wrong, out-of-scope declined.
MEASURED = {"core_right": 0.935, "extra_right": 0.957, "wrong": 0.007, "oos_declined": 0.913, "ja_right": 0.889}
CORE_RIGHT_FLOOR = 0.85          # the target is 0.88
EXTRA_RIGHT_FLOOR = 0.90         # target 0.80
WRONG_CEILING = 0.02             # target 0.02
OOS_DECLINED_FLOOR = 0.90        # target 0.90
#: Every language on its own (one weak language must not hide behind the others).
LANGUAGE_RIGHT_FLOOR = 0.55
#: Japanese on its own (was 0.59 before its samples were widened; 0.889 measured after).
JA_RIGHT_FLOOR = 0.87


@pytest.fixture(scope="module")
def matcher():
    return Matcher.from_knowledge(load_knowledge())


@pytest.fixture(scope="module")
def rows():
    if not EVAL_DIR.is_dir():
        pytest.skip("no evaluation set")
    return load_labelled(EVAL_DIR, "test")


@pytest.fixture(scope="module")
def result(matcher, rows):
    return evaluate(matcher, rows)


def _right(result: dict, languages) -> float:
    per = result["per_language"]
    n = sum(per[lang]["n"] for lang in languages if lang in per)
    right = sum(per[lang]["right"] * per[lang]["n"] for lang in languages if lang in per)
    return right / n


def test_core_languages_answered_right_at_once(result):
    assert _right(result, CORE_LANGUAGES) >= CORE_RIGHT_FLOOR, result["per_language"]


def test_extra_languages_answered_right_at_once(result):
    assert _right(result, EXTRA_LANGUAGES) >= EXTRA_RIGHT_FLOOR, result["per_language"]


def test_every_language_floor(result):
    for lang, v in result["per_language"].items():
        assert v["right"] >= LANGUAGE_RIGHT_FLOOR, (lang, v)


def test_japanese_floor(result):
    assert result["per_language"]["ja"]["right"] >= JA_RIGHT_FLOOR, result["per_language"]["ja"]


def test_wrong_answers_are_rare(result):
    assert result["answered_wrong_rate"] <= WRONG_CEILING, [m for m in result["misses"] if m["decision"] == "answer"]


def test_out_of_scope_is_declined(result):
    assert result["oos_decline_rate"] >= OOS_DECLINED_FLOOR, [m for m in result["misses"] if m["expected"] is None]


def test_every_crisis_message_gets_the_crisis_answer(matcher):
    rows = [r for r in load_labelled(EVAL_DIR, "all") if r.kind == "crisis"]
    assert len(rows) >= 20
    missed = [r.text for r in rows for m in [matcher.match(r.text)] if (m.decision, m.intent) != ("answer", CRISIS_INTENT)]
    assert not missed, missed


def test_no_everyday_message_gets_an_emergency_answer(matcher):
    """SIM cards, fireworks, "so bored": never a 110/119 (or crisis) answer, in either split."""
    urgent = set(matcher.urgent) | {CRISIS_INTENT}
    rows = [r for r in load_labelled(EVAL_DIR, "all") if r.kind in ("everyday_trap", "out_of_scope")]
    bad = [(r.text, m.intent) for r in rows for m in [matcher.match(r.text)]
           if m.decision == "answer" and m.intent in urgent]
    assert not bad, bad


def test_genuine_emergencies_are_never_declined_without_the_emergency_numbers(matcher):
    """An emergency is answered at once, or asked back with the emergency first; a message
    the model cannot place at all is declined with the emergency numbers (``urgent_hint``)."""
    rows = [r for r in load_labelled(EVAL_DIR, "all") if r.kind == "urgent"]
    matches = [(r.text, matcher.match(r.text)) for r in rows]
    bare = [t for t, m in matches if m.decision == "decline" and not m.urgent_hint]
    assert not bare, bare
    declined = [t for t, m in matches if m.decision == "decline"]
    assert len(declined) <= 2, declined            # measured: 2 of 50
    right = sum(m.decision == "answer" and m.intent == r.intent for r, (_, m) in zip(rows, matches))
    assert right / len(rows) >= 0.7                # measured: 0.8
