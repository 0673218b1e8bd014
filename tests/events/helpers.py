"""Helpers of the events and garbage tests: a fixed clock, a job context, users, outbox rows."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.db.models import OutboxMessage, User
from scheduler.runner import JobContext


@dataclass
class FixedClock:
    at: datetime

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def make_ctx(database_url: str, sessionmaker, kb, now: datetime) -> tuple[JobContext, FixedClock]:
    clock = FixedClock(now)
    return JobContext(database_url=database_url, sessionmaker=sessionmaker, kb=kb, now=clock.now), clock


async def add_users(sessionmaker, *specs: dict) -> dict[str, int]:
    """Create users from dicts of User columns (``platform_user_id`` required); returns id by platform id."""
    async with sessionmaker() as session, session.begin():
        users = [User(**{"channel": "line", "language": "en", **spec}) for spec in specs]
        session.add_all(users)
        await session.flush()
        return {u.platform_user_id: u.id for u in users}


async def outbox_rows(sessionmaker, kind: str) -> list[OutboxMessage]:
    async with sessionmaker() as session:
        return list((await session.execute(
            select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        )).scalars())


def texts_by_recipient(rows: list[OutboxMessage]) -> dict[str, str]:
    """platform user id → the text queued for them (fails on a duplicate)."""
    out: dict[str, str] = {}
    for row in rows:
        for recipient in row.recipients:
            assert recipient not in out, f"{recipient} got two messages"
            out[recipient] = "\n".join(p["text"] for p in row.payload)
    return out
