"""Calibrate the matcher's thresholds from the knowledge base itself (``kurashi kb calibrate [--write]``).

Owns the calibration procedure, deterministic from the knowledge base and files in this
package (never from ../shared/eval, which is only for measuring):

- positives: every sample question of the knowledge base, matched leave-one-out (its own
  entry hidden, everything else in the index), language detected as in production; and
  the keyword fragment of each longer sample (``fragment``), with its sample hidden too;
- negatives: ``intents/data/out_of_scope.yaml`` (hand-written off-topic messages in the
  core languages and some extra ones) plus seeded gibberish in each script, emoji-only,
  digits-only and punctuation-only messages;
- first the scoring weights (TF-IDF share, other-language penalty) are picked by
  leave-one-out top-1 accuracy on a small grid, then the decision thresholds by a grid
  search maximising a utility in which a wrong answer costs more than a clarification,
  and answering an off-topic message costs most.

Writes ``intents/thresholds.yaml`` with ``--write``. Imports intents/ and knowledge/ only.
"""
from __future__ import annotations

import itertools
import random
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

from intents.catalog import cjk_view, match_key, ngram_features
from intents.langdetect import detect_language
from intents.matcher import THRESHOLDS_FILE, Matcher, Thresholds
from intents.normalize import DIGIT, is_cjk_text, script_profile

NEGATIVES_FILE = Path(__file__).resolve().parent / "data" / "out_of_scope.yaml"
SEED = 20240601

# Utility of each outcome. In scope: answering right is the goal; a wrong answer misleads
# (worse than asking back); a clarification with the right choice among the buttons is
# fine; a decline sends the resident to the menu. Out of scope: declining is right.
U_RIGHT, U_WRONG, U_CLARIFY_HIT, U_CLARIFY_MISS, U_DECLINE_POS = 1.0, -1.5, 0.4, -0.3, -0.5
U_NEG_DECLINE, U_NEG_CLARIFY, U_NEG_ANSWER = 1.0, -0.4, -2.0
#: Off-topic messages weigh as much as this share of the positives in total.
NEG_SHARE = 0.5

W_TFIDF_GRID = (0.3, 0.5, 0.7)
OTHER_LANG_GRID = (0.9, 1.0)
W_CENTROID_GRID = (0.2, 0.4, 0.6)
W_MAX_GRID = (0.3,)
TOP_K_GRID = (2, 3)
ANSWER_GRID = np.round(np.arange(0.10, 0.951, 0.01), 2)
MARGIN_GRID = np.round(np.arange(0.0, 0.201, 0.01), 2)
CLARIFY_GRID = np.round(np.arange(0.05, 0.601, 0.01), 2)
URGENT_OFFSETS = (0.0, 0.05, 0.1)
KNOWN_GRID = (0.0, 0.2, 0.3, 0.4, 0.5)


def gibberish(seed: int = SEED) -> list[str]:
    """Seeded nonsense in every script the bot meets, plus emoji/digit/punctuation-only lines."""
    rnd = random.Random(seed)
    out: list[str] = []
    letters = "abcdefghijklmnopqrstuvwxyz"
    for _ in range(25):
        words = ["".join(rnd.choice(letters) for _ in range(rnd.randint(3, 8))) for _ in range(rnd.randint(1, 3))]
        out.append(" ".join(words))
    for lo, hi, name in ((0x4E00, 0x9FA5, "han"), (0xAC00, 0xD7A3, "hangul"), (0x3041, 0x3093, "kana")):
        for _ in range(12):
            out.append("".join(chr(rnd.randint(lo, hi)) for _ in range(rnd.randint(2, 6))))
    out += ["😀", "👍👍", "🙏😭", "🎉🎉🎉", "12345", "0000", "2024 11 25", "???", "...", "!!!", "", "   "]
    return out


def load_negatives(path: Path = NEGATIVES_FILE) -> list[str]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [t for lang in sorted(data) for t in data[lang]]


