"""Rate limits for pushes: async token buckets per channel and per recipient, and the clock they use.

Owns: ``Clock`` (wall time for the database, monotonic time and sleep for waiting — tests
inject a fake one), ``TokenBucket``, ``ChannelLimit`` and ``RateLimiter`` (one overall
bucket per channel plus optional per-recipient spacing, e.g. Telegram's 1 message/s per
chat). Must not import the database, the adapters or platform SDKs.

Buckets work by reservation: ``reserve(cost)`` takes the tokens at once (the level may go
negative) and returns how long the caller must wait before using them. Many concurrent
callers thus get evenly spaced slots without a lock or a queue, and the bucket never lets
more than ``burst + rate × t`` through in any interval of length t.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC (stored in the database)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for rate limiting)."""
        ...

    async def sleep(self, seconds: float) -> None:
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst`` (default: one second's worth, at least 1)."""

    def __init__(self, rate: float, burst: float | None = None, *, clock: Clock | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate)
        self.clock = clock or SystemClock()
        self._level = self.burst
        self._stamp = self.clock.monotonic()

    def _refill(self) -> None:
        now = self.clock.monotonic()
        if now > self._stamp:
            self._level = min(self.burst, self._level + (now - self._stamp) * self.rate)
            self._stamp = now

    def delay_for(self, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens would be available (0 = now); takes nothing."""
        self._refill()
        missing = cost - self._level
        return max(0.0, missing / self.rate)

    def reserve(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens now and return the seconds to wait before using them."""
        self._refill()
        self._level -= cost
        return max(0.0, -self._level / self.rate)

    async def acquire(self, cost: float = 1.0) -> None:
        delay = self.reserve(cost)
        if delay > 0:
            await self.clock.sleep(delay)

    def pause(self, seconds: float) -> None:
        """Let nothing new through for ``seconds`` (the platform said "slow down")."""
        self._refill()
        self._level = min(self._level, -seconds * self.rate)


@dataclass(frozen=True)
class ChannelLimit:
    """Allowed send rate of one channel.

    ``rate``: requests (Telegram: messages) per second over the whole bot; ``burst``:
    bucket size (default one second's worth); ``per_recipient_rate``: messages per second to
    one chat (Telegram: 1), None for no such limit.
    """

    rate: float
    burst: float | None = None
    per_recipient_rate: float | None = None


#: Defaults. LINE limits per endpoint: push (and reply) 2,000 requests/s, multicast 200
#: requests/s (a multicast of up to 500 recipients is one request) — the relay draws a
#: multicast from "line:multicast" and a push from "line". Telegram: the documented
#: broadcast limit of about 30 messages/s and 1 message/s per chat.
DEFAULT_LIMITS: dict[str, ChannelLimit] = {
    "line": ChannelLimit(rate=2000.0),
    "line:multicast": ChannelLimit(rate=200.0),
    "telegram": ChannelLimit(rate=30.0, per_recipient_rate=1.0),
}


def limit_key(channel: str, recipients: int) -> str:
    """The bucket a send draws from: LINE multicasts have their own (lower) limit."""
    return "line:multicast" if channel == "line" and recipients > 1 else channel


class RateLimiter:
    """The overall bucket of every channel, and per-recipient spacing where the channel has one.

    Per recipient, the limiter remembers when the next message may go (``next_allowed``) and
    sets it at the moment a send is let through, after the overall wait, so two sends to
    one chat are always at least ``cost / per_recipient_rate`` apart. Concurrent sends to the
    same chat are correct but waste overall slots; the relay sends one chat's rows in order.
    """

    _SWEEP_EVERY = 1024  # acquisitions between sweeps of stale per-recipient entries

    def __init__(self, limits: dict[str, ChannelLimit] | None = None, *, clock: Clock | None = None,
                 shared: dict[str, Any] | None = None) -> None:
        self.clock = clock or SystemClock()
        # Budgets shared with other processes (delivery.budget.SharedBucket), by key.
        self.shared = dict(shared or {})
        self._pauses: set[asyncio.Task[None]] = set()
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._overall = {
            channel: TokenBucket(limit.rate, limit.burst, clock=self.clock)
            for channel, limit in self.limits.items()
        }
        self._next_allowed: dict[tuple[str, str], float] = {}
        self._since_sweep = 0

    def allowed_rate(self, channel: str) -> float | None:
        limit = self.limits.get(channel)
        return limit.rate if limit else None

    def has_per_recipient_limit(self, channel: str) -> bool:
        limit = self.limits.get(channel)
        return bool(limit and limit.per_recipient_rate)

    def _recipient_delay(self, channel: str, recipients: Iterable[str]) -> float:
        if not self.has_per_recipient_limit(channel):
            return 0.0
        now = self.clock.monotonic()
        return max((self._next_allowed.get((channel, r), now) - now for r in recipients), default=0.0)

    def recipient_delay(self, channel: str, recipients: Iterable[str]) -> float:
        """Seconds until every one of ``recipients`` may get a message again (0 = now); takes nothing."""
        return max(0.0, self._recipient_delay(channel, list(recipients)))

    def delay_for(self, channel: str, recipients: Iterable[str], cost: float = 1.0) -> float:
        """Seconds until a send of ``cost`` to ``recipients`` would be allowed; takes nothing."""
        recipients = list(recipients)
        overall = self._overall.get(channel)
        return max(self._recipient_delay(channel, recipients), overall.delay_for(cost) if overall else 0.0)

    async def acquire(self, channel: str, recipients: Iterable[str], cost: float = 1.0) -> None:
        """Wait until a send of ``cost`` (requests/messages) to ``recipients`` is allowed, and count it."""
        recipients = list(recipients)
        limit = self.limits.get(channel)
        overall = self._overall.get(channel)
        while True:
            wait = self._recipient_delay(channel, recipients)
            if wait > 0:
                await self.clock.sleep(wait)
                continue
            if overall is not None:
                delay = overall.reserve(cost)
                shared = self.shared.get(channel)
                if shared is not None:
                    try:
                        delay = max(delay, await shared.reserve(cost))
                    except Exception:  # noqa: BLE001 - the database is briefly away: this process's bucket alone
                        log.warning("shared send budget unavailable for %s; using this process's", channel)
                if delay > 0:
                    await self.clock.sleep(delay)
            if self._recipient_delay(channel, recipients) > 0:
                continue  # another send to this chat went first while we waited
            break
        if limit is not None and limit.per_recipient_rate:
            until = self.clock.monotonic() + cost / limit.per_recipient_rate
            for r in recipients:
                self._next_allowed[(channel, r)] = until
        self._since_sweep += 1
        if self._since_sweep >= self._SWEEP_EVERY:
            self._sweep()

    def pause(self, channel: str, seconds: float) -> None:
        """After a 429 with Retry-After: hold every new send of ``channel`` back for ``seconds``."""
        bucket = self._overall.get(channel)
        if bucket is not None and seconds > 0:
            bucket.pause(seconds)
        shared = self.shared.get(channel)
        if shared is not None and seconds > 0:
            try:
                task = asyncio.get_running_loop().create_task(shared.pause(seconds))
            except RuntimeError:  # no running loop (a synchronous caller): this process only
                return
            self._pauses.add(task)
            task.add_done_callback(self._paused)

    def _paused(self, task: asyncio.Task[None]) -> None:
        self._pauses.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("shared send budget: pause not recorded (%s)", type(task.exception()).__name__)

    def _sweep(self) -> None:
        self._since_sweep = 0
        now = self.clock.monotonic()
        for key in [k for k, t in self._next_allowed.items() if t <= now]:
            del self._next_allowed[key]
