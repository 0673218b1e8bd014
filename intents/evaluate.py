"""Accuracy of the matcher on labelled messages (``kurashi kb eval [PATH] [--split …] [--json]``).

Owns reading labelled rows and the metrics. A row is ``{"text", "lang", "intent" (null =
out of scope), "kind", "split"}`` where ``kind`` is one of ``in_scope``, ``urgent``,
``crisis``, ``everyday_trap`` (an everyday message sharing words with an emergency),
``out_of_scope``, and ``split`` is ``tune`` (thresholds are fitted on it, see
``intents/calibrate.py``) or ``test`` (measured only). The project's own set lives in
``intents/data/eval/<lang>.jsonl``, written independently of the knowledge base's
samples: never copy its sentences into ``knowledge/``. Older files without ``kind`` and
``split`` (``../shared/eval/dev.jsonl``) still read: kind follows the intent, every row
is in every split.

Per language the report counts, of the in-scope messages (a row with an intent):
answered right at once, clarified with the right intent offered, answered wrong,
declined; of the out-of-scope ones: declined. Overall also: crisis messages answered
with the crisis intent at once (recall), everyday-trap messages answered with an urgent
(110/119) intent, urgent messages answered right at once. Imports intents/ and knowledge/ only.
"""
from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from intents.crisis import CRISIS_INTENT
from intents.matcher import Match, Matcher

REPO_ROOT = Path(__file__).resolve().parents[1]
EVAL_DIR = Path(__file__).resolve().parent / "data" / "eval"
KINDS = ("in_scope", "urgent", "crisis", "everyday_trap", "out_of_scope")
SPLITS = ("tune", "test")
#: Kept for callers of the first version (the old default file, read when asked for).
DEFAULT_EVAL_FILE = REPO_ROOT / ".." / "shared" / "eval" / "dev.jsonl"


@dataclass(frozen=True)
class Labelled:
    text: str
    intent: str | None
    lang: str | None
    kind: str = "in_scope"
    split: str | None = None          # None: in every split (files without splits)


def default_eval_file() -> Path | None:
    """The project's evaluation set (``intents/data/eval``) when it has files."""
    return EVAL_DIR if EVAL_DIR.is_dir() and any(EVAL_DIR.glob("*.jsonl")) else None


def _read(path: Path) -> list[Labelled]:
    rows: list[Labelled] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON: {exc}") from exc
            if "text" not in obj:
                raise ValueError(f"{path}:{n}: a row needs \"text\" (and \"intent\", null when out of scope)")
            intent = obj.get("intent")
            kind = obj.get("kind") or ("in_scope" if intent else "out_of_scope")
            if kind not in KINDS:
                raise ValueError(f"{path}:{n}: kind {kind!r} is not one of {', '.join(KINDS)}")
            split = obj.get("split")
            if split is not None and split not in SPLITS:
                raise ValueError(f"{path}:{n}: split {split!r} is not one of {', '.join(SPLITS)}")
            rows.append(Labelled(obj["text"], intent, obj.get("lang"), kind, split))
    return rows


def load_labelled(path: Path | str, split: str = "all") -> list[Labelled]:
    """Rows of one JSONL file or of every ``*.jsonl`` in a directory; ``split`` "tune",
    "test" or "all" (rows without a split are in every split)."""
    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    rows = [r for f in files for r in _read(f)]
    if split not in ("all", *SPLITS):
        raise ValueError(f"split {split!r} is not one of all, {', '.join(SPLITS)}")
    return [r for r in rows if split == "all" or r.split in (None, split)]


def outcome(m: Match, truth: str | None) -> str:
    """right / clarified (right intent offered) / clarify_miss / wrong / declined — or, out
    of scope: declined / clarified / answered."""
    if truth is None:
        return {"decline": "declined", "clarify": "clarified"}.get(m.decision, "answered")
    if m.decision == "answer":
        return "right" if m.intent == truth else "wrong"
    if m.decision == "clarify":
        return "clarified" if truth in m.suggestions else "clarify_miss"
    return "declined"