@dataclass
class _Query:
    text: str
    truth: int | None               # catalog intent index, None = out of scope
    exclude: int | None
    key: str
    language: str
    has_letters: bool
    known: float
    exact: int | None
    cos: np.ndarray | None
    rf: np.ndarray | None
    cc: np.ndarray | None


def fragment(key: str, idf: dict[str, float]) -> str | None:
    """The keyword fragment a resident might type instead of the whole sample: the two
    rarest words (Latin, in their order) or the rarest 3-character run (CJK)."""
    if is_cjk_text(key):
        chars = cjk_view(key)
        if len(chars) < 5:
            return None
        weight = [idf.get("1:" + ch, 0.0) for ch in chars]
        start = max(range(len(chars) - 2), key=lambda i: (sum(weight[i:i + 3]), -i))
        return chars[start:start + 3]
    words = key.split()
    if len(words) < 3:
        return None
    rare = sorted(range(len(words)), key=lambda i: (-idf.get("w:" + words[i], 99.0), i))[:2]
    return " ".join(words[i] for i in sorted(rare))


def _queries(matcher: Matcher) -> list[_Query]:
    cat = matcher.catalog
    qs: list[_Query] = []
    items: list[tuple[str, int | None, int | None]] = [
        (e.text, cat.intent_pos[e.intent], i) for i, e in enumerate(cat.entries) if not e.is_term]
    # Residents often type only keywords: each sample's keyword fragment, its sample hidden too.
    for i, e in enumerate(cat.entries):
        frag = None if e.is_term else fragment(e.key, cat.tfidf.idf)
        if frag:
            items.append((frag, cat.intent_pos[e.intent], i))
    items += [(t, None, None) for t in load_negatives() + gibberish()]
    for text, truth, exclude in items:
        key = match_key(text)
        language, _ = detect_language(text)
        has_letters = any(s != DIGIT for s in script_profile(key))
        exact = None
        if key and (exclude is None or cat.entries[exclude].key != key):
            hit = cat.exact.get(cjk_view(key) if is_cjk_text(key) else key)
            exact = cat.intent_pos[hit] if hit is not None else None
        if key and len(cat.entries):
            cos, rf, known, cc = matcher.signals(key)
            if exclude is not None:
                cc = matcher.centroid_without(cc, cos, exclude)
                # n-grams only the hidden entry has would be unknown without it.
                feats = ngram_features(key)
                own = cat.tfidf.vectors[exclude]
                unknown = sum(1 for g in feats if g not in cat.tfidf.df or (cat.tfidf.df[g] == 1 and g in own))
                known = 1.0 - unknown / len(feats) if feats else 0.0
        else:
            cos = rf = cc = None
            known = 0.0
        qs.append(_Query(text, truth, exclude, key, language, has_letters, known, exact, cos, rf, cc))
    return qs


@dataclass
class _Features:
    truth: np.ndarray       # int, -1 = out of scope
    best: np.ndarray
    second: np.ndarray
    best_intent: np.ndarray
    hit3: np.ndarray        # truth among the top 3
    urgent: np.ndarray
    known: np.ndarray
    exact: np.ndarray       # int, -1 = none
    usable: np.ndarray      # has letters and a key


