"""`kurashi consult stats [--org ORG] [--days N] [--json]`: consultation statistics —
the distribution of residents' ratings 1–5 (the city's satisfaction measure), cases per
status, organisation and topic, and first-response times.

Owns only argument parsing and printing; queries are in bot/consult/cases.py (ratings)
and here (counts). Must not import the conversation engine or channel adapters.
"""
from __future__ import annotations

import argparse
import asyncio
import json
from datetime import timedelta
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("consult", help="consultation cases")
    sub = parser.add_subparsers(dest="consult_command", metavar="CONSULT_COMMAND")
    stats = sub.add_parser("stats", help="rating distribution and case counts")
    stats.add_argument("--org", help="only this organisation")
    stats.add_argument("--days", type=float, help="only cases closed in the last N days (ratings)")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=run_stats)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


async def collect_stats(session: Any, *, org: str | None = None, since: Any = None) -> dict[str, Any]:
    """Ratings (0 = closed without a rating), counts by status/org/topic, median first response."""
    from sqlalchemy import func, select

    from bot.consult.cases import rating_distribution
    from bot.db.consult_models import CASE_DRAFT, Case

    ratings = await rating_distribution(session, org=org, since=since)
    rated = {k: v for k, v in ratings.items() if k}
    total_rated = sum(rated.values())
    base = select(Case).where(Case.status != CASE_DRAFT)
    if org:
        base = base.where(Case.org == org)
    sub = base.subquery()
    counts: dict[str, dict[str, int]] = {}
    for column in ("status", "org", "topic", "language"):
        rows = (await session.execute(
            select(getattr(sub.c, column), func.count()).group_by(getattr(sub.c, column)))).all()
        counts[column] = {str(k): int(n) for k, n in rows}
    responses = [
        (first - opened).total_seconds() / 3600
        for opened, first in (await session.execute(
            select(sub.c.opened_at, sub.c.first_response_at).where(sub.c.first_response_at.is_not(None)))).all()
        if opened is not None
    ]
    responses.sort()
    median = responses[len(responses) // 2] if responses else None
    return {
        "ratings": {str(k): v for k, v in rated.items()},
        "closed_without_rating": ratings.get(0, 0),
        "rated": total_rated,
        "average_rating": round(sum(k * v for k, v in rated.items()) / total_rated, 2) if total_rated else None,
        "satisfied_share": round((rated.get(4, 0) + rated.get(5, 0)) / total_rated, 3) if total_rated else None,
        "cases": counts,
        "median_first_response_hours": round(median, 2) if median is not None else None,
    }


def run_stats(args: argparse.Namespace) -> int:
    from bot.db.models import utcnow
    from bot.db.session import create_engine_and_sessionmaker, upgrade_database
    from bot.settings import Settings

    settings = Settings()
    since = utcnow() - timedelta(days=args.days) if args.days else None

    async def main() -> dict[str, Any]:
        await upgrade_database(settings.database_url)
        engine, maker = create_engine_and_sessionmaker(settings.database_url)
        try:
            async with maker() as session:
                return await collect_stats(session, org=args.org, since=since)
        finally:
            await engine.dispose()

    stats = asyncio.run(main())
    if args.json:
        print(json.dumps(stats, ensure_ascii=False, indent=2))
        return 0
    rated = stats["rated"]
    print(f"ratings ({rated} rated, {stats['closed_without_rating']} closed without a rating):")
    for score in ("1", "2", "3", "4", "5"):
        n = stats["ratings"].get(score, 0)
        share = f"{100 * n / rated:5.1f}%" if rated else "    -"
        print(f"  {score} {'★' * int(score):<5} {n:5d}  {share}  {'█' * round(40 * n / rated) if rated else ''}")
    if stats["average_rating"] is not None:
        print(f"average {stats['average_rating']}, satisfied (4–5) {100 * stats['satisfied_share']:.1f}%")
    for column, values in stats["cases"].items():
        print(f"cases by {column}: " + (", ".join(f"{k} {v}" for k, v in sorted(values.items())) or "-"))
    if stats["median_first_response_hours"] is not None:
        print(f"median first response: {stats['median_first_response_hours']} h")
    return 0
