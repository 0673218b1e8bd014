"""Fixtures of the conversation tests: the fixture knowledge base, the real matcher over it,
the engine on the shared ``sessionmaker`` (SQLite and PostgreSQL) and a ``chat`` driver."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.conversation.engine import ConversationEngine
from bot.db.models import Feedback, Unanswered, User
from delivery.messages import Channel, IncomingMessage, Kind, Location, Reply
from intents.matcher import Matcher
from knowledge.loader import KnowledgeBase
from tests.conversation.kbfixture import load_fixture_kb


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_fixture_kb()


@pytest.fixture(scope="session")
def matcher(kb: KnowledgeBase) -> Matcher:
    return Matcher.from_knowledge(kb)


@pytest.fixture
def engine(kb: KnowledgeBase, matcher: Matcher, sessionmaker: async_sessionmaker[AsyncSession]) -> ConversationEngine:
    return ConversationEngine(kb, matcher, sessionmaker)


@dataclass
class ChatDriver:
    """Talks to the engine as one resident and reads what the database holds about them."""

    engine: ConversationEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    user_id: str = "U-resident-1"
    channel: Channel = Channel.LINE

    async def send(self, kind: Kind = Kind.TEXT, **fields) -> list[Reply]:
        return await self.engine.handle(IncomingMessage(self.channel, self.user_id, kind, **fields))

    async def say(self, text: str, hint: str | None = None) -> list[Reply]:
        return await self.send(Kind.TEXT, text=text, language_hint=hint)

    async def press(self, data: str) -> list[Reply]:
        return await self.send(Kind.POSTBACK, data=data)

    async def follow(self, hint: str | None = None) -> list[Reply]:
        return await self.send(Kind.FOLLOW, language_hint=hint)

    async def location(self, address: str | None) -> list[Reply]:
        return await self.send(Kind.LOCATION, location=Location(34.1, 131.4, address=address))

    async def user(self) -> User | None:
        async with self.sessionmaker() as session:
            return (await session.execute(select(User).where(
                User.channel == self.channel.value, User.platform_user_id == self.user_id))).scalar_one_or_none()

    async def count(self, model) -> int:
        async with self.sessionmaker() as session:
            return (await session.execute(select(func.count()).select_from(model))).scalar_one()

    async def rows(self, model) -> list:
        async with self.sessionmaker() as session:
            return list((await session.execute(select(model))).scalars())


@pytest.fixture
def chat(engine: ConversationEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> ChatDriver:
    return ChatDriver(engine, sessionmaker)


def payloads(reply: Reply) -> list[str]:
    return [c.data for c in (*reply.quick_replies, *reply.buttons)]


__all__ = ["ChatDriver", "Feedback", "Unanswered", "User", "payloads"]