def _features(matcher: Matcher, qs: list[_Query], w: float, other: float, wc: float, wm: float,
              k: int) -> _Features:
    cat = matcher.catalog
    n = len(qs)
    f = _Features(*(np.zeros(n, dtype=t) for t in (np.int32, np.float32, np.float32, np.int32, bool, bool,
                                                      np.float32, np.int32, bool)))
    urgent = np.asarray([iid in cat.urgent for iid in cat.intent_ids], dtype=bool)
    for i, q in enumerate(qs):
        f.truth[i] = -1 if q.truth is None else q.truth
        f.exact[i] = -1 if q.exact is None else q.exact
        f.known[i] = q.known
        f.usable[i] = bool(q.key) and q.has_letters
        if q.cos is None:
            f.best_intent[i] = -1
            continue
        s = matcher.combine(q.cos, q.rf, matcher.same_language(q.language), w, other)
        if q.exclude is not None:
            s[q.exclude] = 0.0
        scores = matcher.aggregate(s, q.cc, top_k=k, w_max=wm, w_centroid=wc)
        top = np.argsort(-scores, kind="stable")[:3]
        f.best_intent[i] = top[0]
        f.best[i] = scores[top[0]]
        f.second[i] = scores[top[1]] if len(top) > 1 else 0.0
        f.hit3[i] = q.truth is not None and q.truth in top
        f.urgent[i] = urgent[top[0]]
    return f


def _search(f: _Features) -> tuple[dict, float, dict]:
    """Grid search of the decision thresholds; returns (thresholds, utility, outcome rates)."""
    pos = f.truth >= 0
    neg = ~pos
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    w_neg = max(1.0, NEG_SHARE * n_pos / max(1, n_neg))
    correct = (f.best_intent == f.truth) & pos
    exact_hit = f.exact >= 0
    exact_right = exact_hit & (f.exact == f.truth)
    gap = f.best - f.second
    # Utility of each outcome per query (answer / clarify / decline).
    u_answer = np.where(pos, np.where(correct, U_RIGHT, U_WRONG), U_NEG_ANSWER * w_neg)
    u_clarify = np.where(pos, np.where(f.hit3, U_CLARIFY_HIT, U_CLARIFY_MISS), U_NEG_CLARIFY * w_neg)
    u_decline = np.where(pos, U_DECLINE_POS, U_NEG_DECLINE * w_neg)
    u_exact = np.where(pos, np.where(exact_right, U_RIGHT, U_WRONG), U_NEG_ANSWER * w_neg)
    base_exact = float(u_exact[exact_hit].sum())
    rest = ~exact_hit
    best_u, best_th = -np.inf, None
    # For the (answer, margin) pair a query is answered iff best >= answer and gap >= margin:
    # bin each query by the last grid value it passes on both axes, then a 2-D suffix sum
    # gives the utility gain of answering instead of clarifying for every pair at once.
    best64, gap64 = f.best.astype(np.float64), gap.astype(np.float64)
    a_bin = np.searchsorted(ANSWER_GRID, best64 + 1e-9, side="right") - 1
    m_bin = np.searchsorted(MARGIN_GRID, gap64 + 1e-9, side="right") - 1
    passes = (a_bin >= 0) & (m_bin >= 0)
    delta = u_answer - u_clarify
    for known_min in KNOWN_GRID:
        for clarify in CLARIFY_GRID:
            declined = rest & (~f.usable | (f.best < clarify) | (f.known < known_min))
            live = rest & ~declined
            u_dec = float(u_decline[declined].sum())
            allowed = ANSWER_GRID >= clarify - 1e-9
            for off in URGENT_OFFSETS:
                urgent_th = round(float(clarify) + off, 2)
                # The conversation engine answers an urgent top-1 at once, even when the matcher
                # clarifies (bot/conversation/engine.py): every live urgent top-1 is an answer.
                urg = live & f.urgent
                normal = live & ~urg
                u_urg = float(u_answer[urg].sum())
                u_cla = float(u_clarify[normal].sum())
                sel = normal & passes
                hist = np.zeros((len(ANSWER_GRID), len(MARGIN_GRID)))
                np.add.at(hist, (a_bin[sel], m_bin[sel]), delta[sel])
                gain = hist[::-1, ::-1].cumsum(axis=0).cumsum(axis=1)[::-1, ::-1]
                gain[~allowed, :] = -np.inf
                j, m = np.unravel_index(int(np.argmax(gain)), gain.shape)   # first maximum: deterministic
                total = base_exact + u_dec + u_urg + u_cla + float(gain[j, m])
                if total > best_u + 1e-9:
                    best_u = total
                    best_th = {"answer": float(ANSWER_GRID[j]), "margin": float(MARGIN_GRID[m]),
                               "clarify": float(clarify), "urgent": urgent_th, "min_known": float(known_min)}
    # Outcome rates at the chosen thresholds.
    th = best_th
    declined = rest & (~f.usable | (f.best < th["clarify"]) | (f.known < th["min_known"]))
    live = rest & ~declined
    urg = live & f.urgent
    answered = exact_hit | urg | (live & ~urg & (f.best >= th["answer"]) & (gap >= th["margin"]))
    right = (exact_hit & exact_right) | (answered & ~exact_hit & correct)
    rates = {
        "positives": n_pos, "negatives": n_neg,
        "loo_top1": round(float(correct[pos].mean()), 4) if n_pos else None,
        "loo_answered_right": round(float(right[pos].mean()), 4) if n_pos else None,
        "loo_answered_wrong": round(float((answered & ~right)[pos].mean()), 4) if n_pos else None,
        "negatives_declined": round(float(declined[neg].mean()), 4) if n_neg else None,
        "negatives_answered": round(float(answered[neg].mean()), 4) if n_neg else None,
    }
    return best_th, best_u, rates


