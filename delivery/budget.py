"""One sending budget for the whole bot across processes: a token bucket kept in PostgreSQL.

Telegram allows a bot about 30 messages/s of bulk notifications, whatever number of
processes send them; with one in-process bucket per relay, two relays sent 60/s. On
PostgreSQL the relays therefore also reserve from ``SharedBucket`` — one row of
``rate_budget`` per budget, updated by a single atomic statement per reservation (the
refill is computed from the row's own timestamp with the server's clock, so processes
need not agree on time). SQLite deployments run one process and keep the in-process
bucket (``build_limiter`` decides).

Reservations work like ``delivery.ratelimit.TokenBucket``: take the tokens now (the level
may go negative) and wait ``-level / rate`` seconds. A database error falls back to the
in-process bucket alone (logged), never stops a send.

A process makes one reservation at a time, for every send that asked meanwhile (one
statement takes their tokens together; each gets the wait its place in line gives it):
separate reservations queued on the row's lock in PostgreSQL anyway, and a claim's worth of
them waiting there at once held every pooled connection (15 by default), so the relay's
"sent" stamps waited for one (Telegram's crash window, delivery/outbox.py). Their commits
do not wait for the disk (``synchronous_commit`` off for that transaction): a reservation
lost with a crash of the database server only makes the budget briefly more generous.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from delivery.ratelimit import DEFAULT_LIMITS, ChannelLimit, RateLimiter

log = logging.getLogger(__name__)

#: Budgets shared across processes on PostgreSQL (the platform counts per bot, not per process).
SHARED_CHANNELS = ("telegram",)

_RESERVE = text("""
    INSERT INTO rate_budget (name, level, stamp)
    VALUES (:name, CAST(:burst AS DOUBLE PRECISION) - CAST(:cost AS DOUBLE PRECISION), clock_timestamp())
    ON CONFLICT (name) DO UPDATE SET
        level = LEAST(CAST(:burst AS DOUBLE PRECISION), rate_budget.level + CAST(:rate AS DOUBLE PRECISION)
                      * EXTRACT(EPOCH FROM clock_timestamp() - rate_budget.stamp)::DOUBLE PRECISION)
                - CAST(:cost AS DOUBLE PRECISION),
        stamp = clock_timestamp()
    RETURNING level
""")
_PAUSE = text("""
    INSERT INTO rate_budget (name, level, stamp)
    VALUES (:name, -CAST(:seconds AS DOUBLE PRECISION) * CAST(:rate AS DOUBLE PRECISION), clock_timestamp())
    ON CONFLICT (name) DO UPDATE SET
        level = LEAST(CAST(:burst AS DOUBLE PRECISION), rate_budget.level + CAST(:rate AS DOUBLE PRECISION)
                      * EXTRACT(EPOCH FROM clock_timestamp() - rate_budget.stamp)::DOUBLE PRECISION,
                      -CAST(:seconds AS DOUBLE PRECISION) * CAST(:rate AS DOUBLE PRECISION)),
        stamp = clock_timestamp()
""")


_NO_DISK_WAIT = text("SET LOCAL synchronous_commit TO OFF")


class SharedBucket:
    """``rate`` tokens/s and at most ``burst``, shared by every process using the same database."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], name: str, rate: float,
                 burst: float | None = None) -> None:
        self.sessionmaker, self.name, self.rate = sessionmaker, name, float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate)
        self._asked: list[tuple[float, asyncio.Future[float]]] = []
        self._reserving: asyncio.Task[None] | None = None

    async def reserve(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; the seconds to wait before using them."""
        answer: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._asked.append((float(cost), answer))
        if self._reserving is None or self._reserving.done():
            self._reserving = asyncio.ensure_future(self._reserve_asked())
        return await answer

    async def _reserve_asked(self) -> None:
        while self._asked:
            asked, self._asked = self._asked, []
            total = sum(cost for cost, _ in asked)
            try:
                async with self.sessionmaker() as session, session.begin():
                    await session.execute(_NO_DISK_WAIT)
                    level = float((await session.execute(_RESERVE, {
                        "name": self.name, "burst": self.burst, "cost": total, "rate": self.rate})).scalar_one())
            except Exception as exc:  # noqa: BLE001 - each caller falls back to its own bucket
                for _, answer in asked:
                    if not answer.done():
                        answer.set_exception(exc)
                continue
            after = total
            for cost, answer in asked:   # first asked, first served: the level after its own tokens
                after -= cost
                if not answer.done():
                    answer.set_result(max(0.0, -(level + after) / self.rate))

    async def pause(self, seconds: float) -> None:
        """Nothing new for ``seconds`` in any process (the platform said "slow down")."""
        async with self.sessionmaker() as session, session.begin():
            await session.execute(_PAUSE, {"name": self.name, "burst": self.burst, "rate": self.rate,
                                           "seconds": float(seconds)})


def build_limiter(sessionmaker: async_sessionmaker[AsyncSession], limits: dict[str, ChannelLimit] | None = None,
                  **kwargs: Any) -> RateLimiter:
    """The relay's RateLimiter: in-process buckets, plus the shared budgets on PostgreSQL."""
    limits = dict(DEFAULT_LIMITS if limits is None else limits)
    shared: dict[str, SharedBucket] = {}
    bind = sessionmaker.kw.get("bind")
    if bind is not None and bind.dialect.name == "postgresql":
        for channel in SHARED_CHANNELS:
            if channel in limits:
                shared[channel] = SharedBucket(sessionmaker, f"send:{channel}", limits[channel].rate,
                                               limits[channel].burst)
    return RateLimiter(limits, shared=shared, **kwargs)
