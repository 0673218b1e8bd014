"""Retention of consultation content: the daily job that removes the messages and images
of cases closed more than CASE_RETENTION_DAYS ago (statistics stay, as with forget-me).

Owns ``prune_case_content`` (scheduler job "consult:retention", scheduler/jobs.py) and
``prune_expired_cases`` (the same work with explicit arguments, used by ``kurashi db prune``
and tests). The per-case work is ``bot.consult.cases.prune_closed_cases``.
Must not import the conversation engine, channel adapters, FastAPI or platform SDKs.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consult import cases

log = logging.getLogger("kurashi.consult.retention")
DEFAULT_RETENTION_DAYS = 365
BATCH = 200


async def prune_expired_cases(sessionmaker: async_sessionmaker[AsyncSession], now: datetime,
                              days: float, *, batch: int = BATCH) -> int:
    """Prune every case closed more than ``days`` before ``now`` (0 or less keeps everything),
    in small transactions of ``batch`` cases. Returns how many cases were pruned."""
    if days <= 0:
        return 0
    total = 0
    while True:
        async with sessionmaker() as session, session.begin():
            count = await cases.prune_closed_cases(session, older_than=timedelta(days=days), now=now, limit=batch)
        total += count
        if count < batch:
            break
    if total:
        log.info("removed the messages of %s consultation cases closed more than %s days ago", total, days)
    return total


async def prune_case_content(*, ctx: Any = None) -> int:
    """Daily scheduler job: ``prune_expired_cases`` with Settings.case_retention_days
    (``ctx``: the runner's ``scheduler.runner.JobContext``, passed by its executor)."""
    if ctx is None:
        raise TypeError("a job needs ctx=JobContext (the scheduler runner passes it)")
    days = getattr(getattr(ctx, "settings", None), "case_retention_days", DEFAULT_RETENTION_DAYS)
    return await prune_expired_cases(ctx.sessionmaker, ctx.now(), days)
