"""Regression floors of the matcher on residents' adversarial probes (fixtures/probes.jsonl).

The probes are written for kurashi (not taken from ../shared/eval): how residents in
trouble really type — break-ins, robbery, traffic injuries, smoke, floods, unpaid wages,
a child's fever at night — in en, vi (with and without diacritics), zh, ko and ja (kana,
kanji, romaji), plus small talk that must not be answered. The knowledge base's samples
and the calibration never see them, so they measure how the samples generalise.

Floors sit a little below what was measured when they were set (real knowledge base,
calibrated thresholds): top-1 0.995 (198/199), answered wrong 0.0, out-of-scope declined
0.767 (23/30), all 73 probes of urgent intents answered with the right emergency.
The samples were improved while looking at these probes, so they overstate how well
unseen wording does (fresh hand-written sets scored 62-69% top-1 before their own fixes).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from intents.evaluate import evaluate, load_labelled
from intents.matcher import Matcher
from knowledge.loader import load_knowledge

PROBES = Path(__file__).resolve().parent / "fixtures" / "probes.jsonl"

TOP1_FLOOR = 0.95
ANSWERED_WRONG_CEILING = 0.02
OOS_DECLINE_FLOOR = 0.7
LANGUAGE_TOP1_FLOOR = 0.9
#: Share of emergency probes whose urgent answer reaches the resident straight away (the
#: conversation engine answers a clarification whose first choice is urgent). Measured 1.0.
EMERGENCY_ANSWERED_FLOOR = 0.95
#: Not urgent in the knowledge base, but a resident writing it is in danger: never decline.
MUST_NOT_DECLINE_EXTRA = {"disaster.typhoon_rain"}


@pytest.fixture(scope="module")
def kb():
    return load_knowledge()


@pytest.fixture(scope="module")
def matcher(kb):
    return Matcher.from_knowledge(kb)


@pytest.fixture(scope="module")
def probes():
    return [json.loads(line) for line in PROBES.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def result(matcher):
    return evaluate(matcher, load_labelled(PROBES))


def _urgent(kb) -> set[str]:
    return {iid for iid, intent in kb.intents.items() if intent.urgent} | {"emergency.crisis"}


def _first_choice(match) -> str | None:
    """What the resident is shown first: the answer, or the first clarify button."""
    if match.decision == "answer":
        return match.intent
    if match.decision == "clarify" and match.suggestions:
        return match.suggestions[0]
    return None


def test_probe_set_shape(probes, kb):
    langs = {p["lang"] for p in probes}
    assert {"en", "vi", "zh", "ko", "ja"} <= langs
    assert sum(p["intent"] is None for p in probes) >= 25
    unknown = {p["intent"] for p in probes if p["intent"] and p["intent"] not in kb.intents}
    assert not unknown, f"probes name intents the knowledge base lacks: {unknown}"


def test_probes_are_not_knowledge_base_samples(probes, kb):
    """A probe copied into the samples would be answered by the exact-match short cut and
    measure nothing."""
    from intents.catalog import cjk_view, match_key
    from intents.normalize import is_cjk_text

    def key(text: str) -> str:
        k = match_key(text)
        return cjk_view(k) if is_cjk_text(k) else k

    samples = {key(s) for intent in kb.intents.values() for ss in intent.samples.values() for s in ss}
    copied = [p["text"] for p in probes if key(p["text"]) in samples]
    assert len(copied) <= 1, copied   # "công ty giữ hộ chiếu" is named in the brief


def test_top1_floor(result):
    assert result["accuracy"] >= TOP1_FLOOR, result["misses"]


def test_answered_wrong_ceiling(result):
    assert result["answered_wrong_rate"] <= ANSWERED_WRONG_CEILING, result["misses"]


def test_out_of_scope_decline_floor(result):
    assert result["oos_decline_rate"] >= OOS_DECLINE_FLOOR, result["misses"]


def test_every_language_floor(result):
    for lang, v in result["per_language"].items():
        assert v["accuracy"] >= LANGUAGE_TOP1_FLOOR, (lang, v)


def test_emergency_probes_are_never_declined(matcher, probes, kb):
    must = _urgent(kb) | MUST_NOT_DECLINE_EXTRA
    declined = [p["text"] for p in probes if p["intent"] in must and matcher.match(p["text"]).decision == "decline"]
    assert not declined, declined


def test_emergency_probes_reach_the_emergency_answer(matcher, probes, kb):
    urgent = _urgent(kb)
    cases = [p for p in probes if p["intent"] in urgent]
    assert len(cases) >= 40
    reached = [p for p in cases if _first_choice(matcher.match(p["text"])) == p["intent"]]
    missed = [p["text"] for p in cases if p not in reached]
    assert len(reached) / len(cases) >= EMERGENCY_ANSWERED_FLOOR, missed


def test_small_talk_never_gets_an_urgent_answer(matcher, probes, kb):
    """'chán quá' (I'm bored) was once answered as disaster.earthquake: out-of-scope text must
    never get a 110/119 (or crisis) answer. (A "Did you mean" may list an emergency among its
    buttons; the resident chooses.)"""
    urgent = _urgent(kb)
    bad = [(p["text"], m.intent) for p in probes if p["intent"] is None
           for m in [matcher.match(p["text"])] if m.decision == "answer" and m.intent in urgent]
    assert not bad, bad


@pytest.mark.parametrize("text, intent", [
    ("someone broke into my house", "emergency.police"),
    ("tôi bị cướp", "emergency.police"),
    ("有人闯进我家", "emergency.police"),
    ("どろぼう", "emergency.police"),
    # emergency.police's answer covers traffic accidents (110) too; either reaches help.
    ("I was hit by a car", ("medical.emergency", "emergency.police")),
    ("there is smoke in my apartment", "emergency.fire"),
])
def test_named_emergencies_are_answered(matcher, text, intent):
    assert _first_choice(matcher.match(text)) in ((intent,) if isinstance(intent, str) else intent)


@pytest.mark.parametrize("text", ["chán quá", "chan qua", "つまらない", "dang lam gi do", "lam sim dien thoai o dau",
                                  "けいたいでんわを かいたいです", "fireworks festival"])
def test_named_small_talk_is_not_urgent(matcher, kb, text):
    m = matcher.match(text)
    assert not (m.decision == "answer" and m.intent in _urgent(kb)), m
