"""`kurashi kb check|eval|calibrate` — the operator's tools for the knowledge base.

Owns the command-line surface only: ``check`` prints ``knowledge.validate.check_knowledge``
(text, or JSON with ``--json``) and exits 1 on any error; ``eval`` and ``calibrate``
delegate to the matcher's ``intents.evaluate.cli_eval`` / ``intents.calibrate.cli_calibrate``
(imported inside the handlers so `kb check` works even while the matcher is broken).
Imports no platform SDK.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.cli._knowledge import knowledge_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    kb = subparsers.add_parser("kb", help="check, evaluate and calibrate the knowledge base")
    kb_sub = kb.add_subparsers(dest="kb_command", metavar="KB_COMMAND")
    kb.set_defaults(func=lambda args: (kb.print_help(), 2)[1])

    check = kb_sub.add_parser("check", help="validate every knowledge file; exit 1 on any error")
    check.add_argument("--json", action="store_true", help="print the report as one JSON object")
    check.add_argument("--root", type=Path, default=None,
                       help="knowledge directory to check (default: $KNOWLEDGE_DIR, else the installed knowledge/)")
    check.add_argument("--spec", type=Path, default=None,
                       help="spec/intents.yaml with the required intents (default: ../shared/spec when present)")
    check.add_argument("--no-train", action="store_true",
                       help="do not (re)build the intent model's cache after a clean check")
    check.set_defaults(func=check_kb)

    evaluate = kb_sub.add_parser("eval", help="matcher accuracy on the labelled evaluation set")
    evaluate.add_argument("file", nargs="?", default=None, type=Path,
                          help="labelled JSONL file or directory (default: intents/data/eval)")
    evaluate.add_argument("--split", choices=("test", "tune", "all"), default="test",
                          help="which rows to measure (default: test; thresholds are fitted on tune)")
    evaluate.add_argument("--json", action="store_true", help="print the results as JSON")
    evaluate.add_argument("--knowledge", type=Path, default=None,
                          help="knowledge base directory (default: $KNOWLEDGE_DIR, else the installed knowledge/)")
    evaluate.set_defaults(func=evaluate_kb)

    calibrate = kb_sub.add_parser("calibrate", help="fit the matcher's decision thresholds on the tune split")
    calibrate.add_argument("--write", action="store_true", help="write them to intents/thresholds.yaml")
    calibrate.add_argument("--eval", type=Path, default=None,
                           help="labelled JSONL file or directory whose tune rows are used (default: intents/data/eval)")
    calibrate.add_argument("--knowledge", type=Path, default=None,
                           help="knowledge base directory (default: $KNOWLEDGE_DIR, else the installed knowledge/)")
    calibrate.set_defaults(func=calibrate_kb)


def check_kb(args: argparse.Namespace) -> int:
    """Print every error and warning with file and line; 1 when there is any error."""
    from knowledge.validate import check_knowledge

    report = check_knowledge(knowledge_dir(args.root), spec=args.spec)
    if args.json:
        data = report.as_dict()
        data["per_check"] = {code: {"errors": e, "warnings": w} for code, (e, w) in per_check(report).items()}
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0 if report.ok else 1
    for problem in report.errors + report.warnings:
        print(problem)
    core = ", ".join(
        f"{lang} {report.languages[lang]['answered']}/{report.intents}" for lang in report.languages
    )
    print(f"{report.intents} intents; answered: {core}")
    print("per check:")
    for code, (errors, warnings) in per_check(report).items():
        print(f"  {code:<28} {errors:>4} error(s) {warnings:>5} warning(s)")
    print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    if report.ok and not args.no_train:
        _prime_model_cache(report.kb)
    print("OK" if report.ok else "FAILED", file=sys.stderr)
    return 0 if report.ok else 1


def _prime_model_cache(kb) -> None:
    """Train (or find) the intent model of this knowledge base and cache it, so the restart
    that follows an edit (edit samples → kb check → restart) loads it instead of training."""
    try:
        from intents.model import IntentModel

        model = IntentModel.load_or_train(kb)
    except Exception as exc:  # noqa: BLE001 - the check itself passed; serve would train and say why
        print(f"intent model: not cached ({type(exc).__name__}: {exc})")
        return
    if model.cache_hit:
        print("intent model: up to date in the cache")
    else:
        print(f"intent model: trained in {model.load_seconds:.1f} s and cached; "
              "the next start loads it instead of training")


def per_check(report) -> dict[str, tuple[int, int]]:
    """(errors, warnings) per check code, sorted by code."""
    counts: dict[str, list[int]] = {}
    for index, problems in enumerate((report.errors, report.warnings)):
        for problem in problems:
            counts.setdefault(problem.code, [0, 0])[index] += 1
    return {code: (e, w) for code, (e, w) in sorted(counts.items())}


def evaluate_kb(args: argparse.Namespace) -> int:
    """Accuracy per language and intent, decline rate, most-confused pairs (the matcher's)."""
    from intents.evaluate import cli_eval

    args.knowledge = knowledge_dir(args.knowledge)
    return cli_eval(args)


def calibrate_kb(args: argparse.Namespace) -> int:
    """Recompute thresholds on data (the matcher's), optionally writing them."""
    from intents.calibrate import cli_calibrate

    args.knowledge = knowledge_dir(args.knowledge)
    return cli_calibrate(args)
