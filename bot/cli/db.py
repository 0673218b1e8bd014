"""`kurashi db …`: schema upgrades and retention pruning from the command line.

Owns only argument parsing; the work is bot.db.session.upgrade_database and bot.db.repo.
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
    prune = sub.add_parser("prune", help="delete webhook events older than the retention period")
    prune.add_argument("--days", type=float, default=7.0, help="retention in days (default 7)")
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
    """Delete stored webhook events older than --days."""
    from datetime import timedelta

    from bot.db import repo
    from bot.db.session import create_engine_and_sessionmaker
    from bot.settings import Settings

    async def prune() -> int:
        engine, maker = create_engine_and_sessionmaker(Settings().database_url)
        try:
            async with maker() as session, session.begin():
                return await repo.prune_inbound_events(session, older_than=timedelta(days=args.days))
        finally:
            await engine.dispose()

    count = asyncio.run(prune())
    print(f"pruned {count} webhook events")
    return 0
