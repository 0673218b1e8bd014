"""Fixtures of the operator insights tests: the console under real uvicorn (tests/console)
over SQLite and PostgreSQL, an operator and a partner's staff account, and helpers that
store unanswered questions and feedback through the same repo functions the conversation
core uses (with chosen timestamps, so "newest first" and retention are deterministic)."""
from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.models import Feedback, Unanswered
from tests.console.conftest import Console, console_settings, start_console

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
OPERATOR = "operator@city.example"
PARTNER = "tanaka@otit.example"


@pytest.fixture
async def console(database_url: str) -> AsyncIterator[Console]:
    async for running in start_console(console_settings(database_url)):
        await running.add_staff(OPERATOR, "city_intl", role="operator", name="Operator")
        await running.add_staff(PARTNER, "otit", name="Tanaka")
        yield running


async def add_unanswered(maker: async_sessionmaker[AsyncSession], texts: Sequence[tuple[str, str, str]], *,
                         start: datetime = T0, user: str = "U-resident",
                         suggestions: Sequence[str] = ()) -> list[Unanswered]:
    """Store (text, language, decision) questions one minute apart, the last one newest."""
    rows = []
    async with maker() as s, s.begin():
        resident, _ = await repo.get_or_create_user(s, "line", user)
        for n, (text, language, decision) in enumerate(texts):
            row = await repo.record_unanswered(s, resident, text, language=language, decision=decision,
                                               suggestions=suggestions)
            row.created_at = start + timedelta(minutes=n)
            rows.append(row)
    return rows


async def add_votes(maker: async_sessionmaker[AsyncSession], votes: Sequence[tuple[str, int, str, str | None]], *,
                    start: datetime = T0, user: str = "U-voter") -> list[Feedback]:
    """Store (intent, +1/-1, language, question) votes one minute apart, the last one newest."""
    rows = []
    async with maker() as s, s.begin():
        resident, _ = await repo.get_or_create_user(s, "telegram", user)
        for n, (intent, vote, language, question) in enumerate(votes):
            row = await repo.record_feedback(s, resident, intent, vote, language=language, question=question)
            row.created_at = start + timedelta(minutes=n)
            rows.append(row)
    return rows
