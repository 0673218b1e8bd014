"""Calibration counts an urgent top-1 as answered, as the conversation engine does.

bot/conversation/engine.py answers a clarification whose first choice is urgent at once
(an emergency is never asked back). Calibration once scored such a message as a mere
clarification, so small talk whose best guess was an emergency ("chán quá" →
disaster.earthquake) looked cheap to keep above the decline threshold.
"""
from __future__ import annotations

import numpy as np

from intents.calibrate import _Features, _search


def _features(n_pos: int, n_neg: int, score: float) -> _Features:
    n = n_pos + n_neg
    truth = np.r_[np.zeros(n_pos, np.int32), -np.ones(n_neg, np.int32)]
    return _Features(
        truth=truth,
        best=np.full(n, score, np.float32),
        second=np.zeros(n, np.float32),
        best_intent=np.zeros(n, np.int32),           # positives: right (intent 0)
        hit3=truth >= 0,
        urgent=np.r_[np.zeros(n_pos, bool), np.ones(n_neg, bool)],   # negatives: an emergency on top
        known=np.ones(n, np.float32),
        exact=-np.ones(n, np.int32),
        usable=np.ones(n, bool),
    )


def test_off_topic_with_an_urgent_best_guess_is_declined_not_kept_live():
    # Twenty in-scope messages whose right intent leads (worth a clarification) and twelve
    # off-topic ones with an emergency on top, all at one low score. Counted as clarified,
    # the off-topic ones looked cheap and the threshold kept all of them live; answered with
    # an emergency (what the engine does), they cost more than declining everything.
    th, _, rates = _search(_features(20, 12, 0.25))
    assert th["clarify"] > 0.25
    assert rates["negatives_answered"] == 0.0
    assert rates["negatives_declined"] == 1.0


def test_right_answers_stay_when_no_emergency_is_at_stake():
    # Control: the same messages with no emergency on top are worth keeping (clarified).
    f = _features(20, 12, 0.25)
    f.urgent[:] = False
    th, _, rates = _search(f)
    assert th["clarify"] <= 0.25
    assert rates["negatives_answered"] == 0.0
