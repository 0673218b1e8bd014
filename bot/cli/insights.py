"""`kurashi insights …`: what residents asked that the bot could not answer, and 👎 feedback —
the same data as the console's /console/insights pages, for the city's operators.

  kurashi insights unanswered [--lang L] [--decision decline|clarify_abandoned]
                              [--status open|resolved|all] [--limit N] [--json]
  kurashi insights feedback [--intent ID] [--lang L] [--limit N] [--json]
  kurashi insights export-samples --intent ID --lang L [--limit N] [--indent N]

The operator's loop: see the gap (``unanswered``) → ``export-samples`` prints the open
questions of one language as a YAML list to paste under the intent's ``samples.<lang>`` in
knowledge/topics/<group>.yaml → edit → ``kurashi kb check``.

JSON contract (``--json``, one object on stdout):
  unanswered: {"filters": {"language", "decision", "status"}, "total_rows", "total_groups",
               "truncated", "groups": [{"key", "text", "count", "variants", "languages": {lang: n},
               "decisions": {decision: n}, "first_at", "last_at"}]}   (most frequent first)
  feedback:   {"filters": {"intent", "language"}, "intents": [{"intent", "up", "down", "total",
               "down_ratio"}], "negative_total", "negative": [{"id", "intent", "language",
               "question", "created_at"}]}   (intents: most 👎 first; negative: newest first)

Reads DATABASE_URL (Settings().database_url); never changes the schema. Owns only argument
parsing and printing; the queries are bot/insights.py. Must not import the conversation core
or channel adapters.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from bot.timefmt import jst

DECISIONS = ("decline", "clarify_abandoned")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("insights", help="unanswered questions and 👎 feedback (for operators)")
    sub = parser.add_subparsers(dest="insights_command", metavar="INSIGHTS_COMMAND")

    unanswered = sub.add_parser("unanswered", help="unanswered questions grouped by normalised text")
    unanswered.add_argument("--lang", help="only this language (ja, en, vi, …)")
    unanswered.add_argument("--decision", choices=DECISIONS)
    unanswered.add_argument("--status", choices=("open", "resolved", "all"), default="open",
                            help="open (default), resolved or all")
    unanswered.add_argument("--limit", type=int, default=30, help="groups to show (default 30)")
    unanswered.add_argument("--json", action="store_true", help="one JSON object on stdout")
    unanswered.set_defaults(func=run_unanswered)

    feedback = sub.add_parser("feedback", help="👍/👎 per intent and the 👎 with the resident's question")
    feedback.add_argument("--intent", help="only this intent id")
    feedback.add_argument("--lang", help="only this language")
    feedback.add_argument("--limit", type=int, default=30, help="👎 rows to show (default 30)")
    feedback.add_argument("--json", action="store_true", help="one JSON object on stdout")
    feedback.set_defaults(func=run_feedback)

    export = sub.add_parser("export-samples",
                            help="open unanswered questions of one language as a YAML samples list")
    export.add_argument("--intent", required=True, help="the intent the samples are for (checked in the KB)")
    export.add_argument("--lang", required=True, help="the samples' language")
    export.add_argument("--decision", choices=DECISIONS)
    export.add_argument("--limit", type=int, default=50, help="samples at most (default 50)")
    export.add_argument("--indent", type=int, default=0, help="spaces before each line (8 = under samples.<lang>:)")
    export.set_defaults(func=run_export_samples)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _query(work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``work(session)`` read-only on DATABASE_URL; SystemExit(1) when the schema is missing."""
    from sqlalchemy.exc import DBAPIError

    from bot.db.session import create_engine_and_sessionmaker
    from bot.settings import Settings

    async def run() -> Any:
        engine, maker = create_engine_and_sessionmaker(Settings().database_url)
        try:
            async with maker() as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except DBAPIError as exc:
        print(f"kurashi insights: cannot read the database ({type(exc.orig).__name__}); "
              "is it upgraded? run `kurashi db upgrade`", file=sys.stderr)
        raise SystemExit(1) from None


