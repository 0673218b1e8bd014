"""Fit the matcher's decision thresholds (``kurashi kb calibrate [--write]``).

Owns the calibration procedure. The model is trained on the knowledge base's samples;
its thresholds are fitted on messages it has never seen: the ``tune`` split of the
project's evaluation set (``intents/data/eval/*.jsonl``, see ``intents/evaluate.py``).
The ``test`` split is never used here, so ``kurashi kb eval`` (test split) measures
what a resident will see.

A grid search over (crisis, oos, clarify, answer, margin, urgent, urgent_margin)
maximises a utility in which each outcome of a tune message counts (``U``): a right
answer at once is the goal; a wrong answer misleads (worse than asking back); a
"Did you mean" with the right intent offered is fine; a decline sends the resident
away. Safety outcomes weigh most: an everyday message answered with 110/119, a crisis
message not answered with the crisis lines, an emergency declined.
Writes ``intents/thresholds.yaml`` with ``--write``. Imports intents/ and knowledge/ only.
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

from intents.crisis import CRISIS_INTENT
from intents.evaluate import EVAL_DIR, Labelled, load_labelled
from intents.matcher import THRESHOLDS_FILE, URGENT_KNOWN_WORDS, Matcher, Thresholds, is_flow_intent
from intents.model import OOS, softmax

#: Utility of each outcome (see module doc).
U = {
    "right": 1.0, "wrong": -3.0, "clarified": 0.3, "clarify_miss": -0.3, "declined": -0.5,
    "urgent_right": 2.0, "urgent_declined": -8.0,
    "oos_declined": 1.0, "oos_clarified": -0.3, "oos_answered": -2.0,
    "trap_emergency": -10.0, "crisis_right": 3.0, "crisis_missed": -8.0, "crisis_false": -4.0,
}

CRISIS_GRID = np.round(np.arange(0.10, 0.701, 0.05), 2)
OOS_GRID = np.round(np.r_[np.arange(0.30, 0.951, 0.05), 1.01], 2)
CLARIFY_GRID = np.round(np.arange(0.04, 0.501, 0.02), 2)
ANSWER_GRID = np.round(np.arange(0.10, 0.951, 0.02), 2)
MARGIN_GRID = np.round(np.arange(0.0, 0.601, 0.02), 2)
URGENT_GRID = np.round(np.arange(0.10, 0.951, 0.02), 2)
URGENT_MARGIN_GRID = np.round(np.arange(0.0, 0.601, 0.05), 2)
URGENT_FLOOR_GRID = np.round(np.r_[0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 1.01], 2)


@dataclass
class _Rows:
    """Per tune message, what the decision depends on (vectorised)."""

    truth: np.ndarray          # intent index, -1 = out of scope
    kind: list[str]
    usable: np.ndarray         # has letters
    exact: np.ndarray          # intent index of an exact sample, -1 = none
    crisis_phrase: np.ndarray
    p_crisis: np.ndarray
    p_oos: np.ndarray
    best: np.ndarray
    second: np.ndarray
    best_intent: np.ndarray
    best_urgent: np.ndarray
    truth_p: np.ndarray        # probability of the true intent (0 out of scope)
    truth_rank: np.ndarray     # rank of the true intent among non-flow intents (flow: 0 if best)
    crisis_truth: np.ndarray   # a crisis message (kind crisis or the crisis intent)
    known_ok: np.ndarray       # enough known words for an urgent answer at once (URGENT_KNOWN_WORDS)
    p_urgent: np.ndarray       # probability of the most probable urgent intent
    urgent_hit: np.ndarray     # the clarify led by it offers the true intent


SHARPNESS_GRID = np.round(np.r_[np.arange(0.25, 2.01, 0.25), np.arange(2.5, 8.01, 0.5), 10, 12, 15, 20], 2)


def fit_sharpness(matcher: Matcher, scored: list, rows: list[Labelled]) -> float:
    """Temperature scaling: the sharpness whose softmax probabilities give the tune rows'
    true classes (an intent, or the out-of-scope class) the highest likelihood."""
    cls = {c: i for i, c in enumerate(matcher.model.classes)}
    zs, ys = [], []
    for s, row in zip(scored, rows):
        target = cls.get(row.intent or OOS)
        if s.z is not None and target is not None:
            zs.append(s.z)
            ys.append(target)
    if not zs:
        return 0.0
    z = np.vstack(zs)
    y = np.asarray(ys)
    best = None
    for k in SHARPNESS_GRID:
        p = softmax(z, float(k))
        nll = -float(np.log(np.maximum(p[np.arange(len(y)), y], 1e-12)).mean())
        if best is None or nll < best[0] - 1e-9:
            best = (nll, float(k))
    return best[1]


def _rows(matcher: Matcher, rows: list[Labelled], scored: list | None = None) -> _Rows:
    ids = matcher.intent_ids
    pos = {iid: i for i, iid in enumerate(ids)}
    urgent = np.asarray([i in matcher.urgent for i in ids], dtype=bool)
    flow = np.asarray([is_flow_intent(i) for i in ids], dtype=bool)
    crisis_col = pos.get(CRISIS_INTENT, -1)
    n = len(rows)
    out = _Rows(np.full(n, -1, np.int32), [r.kind for r in rows], np.zeros(n, bool), np.full(n, -1, np.int32),
                np.zeros(n, bool), np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32),
                np.zeros(n, np.float32), np.full(n, -1, np.int32), np.zeros(n, bool), np.zeros(n, np.float32),
                np.full(n, 99, np.int32), np.zeros(n, bool), np.ones(n, bool), np.zeros(n, np.float32),
                np.zeros(n, bool))
    for i, row in enumerate(rows):
        s = scored[i] if scored is not None else matcher.score(row.text)
        out.truth[i] = pos.get(row.intent, -2) if row.intent else -1
        out.crisis_truth[i] = row.kind == "crisis" or row.intent == CRISIS_INTENT
        out.known_ok[i] = s.known >= URGENT_KNOWN_WORDS and s.urgent_as_typed
        out.usable[i] = bool(s.key) and s.has_letters and len(s.proba) > 0
        if not out.usable[i]:
            continue
        p = matcher.intent_proba(s)
        out.exact[i] = pos.get(s.exact, -1) if s.exact else -1
        out.crisis_phrase[i] = s.crisis_phrase and crisis_col >= 0
        out.p_crisis[i] = p[crisis_col] if crisis_col >= 0 else 0.0
        out.p_oos[i] = s.proba[matcher._oos_col] if matcher._oos_col >= 0 else 0.0
        order = np.argsort(-p, kind="stable")
        out.best_intent[i] = order[0]
        out.best[i] = p[order[0]]
        out.second[i] = p[order[1]] if len(order) > 1 else 0.0
        out.best_urgent[i] = urgent[order[0]]
        t = out.truth[i]
        if urgent.any():
            u = int(np.argmax(np.where(urgent, p, -1.0)))
            out.p_urgent[i] = p[u]
            shown = [u] + [j for j in order.tolist() if j != u and not flow[j]][:2]
            out.urgent_hit[i] = t in shown
        if t >= 0:
            out.truth_p[i] = p[t]
            shown = [j for r, j in enumerate(order.tolist()) if r == 0 or not flow[j]]
            out.truth_rank[i] = shown.index(t) if t in shown else 99
    return out


def _search(r: _Rows, suggest_ratio: float, n_suggest: int) -> tuple[dict, float, dict]:
    """Grid search; returns (thresholds, utility, outcome rates on the tune rows)."""
    pos = r.truth >= 0
    oos_row = r.truth == -1
    kinds = np.asarray(r.kind)
    is_trap = kinds == "everyday_trap"
    is_urgent_row = kinds == "urgent"
    right_top = pos & (r.best_intent == r.truth)
    clar_hit = pos & (r.truth_rank < n_suggest) & (r.truth_p >= suggest_ratio * r.best)
    truth_crisis = r.crisis_truth
    gap = r.best - r.second

    def u_answer(urg: np.ndarray) -> np.ndarray:
        """Utility of answering the best intent (urg: it is an urgent intent)."""
        u = np.where(pos, np.where(right_top, np.where(is_urgent_row, U["urgent_right"], U["right"]), U["wrong"]),
                     U["oos_answered"])
        return np.where(is_trap & urg, U["trap_emergency"], u)

    u_ans = u_answer(r.best_urgent)
    u_cla = np.where(pos, np.where(clar_hit, U["clarified"], U["clarify_miss"]), U["oos_clarified"])
    u_dec = np.where(pos, np.where(is_urgent_row, U["urgent_declined"], U["declined"]), U["oos_declined"])
    # A would-be decline asked back with an emergency first.
    u_rescue = np.where(pos, np.where(r.urgent_hit, U["clarified"], U["clarify_miss"]), U["oos_clarified"])
    # The crisis answer: right for crisis rows, a false alarm elsewhere.
    u_crisis = np.where(truth_crisis, U["crisis_right"], U["crisis_false"])
    u_crisis = np.where(is_trap, U["trap_emergency"], u_crisis)
    exact_hit = r.exact >= 0
    u_exact = np.where(pos, np.where(r.exact == r.truth, U["right"], U["wrong"]), U["oos_answered"])
    crisis_missed = np.where(truth_crisis, U["crisis_missed"], 0.0)   # added when not answered with crisis

    a_bin = np.searchsorted(ANSWER_GRID, r.best.astype(np.float64) + 1e-9, side="right") - 1
    m_bin = np.searchsorted(MARGIN_GRID, gap.astype(np.float64) + 1e-9, side="right") - 1
    ua_bin = np.searchsorted(URGENT_GRID, r.best.astype(np.float64) + 1e-9, side="right") - 1
    um_bin = np.searchsorted(URGENT_MARGIN_GRID, gap.astype(np.float64) + 1e-9, side="right") - 1

    def best_pair(sel: np.ndarray, xb: np.ndarray, yb: np.ndarray, gx: np.ndarray, gy: np.ndarray,
                  delta: np.ndarray, floor: float) -> tuple[int, int, float]:
        """(x, y) maximising the summed delta of rows with x-bin >= x and y-bin >= y."""
        hist = np.zeros((len(gx), len(gy)))
        ok = sel & (xb >= 0) & (yb >= 0)
        np.add.at(hist, (xb[ok], yb[ok]), delta[ok])
        gain = hist[::-1, ::-1].cumsum(axis=0).cumsum(axis=1)[::-1, ::-1]
        gain[gx < floor - 1e-9, :] = -np.inf
        j, m = np.unravel_index(int(np.argmax(gain)), gain.shape)
        return int(j), int(m), float(gain[j, m])

    best_u, best_th = -np.inf, None
    usable = r.usable
    for crisis in CRISIS_GRID:
        crisis_hit = usable & (r.crisis_phrase | (r.p_crisis >= crisis))
        u_c = float(u_crisis[crisis_hit].sum()) + float(crisis_missed[~crisis_hit].sum())
        rest = ~crisis_hit
        ex = rest & usable & exact_hit
        u_e = float(u_exact[ex].sum())
        live0 = rest & usable & ~exact_hit
        u_unusable = float(u_dec[~usable].sum())
        for oos, clarify, floor in itertools.product(OOS_GRID, CLARIFY_GRID, URGENT_FLOOR_GRID):
            low = live0 & ((r.p_oos >= oos) | (r.best < clarify))
            rescued = low & (r.p_urgent >= floor)
            declined = low & ~rescued
            live = live0 & ~low
            base = (u_c + u_e + u_unusable + float(u_dec[declined].sum()) + float(u_cla[live].sum())
                    + float(u_rescue[rescued].sum()))
            urg = live & r.best_urgent & r.known_ok
            normal = live & ~r.best_urgent
            j, m, g1 = best_pair(normal, a_bin, m_bin, ANSWER_GRID, MARGIN_GRID, u_ans - u_cla, clarify)
            ju, mu, g2 = best_pair(urg, ua_bin, um_bin, URGENT_GRID, URGENT_MARGIN_GRID, u_ans - u_cla, clarify)
            total = base + g1 + g2
            if total > best_u + 1e-9:
                best_u = total
                best_th = {"crisis": float(crisis), "oos": float(oos), "clarify": float(clarify),
                           "urgent_floor": float(floor),
                           "answer": float(ANSWER_GRID[j]), "margin": float(MARGIN_GRID[m]),
                           "urgent": float(URGENT_GRID[ju]), "urgent_margin": float(URGENT_MARGIN_GRID[mu])}
    th = best_th
    # Outcome rates at the chosen thresholds.
    crisis_hit = usable & (r.crisis_phrase | (r.p_crisis >= th["crisis"]))
    live0 = ~crisis_hit & usable & ~exact_hit
    low = live0 & ((r.p_oos >= th["oos"]) | (r.best < th["clarify"]))
    declined = (low & ~(r.p_urgent >= th["urgent_floor"])) | ~usable
    live = live0 & ~low
    answered_normal = live & ~r.best_urgent & (r.best >= th["answer"]) & (gap >= th["margin"])
    answered_urgent = live & r.best_urgent & r.known_ok & (r.best >= th["urgent"]) & (gap >= th["urgent_margin"])
    answered = answered_normal | answered_urgent | (~crisis_hit & usable & exact_hit)
    right = (answered & ~exact_hit & right_top) | (~crisis_hit & exact_hit & (r.exact == r.truth) & pos)
    n_pos, n_oos = int(pos.sum()), int(oos_row.sum())

    def rate(a, b):
        return round(float(a) / b, 4) if b else None

    rates = {
        "tune_in_scope": n_pos, "tune_out_of_scope": n_oos,
        "tune_answered_right": rate((right & pos).sum(), n_pos),
        "tune_answered_wrong": rate((answered & ~right & pos).sum(), n_pos),
        "tune_oos_declined": rate((declined & oos_row).sum(), n_oos),
        "tune_crisis_answered": rate((crisis_hit & truth_crisis).sum(), int(truth_crisis.sum())),
        "tune_trap_emergency": int((is_trap & ((answered_urgent) | crisis_hit)).sum()),
    }
    return th, best_u, rates


def calibrate(matcher: Matcher, rows: list[Labelled]) -> Thresholds:
    """New thresholds for ``matcher`` fitted on ``rows`` (the tune split)."""
    if not rows:
        raise ValueError("no tune rows to calibrate on")
    scored = [matcher.score(r.text) for r in rows]
    sharpness = fit_sharpness(matcher, scored, rows)
    for s in scored:
        if s.z is not None:
            s.proba = matcher.probabilities(s.z, sharpness)
    data = _rows(matcher, rows, scored)
    base = replace(matcher.thresholds, sharpness=sharpness)
    th, utility, rates = _search(data, base.suggest_ratio, base.suggestions)
    source = {"method": "grid search on the tune split of intents/data/eval; `kurashi kb calibrate --write`",
              "utility": round(utility, 3), **rates}
    return replace(base, source=source, **th)  # sharpness is in base


def write_thresholds(th: Thresholds, path: Path | None = None) -> None:
    path = path or THRESHOLDS_FILE
    header = ("# Decision thresholds of the intent matcher (intents/matcher.py) on the model's probabilities.\n"
              "# Generated by `kurashi kb calibrate --write` from the tune split of intents/data/eval\n"
              "# (never the training samples, never the test split); do not edit by hand.\n")
    path.write_text(header + yaml.safe_dump(th.dump(), sort_keys=False, allow_unicode=True), encoding="utf-8")


def cli_calibrate(args) -> int:
    """``kurashi kb calibrate [--write] [--eval PATH]``."""
    from knowledge.loader import DEFAULT_DIR, KnowledgeError, load_knowledge

    root = getattr(args, "knowledge", None)
    if getattr(args, "write", False) and root is not None and Path(root).resolve() != DEFAULT_DIR.resolve():
        # intents/thresholds.yaml belongs to the installed knowledge base; thresholds of
        # another one (a test fixture, a draft) must not silently replace them.
        print("kurashi kb calibrate: --write only calibrates the installed knowledge base; "
              "drop --knowledge or drop --write", file=sys.stderr)
        return 2
    path = Path(getattr(args, "eval", None) or EVAL_DIR)
    try:
        kb = load_knowledge(root)
        rows = load_labelled(path, "tune") if path.exists() else []
    except (KnowledgeError, ValueError) as exc:
        print(f"kurashi kb calibrate: {exc}", file=sys.stderr)
        return 1
    if not rows:
        print(f"kurashi kb calibrate: no tune rows in {path} (rows with \"split\": \"tune\")", file=sys.stderr)
        return 2
    matcher = Matcher.from_knowledge(kb)
    current = matcher.thresholds
    new = calibrate(matcher, rows)
    keys = [k for k in new.dump() if k != "source"]
    print(f"{'threshold':16} {'current':>8} {'calibrated':>10}")
    for k in keys:
        print(f"{k:16} {getattr(current, k)!s:>8} {getattr(new, k)!s:>10}")
    for k, v in new.source.items():
        if k != "method":
            print(f"  {k}: {v}")
    if getattr(args, "write", False):
        write_thresholds(new)
        print(f"wrote {THRESHOLDS_FILE}")
    else:
        print("(dry run: --write saves these to intents/thresholds.yaml)")
    return 0
