"""`kurashi db …`: schema upgrades and retention pruning from the command line.

Owns only argument parsing and the periods' defaults (Settings); the work is
bot.db.session.upgrade_database and bot.privacy.prune_on_demand (every retention rule).
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
    """Delete stored webhook events older than --days, unanswered questions and feedback
    older than --insights-days (Settings.insights_retention_days; 0 keeps them) and the
    content of consultations closed more than --case-days ago (Settings.case_retention_days;
    0 keeps it), through bot.privacy."""
    from bot import privacy
    from bot.db.session import create_engine_and_sessionmaker
    from bot.settings import Settings

    settings = Settings()
    insight_days = settings.insights_retention_days if args.insights_days is None else args.insights_days
    case_days = settings.case_retention_days if args.case_days is None else args.case_days

    async def prune() -> dict[str, int]:
        engine, maker = create_engine_and_sessionmaker(settings.database_url)
        try:
            return await privacy.prune_on_demand(maker, event_days=args.days, insights_days=insight_days,
                                                 case_days=case_days)
        finally:
            await engine.dispose()

    pruned = asyncio.run(prune())
    if case_days > 0:
        print(f"removed the messages of {pruned['cases']} consultation cases "
              f"closed more than {case_days:g} days ago")
    print(f"pruned {pruned['inbound_events']} webhook events")
    if insight_days > 0:
        print(f"pruned {pruned['unanswered']} unanswered questions and {pruned['feedback']} feedback votes "
              f"older than {insight_days:g} days")
    else:
        print("unanswered questions and feedback kept (retention 0 = forever)")
    return 0