def evaluate(matcher: Matcher, rows: Iterable[Labelled], use_lang: bool = False) -> dict:
    """Metrics of ``matcher`` on labelled rows; ``use_lang`` forces each row's language."""
    per_lang: dict[str, Counter] = defaultdict(Counter)
    per_intent: dict[str, Counter] = defaultdict(Counter)
    confused: Counter = Counter()
    total = Counter()
    oos = Counter()
    special = Counter()
    misses: list[dict] = []
    known = set(getattr(matcher, "intent_ids", []) or [])
    urgent = set(getattr(matcher, "urgent", set())) | {CRISIS_INTENT}
    for row in rows:
        m: Match = matcher.match(row.text, lang=row.lang if use_lang else None)
        lang = row.lang or m.language
        got = outcome(m, row.intent)
        first = m.intent if m.decision == "answer" else (m.suggestions[0] if m.suggestions else None)
        if row.kind == "crisis":
            special["crisis"] += 1
            special["crisis_answered"] += m.decision == "answer" and m.intent == CRISIS_INTENT
        if row.kind == "everyday_trap":
            special["trap"] += 1
            special["trap_emergency"] += m.decision == "answer" and m.intent in urgent
            if m.decision == "answer" and m.intent in urgent:
                misses.append({"text": row.text, "expected": row.intent, "got": m.intent, "decision": m.decision,
                               "kind": row.kind})
        if row.kind == "urgent":
            special["urgent"] += 1
            special["urgent_right"] += got == "right"
        if row.intent is None:
            oos["n"] += 1
            oos[got] += 1
            per_lang[lang]["oos"] += 1
            per_lang[lang]["oos_declined"] += got == "declined"
            if got != "declined":
                misses.append({"text": row.text, "expected": None, "got": m.intent, "decision": m.decision,
                               "kind": row.kind})
            continue
        c = per_lang[lang]
        c["n"] += 1
        c[got] += 1
        c["top1"] += first == row.intent
        total["n"] += 1
        total[got] += 1
        total["top1"] += first == row.intent
        total["unknown_intent"] += bool(known) and row.intent not in known
        total["language_right"] += bool(row.lang) and m.language == row.lang
        per_intent[row.intent]["n"] += 1
        per_intent[row.intent]["right"] += got == "right"
        if got != "right":
            confused[(row.intent, m.intent or "(declined)")] += 1
            misses.append({"text": row.text, "expected": row.intent, "got": m.intent, "decision": m.decision,
                           "suggestions": list(m.suggestions), "kind": row.kind})

    def rate(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    def lang_row(c: Counter) -> dict:
        return {"n": c["n"], "right": rate(c["right"], c["n"]), "clarified": rate(c["clarified"], c["n"]),
                "wrong": rate(c["wrong"], c["n"]), "declined": rate(c["declined"], c["n"]),
                "accuracy": rate(c["top1"], c["n"]), "oos": c["oos"],
                "oos_declined": rate(c["oos_declined"], c["oos"])}

    return {
        "in_scope": total["n"],
        "accuracy": rate(total["top1"], total["n"]),
        "answered_correct_rate": rate(total["right"], total["n"]),
        "clarified_right_rate": rate(total["clarified"], total["n"]),
        "answered_wrong_rate": rate(total["wrong"], total["n"]),
        "declined_rate": rate(total["declined"], total["n"]),
        "in_suggestions_rate": rate(total["right"] + total["clarified"], total["n"]),
        "declined_in_scope": total["declined"],
        "intents_missing_from_kb": total["unknown_intent"],
        "language_accuracy": rate(total["language_right"], total["n"]),
        "out_of_scope": oos["n"],
        "oos_decline_rate": rate(oos["declined"], oos["n"]),
        "oos_answered": oos["answered"],
        "crisis": special["crisis"],
        "crisis_recall": rate(special["crisis_answered"], special["crisis"]),
        "everyday_trap": special["trap"],
        "trap_emergency": special["trap_emergency"],
        "urgent": special["urgent"],
        "urgent_right_rate": rate(special["urgent_right"], special["urgent"]),
        "per_language": {k: lang_row(v) for k, v in sorted(per_lang.items())},
        "per_intent": {k: {"n": v["n"], "accuracy": rate(v["right"], v["n"])} for k, v in sorted(per_intent.items())},
        "confused_pairs": [{"expected": a, "got": b, "count": c} for (a, b), c in confused.most_common(10)],
        "misses": misses,
    }


def format_report(result: dict, path: Path, split: str = "all") -> str:
    pct = lambda x: "  n/a" if x is None else f"{100 * x:5.1f}%"
    lines = [
        f"evaluation on {path} (split: {split})",
        f"  in-scope messages     {result['in_scope']}",
        f"  answered right        {pct(result['answered_correct_rate'])}   at once",
        f"  clarified, right one  {pct(result['clarified_right_rate'])}   offered in the \"Did you mean\"",
        f"  answered wrong        {pct(result['answered_wrong_rate'])}",
        f"  declined              {pct(result['declined_rate'])}",
        f"  language detected     {pct(result['language_accuracy'])}",
        f"  out-of-scope decline  {pct(result['oos_decline_rate'])}   ({result['out_of_scope']} messages)",
        f"  crisis answered       {pct(result['crisis_recall'])}   ({result['crisis']} messages)",
        f"  urgent right at once  {pct(result['urgent_right_rate'])}   ({result['urgent']} messages)",
        f"  everyday trap → 110/119 answer: {result['trap_emergency']} of {result['everyday_trap']}",
        "  per language:   right  clarif  wrong  decl   (n)   OOS decl (n)",
    ]
    for lang, v in result["per_language"].items():
        lines.append(f"    {lang:4}        {pct(v['right'])} {pct(v['clarified'])} {pct(v['wrong'])} "
                     f"{pct(v['declined'])} ({v['n']:3})  {pct(v['oos_declined'])} ({v['oos']})")
    weak = [(k, v) for k, v in result["per_intent"].items() if (v["accuracy"] or 0) < 1]
    lines.append(f"  intents not always answered right at once: {len(weak)} of {len(result['per_intent'])}")
    for k, v in weak:
        lines.append(f"    {k:32} {pct(v['accuracy'])}  (n={v['n']})")
    if result["confused_pairs"]:
        lines.append("  most confused (expected → got):")
        for c in result["confused_pairs"]:
            lines.append(f"    {c['expected']} → {c['got']}  ×{c['count']}")
    if result["intents_missing_from_kb"]:
        lines.append(f"  note: {result['intents_missing_from_kb']} rows name intents the knowledge base lacks")
    return "\n".join(lines)


def cli_eval(args) -> int:
    """``kurashi kb eval [PATH] [--split test|tune|all] [--json]``."""
    from knowledge.loader import KnowledgeError, load_knowledge

    path = getattr(args, "file", None)
    if path is None:
        path = default_eval_file()
        if path is None:
            print(f"kurashi kb eval: no PATH given and {EVAL_DIR} has no *.jsonl; pass a labelled JSONL "
                  "file or directory: one {\"text\", \"intent\", \"lang\", \"kind\", \"split\"} per line",
                  file=sys.stderr)
            return 2
    path = Path(path)
    if not path.exists():
        print(f"kurashi kb eval: {path} does not exist", file=sys.stderr)
        return 2
    split = getattr(args, "split", None) or "test"
    try:
        kb = load_knowledge(getattr(args, "knowledge", None))
        rows = load_labelled(path, split)
    except (KnowledgeError, ValueError) as exc:
        print(f"kurashi kb eval: {exc}", file=sys.stderr)
        return 1
    result = evaluate(Matcher.from_knowledge(kb), rows)
    if getattr(args, "json", False):
        print(json.dumps({"file": str(path), "split": split, **result}, ensure_ascii=False, indent=2))
    else:
        print(format_report(result, path, split))
    return 0
