"""Forget-me and retention: one service above the features, which decides *when* a
resident's data goes and asks each feature to delete or anonymise its own rows.

Owns:
- ``forget_user`` — forget-me (the chat's "forget me", idle web sessions). In order:
  consultations (``bot.consult.cases.anonymise_for_user``: messages and images removed,
  statistics kept), pending pushes (``delivery.outbox.forget_recipient``), the web mailbox
  (``delivery.web_mailbox.forget_web_user``), insights (``bot.insights.forget_user``: the
  resident's unanswered questions and votes), and last the conversation's own rows
  (``bot.db.repo.delete_user_data``: raw webhook events and the users row).
- ``prune_idle_web_users`` — web chat sessions unseen for WEB_USER_RETENTION are forgotten
  as above, unless a consultation of theirs is still open.
- ``prune_stored_rows`` — the daily job "storage:prune" (scheduler/jobs.py): webhook events
  after 7 days, finished outbox rows after 30, insights after INSIGHTS_RETENTION_DAYS,
  delivered web pushes after 3 days, idle web sessions.
- ``prune_case_content`` — the daily job "consult:retention": consultation content after
  CASE_RETENTION_DAYS (the batches are bot/consult/retention.py's).
- ``prune_on_demand`` — `kurashi db prune` (bot/cli/db.py): webhook events, insights and
  consultation content, with the periods the operator gives (the same rules as the jobs).

Nothing below imports this module: storage (bot/db) and delivery never import a feature,
and the conversation engine gets ``forget_user`` passed in by bot/services.py.
``forget_user`` and ``prune_idle_web_users`` run in the caller's transaction; the jobs open their own.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import insights
from bot.consult import cases, retention
from bot.db import repo
from bot.db.models import User, utcnow
from delivery import outbox, web_mailbox

log = logging.getLogger("kurashi.privacy")


async def forget_user(session: AsyncSession, user: User, *, now: datetime | None = None) -> None:
    """Forget me: delete the user and everything stored about them (statistics of their
    consultations stay, anonymised). Runs in the caller's transaction."""
    await cases.anonymise_for_user(session, user, now=now)
    await outbox.forget_recipient(session, user.channel, user.platform_user_id)
    await web_mailbox.forget_web_user(session, user.id)
    await insights.forget_user(session, user.id)
    await repo.delete_user_data(session, user)


async def prune_idle_web_users(
    session: AsyncSession,
    *,
    now: datetime | None = None,
    idle: timedelta = web_mailbox.WEB_USER_RETENTION,
    limit: int = 5000,
) -> int:
    """Forget (``forget_user``) web chat users not seen for ``idle``; returns how many.

    Users with a consultation that is still open are kept (staff may still answer; the
    case closes in its own time). At most ``limit`` per call — the daily job takes the rest
    the next day.
    """
    users = await web_mailbox.idle_web_users(session, now=now, idle=idle, limit=limit,
                                             keep=cases.has_open_case(User.id))
    for user in users:
        await forget_user(session, user, now=now)
    return len(users)


async def prune_stored_rows(*, ctx: Any = None) -> dict[str, int]:
    """Daily job: forget webhook events after 7 days and finished outbox rows after 30 days,
    residents' words after INSIGHTS_RETENTION_DAYS, delivered web pushes and idle web sessions.

    A scheduler job (scheduler/jobs.py RECURRING_JOBS): ``ctx`` is the runner's JobContext,
    passed by its executor.
    """
    if ctx is None:
        raise TypeError("a job needs ctx=JobContext (the scheduler runner passes it)")
    now = ctx.now() if callable(getattr(ctx, "now", None)) else utcnow()
    retention_days = getattr(getattr(ctx, "settings", None), "insights_retention_days", 180)
    unanswered = feedback = 0
    async with ctx.sessionmaker() as session, session.begin():
        events = await repo.prune_inbound_events(session, now=now)
        pushes = await outbox.prune_outbox(session, now=now)
        unanswered, feedback = await _prune_insights(session, retention_days, now=now)
        # Web chat: delivered pushes after a few days, anonymous sessions unseen for 30 days.
        web_pushes = await web_mailbox.prune_web_mailbox(session, now=now)
        web_users = await prune_idle_web_users(session, now=now)
        # The recent web chat lines a reload shows: only as long as they are shown (2 days).
        from bot.db.web_turns import prune_web_turns

        web_turns = await prune_web_turns(session, now=now)
    log.info("pruned %s webhook events, %s outbox rows, %s unanswered questions, %s feedback votes",
             events, pushes, unanswered, feedback)
    log.info("pruned %s delivered web pushes, %s idle web chat users, %s web chat lines",
             web_pushes, web_users, web_turns)
    return {"inbound_events": events, "outbox": pushes, "unanswered": unanswered, "feedback": feedback,
            "web_mailbox": web_pushes, "web_users": web_users, "web_turns": web_turns}


async def _prune_insights(session: AsyncSession, days: float | None, *, now: datetime) -> tuple[int, int]:
    """Residents' own words (unanswered questions, 👎 questions) are not kept longer than
    INSIGHTS_RETENTION_DAYS (``days``; 0 or none keeps them). (unanswered, feedback) deleted."""
    if not days or days <= 0:
        return 0, 0
    return await insights.prune_insights(session, older_than=timedelta(days=days), now=now)


async def prune_on_demand(
    sessionmaker: async_sessionmaker[AsyncSession], *, event_days: float, insights_days: float,
    case_days: float, now: datetime | None = None,
) -> dict[str, int]:
    """`kurashi db prune`: webhook events received more than ``event_days`` ago and residents'
    words older than ``insights_days`` (one transaction), then the messages and images of
    consultations closed more than ``case_days`` ago (in batches). 0 days keeps insights or
    case content. Returns how many of each: inbound_events, unanswered, feedback, cases."""
    now = now or utcnow()
    async with sessionmaker() as session, session.begin():
        events = await repo.prune_inbound_events(session, older_than=timedelta(days=event_days), now=now)
        unanswered, feedback = await _prune_insights(session, insights_days, now=now)
    closed = await retention.prune_expired_cases(sessionmaker, now, case_days)
    return {"inbound_events": events, "unanswered": unanswered, "feedback": feedback, "cases": closed}


async def prune_case_content(*, ctx: Any = None) -> int:
    """Daily job "consult:retention" (scheduler/jobs.py): consultations closed more than
    CASE_RETENTION_DAYS ago lose their messages and images (``bot.consult.retention``)."""
    if ctx is None:
        raise TypeError("a job needs ctx=JobContext (the scheduler runner passes it)")
    days = getattr(getattr(ctx, "settings", None), "case_retention_days", retention.DEFAULT_RETENTION_DAYS)
    return await retention.prune_expired_cases(ctx.sessionmaker, ctx.now(), days)
