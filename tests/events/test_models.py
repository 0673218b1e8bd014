"""bot/db/events_models.py matches the tables migration 0003_scheduler creates (SQLite + PostgreSQL),
and the unique (user_id, date) of garbage_reminders_sent holds."""
from __future__ import annotations

from datetime import date

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from bot.db import events_models
from bot.db.session import sync_url
from tests.events.helpers import add_users

TABLES = ("events", "garbage_reminders_sent")


def _diffs(url: str) -> list:
    ours = MetaData(naming_convention=events_models.Base.metadata.naming_convention)
    for name in TABLES:
        events_models.Base.metadata.tables[name].to_metadata(ours)
    # garbage_reminders_sent refers to users: give the comparison the users table too, then ignore its diffs.
    events_models.Base.metadata.tables["users"].to_metadata(ours)
    engine = create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "include_name": lambda name, type_, parent: type_ != "table" or name in (*TABLES, "users"),
            })
            diffs = compare_metadata(context, ours)
    finally:
        engine.dispose()

    def touches(diff) -> bool:
        for item in diff if isinstance(diff, list) else [diff]:
            for part in item[1:]:
                table = getattr(part, "table", None)
                name = table.name if table is not None else (part if isinstance(part, str) else getattr(part, "name", None))
                if name in TABLES:
                    return True
        return False

    return [d for d in diffs if touches(d)]


def test_models_match_the_migration(database_url):
    assert _diffs(database_url) == []


async def test_a_reminder_is_recorded_once_per_user_and_date(sessionmaker):
    ids = await add_users(sessionmaker, {"platform_user_id": "u1"})
    async with sessionmaker() as session, session.begin():
        session.add(events_models.GarbageReminderSent(user_id=ids["u1"], date=date(2026, 12, 2)))
    with pytest.raises(IntegrityError):
        async with sessionmaker() as session, session.begin():
            session.add(events_models.GarbageReminderSent(user_id=ids["u1"], date=date(2026, 12, 2)))
