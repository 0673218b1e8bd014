"""Test doubles for the platforms' push side (not mocks of kurashi): record what would be delivered.

``RecordingSender`` plays a platform behind a ChannelSender. With ``honours_retry_key`` it
behaves like LINE: a second call with an already accepted retry key delivers nothing
(LINE answers 409, which the adapter reports as success). Failures are programmed per
recipient or for the next N calls. ``gate`` (an asyncio.Event) holds pushes before they
are accepted, to "kill" a relay while rows are in flight; ``holds`` does the same for the
pushes to one recipient (recipient → asyncio.Event).
"""
from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from delivery.messages import Reply
from delivery.senders import PermanentFailure, RetryLater


@dataclass
class Push:
    recipients: list[str]
    texts: list[str]
    retry_key: str
    at: float


class RecordingSender:
    def __init__(self, channel: str, max_recipients: int, *, honours_retry_key: bool, clock=None) -> None:
        self.channel = channel
        self.max_recipients = max_recipients
        self.honours_retry_key = honours_retry_key
        self.clock = clock
        self.calls: list[Push] = []            # every call, including deduplicated and failed ones
        self.delivered: list[Push] = []        # what recipients actually received
        self.accepted_keys: set[str] = set()
        self.fail_next: list[Exception] = []   # raised by the next calls, in order
        self.blocked: set[str] = set()         # recipients who blocked the bot
        self.gate: asyncio.Event | None = None
        self.entered = 0                       # pushes that reached the gate
        self.holds: dict[str, asyncio.Event] = {}

    async def push(self, recipients: Sequence[str], replies: Sequence[Reply], *, retry_key: str) -> None:
        now = self.clock.monotonic() if self.clock else asyncio.get_running_loop().time()
        push = Push(list(recipients), [r.text for r in replies], retry_key, now)
        self.calls.append(push)
        if self.gate is not None:
            self.entered += 1
            await self.gate.wait()
        for recipient in recipients:
            if recipient in self.holds:
                await self.holds[recipient].wait()
        if self.fail_next:
            raise self.fail_next.pop(0)
        gone = [r for r in recipients if r in self.blocked]
        if gone:
            raise PermanentFailure("blocked by the user", blocked=gone)
        if self.honours_retry_key and retry_key in self.accepted_keys:
            return  # 409: already accepted
        self.accepted_keys.add(retry_key)
        self.delivered.append(push)

    def received(self) -> Counter[tuple[str, str]]:
        """(recipient, text) → how many times it arrived."""
        return Counter((r, t) for p in self.delivered for r in p.recipients for t in p.texts)


class FakeClock:
    """Wall time that moves only when told (or when something sleeps on it)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


__all__ = ["FakeClock", "PermanentFailure", "Push", "RecordingSender", "RetryLater"]
