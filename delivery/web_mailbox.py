"""Queries of the web chat mailbox (table web_mailbox) and of web session retention.

Owns: storing pushed replies for web chat sessions (idempotent per outbox retry key),
handing them out exactly once, pruning delivered ones, finding web chat users that have
not been seen for WEB_USER_RETENTION (the session cookie lives as long) and deleting one
user's pushes for forget-me (both decided by bot/privacy.py).
Part of delivery: imports only bot.db and delivery; never a feature, an adapter, a
platform SDK or Settings.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import User, WebMailboxMessage, utcnow

WEB_CHANNEL = "web"
#: Delivered pushes are kept this long (a trace for support questions), then deleted.
WEB_MAILBOX_RETENTION = timedelta(days=3)
#: Web chat sessions are anonymous and ephemeral: a session unseen this long is forgotten
#: (bot/web/chat.py renews its cookie for the same time on every message).
WEB_USER_RETENTION = timedelta(days=30)


async def store_web_pushes(
    session: AsyncSession,
    platform_user_ids: Sequence[str],
    payloads: Sequence[dict[str, Any]],
    *,
    retry_key: str,
    now: datetime | None = None,
) -> list[str]:
    """Queue ``payloads`` (Reply dicts) for these web sessions; returns the unknown session ids.

    A second call with the same ``retry_key`` (a relay retry after a crash between this
    commit and the outbox stamp) stores nothing: the rows are unique per (user, key, position).
    """
    now = now or utcnow()
    ids = list(dict.fromkeys(platform_user_ids))
    if not ids or not payloads:
        return []
    found = dict((await session.execute(
        select(User.platform_user_id, User.id).where(User.channel == WEB_CHANNEL, User.platform_user_id.in_(ids))
    )).all())
    rows = [
        {"user_id": found[pid], "retry_key": retry_key, "position": i, "payload": payload,
         "created_at": now, "delivered_at": None}
        for pid in ids if pid in found
        for i, payload in enumerate(payloads)
    ]
    if rows:
        insert_fn = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        await session.execute(
            insert_fn(WebMailboxMessage).on_conflict_do_nothing(
                index_elements=["user_id", "retry_key", "position"]),
            rows,
        )
    return [pid for pid in ids if pid not in found]


async def take_web_pushes(
    session: AsyncSession, platform_user_id: str, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The undelivered pushes of this web session, oldest first, marked delivered.

    One ``UPDATE … RETURNING`` statement: two concurrent polls of the same session cannot
    both get a message (PostgreSQL re-checks ``delivered_at IS NULL`` after the row lock;
    SQLite has a single writer). Commit with the caller's transaction.
    """
    now = now or utcnow()
    user_id = (
        select(User.id)
        .where(User.channel == WEB_CHANNEL, User.platform_user_id == platform_user_id)
        .scalar_subquery()
    )
    waiting = select(WebMailboxMessage.id).where(
        WebMailboxMessage.user_id == user_id, WebMailboxMessage.delivered_at.is_(None)).limit(1)
    if (await session.execute(waiting)).first() is None:
        # The usual poll: nothing waiting. A read only — on SQLite an UPDATE would take the
        # single write lock every few seconds per open page even when it changes nothing.
        return []
    result = await session.execute(
        update(WebMailboxMessage)
        .where(WebMailboxMessage.user_id == user_id, WebMailboxMessage.delivered_at.is_(None))
        .values(delivered_at=now)
        .returning(WebMailboxMessage.id, WebMailboxMessage.payload)
        .execution_options(synchronize_session=False)
    )
    return [payload for _id, payload in sorted(result.all(), key=lambda row: row[0])]


async def prune_web_mailbox(
    session: AsyncSession, *, now: datetime | None = None, older_than: timedelta = WEB_MAILBOX_RETENTION
) -> int:
    """Delete pushes delivered more than ``older_than`` ago; returns how many."""
    cutoff = (now or utcnow()) - older_than
    result = await session.execute(
        delete(WebMailboxMessage)
        .where(WebMailboxMessage.delivered_at.is_not(None), WebMailboxMessage.delivered_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


async def idle_web_users(
    session: AsyncSession,
    *,
    now: datetime | None = None,
    idle: timedelta = WEB_USER_RETENTION,
    limit: int = 5000,
    keep: ColumnElement[bool] | None = None,
) -> list[User]:
    """Web chat users not seen for ``idle``, oldest ids first, at most ``limit``; users for
    whom ``keep`` (a condition on ``User``, e.g. "has an open consultation") holds are left out.
    Forgetting them is the privacy service's business (bot/privacy.py)."""
    cutoff = (now or utcnow()) - idle
    query = select(User).where(User.channel == WEB_CHANNEL, User.last_seen_at < cutoff)
    if keep is not None:
        query = query.where(~keep)
    return list((await session.execute(query.order_by(User.id).limit(limit))).scalars().all())


async def forget_web_user(session: AsyncSession, user_id: int) -> int:
    """Forget-me: delete every push stored for this user (delivered or not); returns how many."""
    result = await session.execute(
        delete(WebMailboxMessage).where(WebMailboxMessage.user_id == user_id)
        .execution_options(synchronize_session=False))
    return result.rowcount or 0
