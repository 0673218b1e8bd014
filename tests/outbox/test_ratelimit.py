import asyncio
from itertools import pairwise

import pytest

from delivery.ratelimit import ChannelLimit, RateLimiter, SystemClock, TokenBucket
from tests.outbox.recording import FakeClock


def test_bucket_lets_the_burst_through_then_spaces_reservations_at_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=5, burst=2, clock=clock)
    delays = [bucket.reserve() for _ in range(5)]
    assert delays == pytest.approx([0, 0, 0.2, 0.4, 0.6])


def test_bucket_refills_with_time_up_to_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    for _ in range(3):
        bucket.reserve()
    clock.advance(100)
    assert [bucket.reserve() for _ in range(4)] == pytest.approx([0, 0, 0, 0.1])


def test_delay_for_takes_nothing():
    clock = FakeClock()
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    assert bucket.delay_for() == 0
    assert bucket.delay_for() == 0
    bucket.reserve()
    assert bucket.delay_for() == pytest.approx(1.0)


async def test_limiter_spaces_messages_to_one_chat_and_counts_the_overall_rate():
    clock = FakeClock()
    limiter = RateLimiter({"telegram": ChannelLimit(rate=30, per_recipient_rate=1)}, clock=clock)
    sent: list[tuple[str, float]] = []
    for chat in ["a", "b", "a", "a", "c"]:
        await limiter.acquire("telegram", [chat])
        sent.append((chat, clock.monotonic()))
    a_times = [t for c, t in sent if c == "a"]
    assert all(b - a >= 1.0 for a, b in pairwise(a_times))
    assert sent[1][1] == sent[0][1]  # another chat does not wait for "a"


async def test_limiter_keeps_the_overall_rate_for_many_chats():
    clock = FakeClock()
    limiter = RateLimiter({"telegram": ChannelLimit(rate=30, per_recipient_rate=1)}, clock=clock)
    start = clock.monotonic()
    for i in range(300):
        await limiter.acquire("telegram", [str(i)])
    # 30 go at once (one second's burst), the other 270 at 30/s
    assert clock.monotonic() - start >= 270 / 30 - 1e-9


async def test_concurrent_sends_to_one_chat_never_come_closer_than_the_limit():
    limiter = RateLimiter({"telegram": ChannelLimit(rate=1000, per_recipient_rate=50)}, clock=SystemClock())
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def send() -> None:
        await limiter.acquire("telegram", ["chat"])
        times.append(loop.time())

    await asyncio.gather(*(send() for _ in range(6)))
    times.sort()
    # asyncio may wake a timer up to its clock resolution early
    assert all(b - a >= 1 / 50 - 1e-3 for a, b in pairwise(times))


def test_unknown_channel_is_not_limited():
    limiter = RateLimiter({}, clock=FakeClock())
    assert limiter.delay_for("web", ["x"]) == 0