def _one_line(text: str | None, width: int = 70) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _dump(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def run_unanswered(args: argparse.Namespace) -> int:
    """Print the most frequent unanswered questions (groups of the same normalised text)."""
    from bot import insights

    filters = {"language": args.lang or None, "decision": args.decision, "status": args.status}
    limit = max(args.limit, 0)
    grouped = _query(lambda s: insights.unanswered_groups(s, **filters, limit=limit))
    if args.json:
        _dump({"filters": filters, "total_rows": grouped.total_rows, "total_groups": grouped.total_groups,
               "truncated": grouped.truncated, "groups": [g.as_dict() for g in grouped.groups]})
        return 0
    print(f"{grouped.total_rows} {args.status} unanswered questions in {grouped.total_groups} groups"
          + (f" (showing {len(grouped.groups)})" if len(grouped.groups) < grouped.total_groups else ""))
    if grouped.truncated:
        print(f"note: only the {insights.MAX_DISTINCT} most recent distinct texts were counted")
    for g in grouped.groups:
        langs = ",".join(g.languages)
        print(f"{g.count:5}  {langs:<8} {jst(g.last_at)}  {_one_line(g.text)}")
    return 0


def run_feedback(args: argparse.Namespace) -> int:
    """Print 👍/👎 per intent and the latest 👎 with the question the resident typed."""
    from bot import insights

    filters = {"intent": args.intent or None, "language": args.lang or None}
    limit = max(args.limit, 0)

    async def work(session: Any) -> tuple[Any, int, Any]:
        return (await insights.intent_votes(session, **filters),
                await insights.count_negative_feedback(session, **filters),
                await insights.negative_feedback(session, **filters, limit=limit))

    votes, total, negative = _query(work)
    if args.json:
        _dump({"filters": filters, "intents": [v.as_dict() for v in votes], "negative_total": total,
               "negative": [{"id": f.id, "intent": f.intent, "language": f.language, "question": f.question,
                             "created_at": f.created_at.isoformat()} for f in negative]})
        return 0
    print(f"{'intent':<32} {'👍':>5} {'👎':>5} {'👎 share':>9}")
    for v in votes:
        print(f"{v.intent:<32} {v.up:5} {v.down:5} {v.down_ratio:9.0%}")
    print(f"\n{total} 👎" + (f" (latest {len(negative)})" if len(negative) < total else ""))
    for f in negative:
        print(f"{jst(f.created_at)}  {f.intent:<28} {f.language or '?':<3} {_one_line(f.question) or '–'}")
    return 0


def run_export_samples(args: argparse.Namespace) -> int:
    """Print open unanswered questions of --lang as a YAML list for --intent's samples."""
    import yaml

    from bot import insights
    from bot.settings import Settings
    from knowledge.loader import KnowledgeError, load_knowledge
    from knowledge.schema import LANGUAGES

    if args.lang not in LANGUAGES:
        print(f"kurashi insights: unknown language {args.lang!r} (one of {', '.join(LANGUAGES)})", file=sys.stderr)
        return 2
    where = "its file under knowledge/topics/"
    existing: list[str] = []
    try:
        kb = load_knowledge(Settings().knowledge_dir)
    except KnowledgeError as exc:
        # The operator may be half-way through an edit: export anyway, without the check.
        print(f"warning: the knowledge base has {len(exc.problems)} errors (see `kurashi kb check`); "
              "the intent and its current samples were not checked", file=sys.stderr)
    else:
        intent = kb.intents.get(args.intent)
        if intent is None:
            print(f"kurashi insights: unknown intent {args.intent!r} (see `kurashi kb check`)", file=sys.stderr)
            return 2
        existing = list(intent.samples.get(args.lang, []))  # type: ignore[call-overload]
        group = next((g for g, ids in kb.groups.items() if args.intent in ids), None)
        if group:
            where = f"knowledge/topics/{group}.yaml"

    samples, skipped = _query(lambda s: insights.export_samples(
        s, args.lang, existing=existing, decision=args.decision, limit=max(args.limit, 0)))
    pad = " " * max(args.indent, 0)
    print(f"{pad}# {len(samples)} open unanswered questions in {args.lang}, most frequent first"
          + (f"; {skipped} already among the samples were left out" if skipped else ""))
    print(f"{pad}# paste under intent {args.intent} → samples → {args.lang}: in {where},")
    print(f"{pad}# keep only those this intent really answers, then run `kurashi kb check`")
    if samples:
        text = yaml.safe_dump(samples, allow_unicode=True, default_flow_style=False, width=1000, sort_keys=False)
        sys.stdout.write("".join(pad + line for line in text.splitlines(keepends=True)))
    return 0
