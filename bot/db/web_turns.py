"""Queries of the web chat's recent conversation (table web_turns), so a reload restores it.

Owns: appending what the resident wrote (or the label of the button pressed) and the bot's
replies to a web session's history, keeping at most WEB_TURNS_KEPT lines per session, and
reading the recent lines back (oldest first). Rows go with the users row (CASCADE): forget-me
and the web session retention (bot.privacy.prune_idle_web_users) remove them.
Must not import the conversation core, channel adapters, platform SDKs or Settings.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import User, WebTurn, utcnow

WEB_CHANNEL = "web"
#: Lines kept per browser session (user lines and bot replies together).
WEB_TURNS_KEPT = 60
#: Only lines this recent are shown again after a reload.
WEB_TURNS_SHOWN_FOR = timedelta(days=2)
ROLE_USER, ROLE_BOT = "user", "bot"


async def _user_id(session: AsyncSession, platform_user_id: str) -> int | None:
    return await session.scalar(
        select(User.id).where(User.channel == WEB_CHANNEL, User.platform_user_id == platform_user_id))


async def append_web_turns(
    session: AsyncSession,
    platform_user_id: str,
    lines: Sequence[tuple[str, dict[str, Any]]],
    *,
    now: datetime | None = None,
    keep: int = WEB_TURNS_KEPT,
) -> int:
    """Store ``(role, payload)`` lines for this web session; drop the oldest beyond ``keep``.

    Nothing is stored for a session without a users row (e.g. right after forget-me).
    Returns how many lines were stored.
    """
    if not lines:
        return 0
    user_id = await _user_id(session, platform_user_id)
    if user_id is None:
        return 0
    now = now or utcnow()
    session.add_all([WebTurn(user_id=user_id, role=role, payload=payload, created_at=now) for role, payload in lines])
    await session.flush()
    cutoff = await session.scalar(
        select(WebTurn.id).where(WebTurn.user_id == user_id).order_by(WebTurn.id.desc()).offset(keep).limit(1))
    if cutoff is not None:
        await session.execute(delete(WebTurn).where(WebTurn.user_id == user_id, WebTurn.id <= cutoff)
                              .execution_options(synchronize_session=False))
    return len(lines)


async def prune_web_turns(session: AsyncSession, *, now: datetime | None = None,
                          older_than: timedelta = WEB_TURNS_SHOWN_FOR) -> int:
    """Delete web chat lines older than ``older_than`` (they are never shown again); returns how many."""
    cutoff = (now or utcnow()) - older_than
    result = await session.execute(delete(WebTurn).where(WebTurn.created_at < cutoff)
                                   .execution_options(synchronize_session=False))
    return result.rowcount or 0


async def recent_web_turns(
    session: AsyncSession, platform_user_id: str, *, now: datetime | None = None,
    within: timedelta = WEB_TURNS_SHOWN_FOR, limit: int = WEB_TURNS_KEPT,
) -> list[dict[str, Any]]:
    """The session's recent lines, oldest first: ``{"role": "user"|"bot", **payload}``."""
    user_id = await _user_id(session, platform_user_id)
    if user_id is None:
        return []
    since = (now or utcnow()) - within
    rows = (await session.execute(
        select(WebTurn.role, WebTurn.payload)
        .where(WebTurn.user_id == user_id, WebTurn.created_at >= since)
        .order_by(WebTurn.id.desc()).limit(limit)
    )).all()
    return [{"role": role, **(payload or {})} for role, payload in reversed(rows)]
