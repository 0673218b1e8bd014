"""Accuracy of the matcher on a labelled JSONL file (``kurashi kb eval [FILE] [--json]``).

Owns: reading labelled rows ``{"lang", "intent" (null = out of scope), "text"}``, the
metrics (top-1 accuracy overall / per language / per intent, strict "answered right
away" accuracy, out-of-scope decline rate, most confused intent pairs) and their text
and JSON reports. The default file is ``../shared/eval/dev.jsonl`` next to the repo root;
it is for measuring only, never for calibration. Imports intents/ and knowledge/ only.
"""
from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from intents.matcher import Match, Matcher

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EVAL_FILE = REPO_ROOT / ".." / "shared" / "eval" / "dev.jsonl"


@dataclass(frozen=True)
class Labelled:
    text: str
    intent: str | None
    lang: str | None


def default_eval_file() -> Path | None:
    """``../shared/eval/dev.jsonl`` relative to the repo root, when present."""
    path = DEFAULT_EVAL_FILE.resolve()
    return path if path.exists() else None


def load_labelled(path: Path | str) -> list[Labelled]:
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
            rows.append(Labelled(obj["text"], obj.get("intent"), obj.get("lang")))
    return rows


def evaluate(matcher: Matcher, rows: Iterable[Labelled], use_lang: bool = False) -> dict:
    """Metrics of ``matcher`` on labelled rows; ``use_lang`` forces each row's language."""
    per_lang: dict[str, Counter] = defaultdict(Counter)
    per_intent: dict[str, Counter] = defaultdict(Counter)
    confused: Counter = Counter()
    oos = Counter()
    total = Counter()
    misses: list[dict] = []
    known = set(matcher.catalog.intent_ids)
    for row in rows:
        m: Match = matcher.match(row.text, lang=row.lang if use_lang else None)
        lang = row.lang or m.language
        predicted = m.intent if m.decision != "decline" else None
        if row.intent is None:
            oos["n"] += 1
            oos["declined"] += m.decision == "decline"
            oos["answered"] += m.decision == "answer"
            if m.decision != "decline":
                misses.append({"text": row.text, "expected": None, "got": predicted, "decision": m.decision})
            continue
        correct = predicted == row.intent
        total["n"] += 1
        total["correct"] += correct
        total["answered_correct"] += correct and m.decision == "answer"
        total["answered_wrong"] += (not correct) and m.decision == "answer"
        total["in_suggestions"] += correct or row.intent in m.suggestions
        total["declined"] += m.decision == "decline"
        total["unknown_intent"] += row.intent not in known
        total["language_right"] += bool(row.lang) and m.language == row.lang
        per_lang[lang]["n"] += 1
        per_lang[lang]["correct"] += correct
        per_intent[row.intent]["n"] += 1
        per_intent[row.intent]["correct"] += correct
        if not correct:
            confused[(row.intent, predicted or "(declined)")] += 1
            misses.append({"text": row.text, "expected": row.intent, "got": predicted, "decision": m.decision})

    def rate(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    return {
        "in_scope": total["n"],
        "accuracy": rate(total["correct"], total["n"]),
        "answered_correct_rate": rate(total["answered_correct"], total["n"]),
        "answered_wrong_rate": rate(total["answered_wrong"], total["n"]),
        "in_suggestions_rate": rate(total["in_suggestions"], total["n"]),
        "declined_in_scope": total["declined"],
        "intents_missing_from_kb": total["unknown_intent"],
        "language_accuracy": rate(total["language_right"], total["n"]),
        "out_of_scope": oos["n"],
        "oos_decline_rate": rate(oos["declined"], oos["n"]),
        "oos_answered": oos["answered"],
        "per_language": {k: {"n": v["n"], "accuracy": rate(v["correct"], v["n"])} for k, v in sorted(per_lang.items())},
        "per_intent": {k: {"n": v["n"], "accuracy": rate(v["correct"], v["n"])} for k, v in sorted(per_intent.items())},
        "confused_pairs": [{"expected": a, "got": b, "count": c} for (a, b), c in confused.most_common(10)],
        "misses": misses,
    }


def format_report(result: dict, path: Path) -> str:
    pct = lambda x: "  n/a" if x is None else f"{100 * x:5.1f}%"
    lines = [
        f"evaluation on {path}",
        f"  in-scope messages     {result['in_scope']}",
        f"  top-1 accuracy        {pct(result['accuracy'])}   (intent right; answer or first clarify choice)",
        f"  answered right away   {pct(result['answered_correct_rate'])}   answered wrong {pct(result['answered_wrong_rate'])}",
        f"  right in top-3        {pct(result['in_suggestions_rate'])}",
        f"  language detected     {pct(result['language_accuracy'])}",
        f"  out-of-scope decline  {pct(result['oos_decline_rate'])}   ({result['out_of_scope']} messages)",
        "  per language:",
    ]
    for lang, v in result["per_language"].items():
        lines.append(f"    {lang:4} {pct(v['accuracy'])}  (n={v['n']})")
    weak = [(k, v) for k, v in result["per_intent"].items() if (v["accuracy"] or 0) < 1]
    lines.append(f"  intents below 100%: {len(weak)} of {len(result['per_intent'])}")
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
    """``kurashi kb eval [FILE] [--json]``; args.file: Path | None, args.json: bool."""
    from knowledge.loader import KnowledgeError, load_knowledge

    path = getattr(args, "file", None)
    if path is None:
        path = default_eval_file()
        if path is None:
            print("kurashi kb eval: no FILE given and ../shared/eval/dev.jsonl (next to the repo root) "
                  "is not there; pass a labelled JSONL file: one {\"text\", \"intent\", \"lang\"} per line",
                  file=sys.stderr)
            return 2
    path = Path(path)
    if not path.exists():
        print(f"kurashi kb eval: {path} does not exist", file=sys.stderr)
        return 2
    try:
        kb = load_knowledge(getattr(args, "knowledge", None))
        rows = load_labelled(path)
    except (KnowledgeError, ValueError) as exc:
        print(f"kurashi kb eval: {exc}", file=sys.stderr)
        return 1
    result = evaluate(Matcher.from_knowledge(kb), rows)
    if getattr(args, "json", False):
        print(json.dumps({"file": str(path), **result}, ensure_ascii=False, indent=2))
    else:
        print(format_report(result, path))
    return 0