def calibrate(matcher: Matcher) -> Thresholds:
    """New thresholds for ``matcher``'s catalog (its current thresholds only give defaults)."""
    qs = _queries(matcher)
    best = None
    for w, other, wc, wm, k in itertools.product(W_TFIDF_GRID, OTHER_LANG_GRID, W_CENTROID_GRID, W_MAX_GRID,
                                                 TOP_K_GRID):
        f = _features(matcher, qs, w, other, wc, wm, k)
        pos = f.truth >= 0
        acc = float(((f.best_intent == f.truth) & pos).sum()) / max(1, int(pos.sum()))
        if best is None or acc > best[0] + 1e-9:
            best = (acc, {"w_tfidf": w, "other_language": other, "w_centroid": wc, "w_max": wm, "top_k": k}, f)
    _, weights, f = best
    th, utility, rates = _search(f)
    source = {"method": "leave-one-out over knowledge-base samples + intents/data/out_of_scope.yaml + "
                        "seeded gibberish; `kurashi kb calibrate --write`",
              "utility": round(utility, 3), **rates}
    return replace(matcher.thresholds, source=source, **weights, **th)


def write_thresholds(th: Thresholds, path: Path | None = None) -> None:
    path = path or THRESHOLDS_FILE
    header = ("# Decision thresholds and scoring weights of the intent matcher (intents/matcher.py).\n"
              "# Generated by `kurashi kb calibrate --write` from the knowledge base's own samples\n"
              "# (leave-one-out) and intents/data/out_of_scope.yaml; do not edit by hand.\n")
    path.write_text(header + yaml.safe_dump(th.dump(), sort_keys=False, allow_unicode=True), encoding="utf-8")


def cli_calibrate(args) -> int:
    """``kurashi kb calibrate [--write]``; args.write: bool."""
    from knowledge.loader import DEFAULT_DIR, KnowledgeError, load_knowledge

    root = getattr(args, "knowledge", None)
    if getattr(args, "write", False) and root is not None and Path(root).resolve() != DEFAULT_DIR.resolve():
        # intents/thresholds.yaml belongs to the installed knowledge base; thresholds of
        # another one (a test fixture, a draft) must not silently replace them.
        print("kurashi kb calibrate: --write only calibrates the installed knowledge base; "
              "drop --knowledge or drop --write", file=sys.stderr)
        return 2
    try:
        kb = load_knowledge(root)
    except KnowledgeError as exc:
        print(f"kurashi kb calibrate: {exc}", file=sys.stderr)
        return 1
    matcher = Matcher.from_knowledge(kb)
    current = matcher.thresholds
    new = calibrate(matcher)
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
