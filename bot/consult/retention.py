"""Retention of consultation content: the daily job that removes the messages and images
of cases closed more than CASE_RETENTION_DAYS ago (statistics stay, as with forget-me).

Owns ``prune_expired_cases`` (in small transactions), which the retention service runs
daily (``bot.privacy.prune_case_content``, job "consult:retention") and ``kurashi db prune``
on demand. The per-case work is ``bot.consult.cases.prune_closed_cases``.
Must not import the conversation engine, channel adapters, FastAPI or platform SDKs.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

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
