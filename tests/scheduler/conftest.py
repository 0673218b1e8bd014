"""Fixtures of the scheduler/alerts tests: the fake JMA server, the knowledge base, users, a job context."""
from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db.models import OutboxMessage, User
from knowledge.loader import KnowledgeBase, load_knowledge
from scheduler.runner import JobContext
from tests.scheduler.fake_jma import JMA_DIR, FakeJMA


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    """The project's own knowledge base (alerts.yaml, district list, shelter answer)."""
    return load_knowledge()


@pytest.fixture
def jma_dir() -> Path:
    if not JMA_DIR.is_dir():
        pytest.skip(f"{JMA_DIR.resolve()} is absent (JMA reference telegrams, ../shared/reference/jma)")
    return JMA_DIR


@pytest.fixture
async def jma_server(jma_dir: Path) -> AsyncIterator[FakeJMA]:
    """A running fake JMA site on 127.0.0.1 (see tests/scheduler/fake_jma.py)."""
    server = FakeJMA()
    async with server:
        yield server


@dataclass
class FixedClock:
    at: datetime

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.at += timedelta(**delta)


@pytest.fixture
def make_ctx(database_url, sessionmaker, kb):
    """``make_ctx(now, feed_urls=[...])`` → a JobContext with a fixed clock (no scheduler started)."""

    def _make(now: datetime, feed_urls: list[str] | None = None) -> tuple[JobContext, FixedClock]:
        clock = FixedClock(now)
        ctx = JobContext(database_url=database_url, sessionmaker=sessionmaker, kb=kb, now=clock.now,
                         extras={"feed_urls": feed_urls or []})
        return ctx, clock

    return _make


async def add_users(sessionmaker, *specs: dict) -> dict[str, int]:
    """Create users from dicts of User columns (``platform_user_id`` required); returns id by platform id."""
    async with sessionmaker() as session, session.begin():
        users = [User(**{"channel": "line", "language": "en", **spec}) for spec in specs]
        session.add_all(users)
        await session.flush()
        return {u.platform_user_id: u.id for u in users}


async def outbox_rows(sessionmaker, kind: str = "alert") -> list[OutboxMessage]:
    async with sessionmaker() as session:
        return list((await session.execute(
            select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        )).scalars())


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)
