"""Regression floor of the matcher on ../shared/eval/dev.jsonl with the real knowledge base.

The dev set is for measuring only (calibration never sees it). Floors sit a little below
what was measured when they were set, so a real regression fails and noise does not.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from intents.evaluate import evaluate, load_labelled
from intents.matcher import Matcher
from knowledge.loader import load_knowledge

DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "eval" / "dev.jsonl"

# Measured when these floors were set (48 intents, 3975 entries): top-1 0.979 (91/93),
# answered right away 0.882 with 0 wrong answers, out-of-scope declined 0.8 (4 of 5),
# language detected 1.0. The out-of-scope set has 5 messages: one message is 20 points.
TOP1_FLOOR = 0.93
OOS_DECLINE_FLOOR = 0.6
LANGUAGE_FLOOR = 0.9


@pytest.fixture(scope="module")
def result():
    if not DEV.exists():
        pytest.skip(f"no dev set: {DEV} is absent (../shared next to the repo root)")
    return evaluate(Matcher.from_knowledge(load_knowledge()), load_labelled(DEV))


def test_top1_accuracy_floor(result):
    assert result["accuracy"] >= TOP1_FLOOR, result["misses"]


def test_out_of_scope_decline_floor(result):
    assert result["oos_decline_rate"] >= OOS_DECLINE_FLOOR, result["misses"]


def test_language_detection_floor(result):
    assert result["language_accuracy"] >= LANGUAGE_FLOOR


def test_every_language_is_mostly_right(result):
    for lang, v in result["per_language"].items():
        if v["n"] >= 5:
            assert v["accuracy"] >= 0.8, (lang, v)
