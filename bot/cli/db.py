"""`kurashi db …`: schema upgrades and retention pruning from the command line.

Owns only argument parsing; the work is bot.db.session.upgrade_database, bot.db.repo and
bot.insights (retention of unanswered questions and feedback).
Must not import the conversation core or channel adapters.
"""
from __future__ import annotations

import argparse
import asyncio


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db", help="database schema and maintenance")
    sub = parser.add_subparsers(dest="db_command", metavar="DB_COMMAND")
    upgrade = sub.add_parser("upgrade", help="apply Alembic migrations up to the newest (DATABASE_URL)")
    upgrade.set_defaults(func=run_upgrade)
    prune = sub.add_parser("prune", help="delete webhook events, unanswered questions and feedback "
                                         "older than their retention periods")
    prune.add_argument("--days", type=float, default=7.0, help="webhook event retention in days (default 7)")
    prune.add_argument("--insights-days", type=float, default=None,
                       help="unanswered/feedback retention in days (default INSIGHTS_RETENTION_DAYS, 180; 0 = keep)")
    prune.add_argument("--case-days", type=float, default=None,
                       help="consultation messages of closed cases, in days (default CASE_RETENTION_DAYS, 365; 0 = keep)")
    prune.set_defaults(func=run_prune)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def run_upgrade(args: argparse.Namespace) -> int:
    """Upgrade the database named by DATABASE_URL (default: the SQLite file under var/)."""
    from bot.db.session import upgrade_database
    from bot.settings import Settings

    settings = Settings()
    asyncio.run(upgrade_database(settings.database_url))
    print("database schema is up to date")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    """Delete stored webhook events older than --days, and unanswered questions and feedback
    older than --insights-days (Settings.insights_retention_days; 0 keeps them)."""
    from datetime import timedelta

    from bot import insights
    from bot.db import repo
    from bot.db.session import create_engine_and_sessionmaker
    from bot.settings import Settings

    settings = Settings()
    insight_days = settings.insights_retention_days if args.insights_days is None else args.insights_days

    async def prune() -> tuple[int, int, int]:
        engine, maker = create_engine_and_sessionmaker(settings.database_url)
        try:
            async with maker() as session, session.begin():
                events = await repo.prune_inbound_events(session, older_than=timedelta(days=args.days))
                questions, votes = (await insights.prune_insights(session, older_than=timedelta(days=insight_days))
                                    if insight_days > 0 else (0, 0))
                return events, questions, votes
        finally:
            await engine.dispose()

    count, questions, votes = asyncio.run(prune())
    case_days = settings.case_retention_days if args.case_days is None else args.case_days
    if case_days > 0:
        from datetime import UTC, datetime

        from bot.consult.retention import prune_expired_cases

        async def prune_cases() -> int:
            engine, maker = create_engine_and_sessionmaker(settings.database_url)
            try:
                return await prune_expired_cases(maker, datetime.now(UTC), case_days)
            finally:
                await engine.dispose()

        print(f"removed the messages of {asyncio.run(prune_cases())} consultation cases "
              f"closed more than {case_days:g} days ago")
    print(f"pruned {count} webhook events")
    if insight_days > 0:
        print(f"pruned {questions} unanswered questions and {votes} feedback votes older than {insight_days:g} days")
    else:
        print("unanswered questions and feedback kept (retention 0 = forever)")
    return 0
