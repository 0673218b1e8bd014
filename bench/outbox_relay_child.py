"""One outbox relay in a process of its own, traced, for bench_outbox to kill with SIGKILL (kill -9).

Run by bench_outbox as ``python bench/outbox_relay_child.py CONFIG_JSON`` with PYTHONPATH set
to the code under test (this tree, or a baseline revision exported by ``git archive``), so it
imports nothing from bench/ and only long-lived names from the code (OutboxRelay,
build_limiter, the adapters, create_engine_and_sessionmaker).

It runs the relay as ``kurashi serve`` does (the real adapters to the fake platforms, the
limiter of ``build_limiter``: the shared Telegram budget on PostgreSQL) until it is killed,
and writes a trace, one line per event, with ``os.write`` on an unbuffered file so that
every line written before the kill is on disk afterwards. Times are ``time.monotonic()``
(CLOCK_MONOTONIC: the same clock in every process of the machine, the fakes' and the
parent's too):

    ready T
    cap T CHANNEL N                    the relay's bound on sends in flight for CHANNEL (if it has one)
    S T CHAT KEY                       a Telegram push started (the adapter called)
    R T CHAT KEY ok|ERROR              … returned
    L T MS                             the event loop's lag: how late a 20 ms sleep woke up
    B T TX                             a database transaction began (asked for: on SQLite this
                                       includes waiting for the file lock)
    K T TX KIND                        … ran its first statement of KIND (claim, renew, stamp, budget)
    E T TX KINDS committed|rolledback  … ended: the connection is back in the pool after its
                                       commit; KINDS = claim, renew, stamp, budget, other
    C T TX ID,ID,…                     outbox rows stamped "sent" by that committed transaction
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from datetime import timedelta
from typing import Any

_SET = re.compile(r"^\s*UPDATE\s+outbox\s+SET\s+(.*?)\s+WHERE\s", re.IGNORECASE | re.DOTALL)


class Trace:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, *fields: Any) -> None:
        os.write(self.fd, (" ".join(str(f) for f in fields) + "\n").encode())


def _kind(statement: str) -> tuple[str, bool]:
    """(what this statement is part of, whether it stamps rows 'sent')."""
    if re.match(r"^\s*BEGIN\b", statement, re.IGNORECASE):
        return "", False
    if "rate_budget" in statement:
        return "budget", False
    match = _SET.match(statement)
    if match:
        columns = {part.split("=")[0].strip().strip('"') for part in match.group(1).split(",")}
        if "status" in columns or "send_after" in columns:
            return "stamp", "sent_at" in columns
        if "attempts" in columns:
            return "claim", False
        if columns == {"claimed_until"}:
            return "renew", False
        return "other", False
    if re.match(r"^\s*SELECT\b", statement, re.IGNORECASE) and "FROM outbox" in statement:
        return "claim", False
    return "other", False


def _ints(parameters: Any) -> list[int]:
    rows = parameters if isinstance(parameters, list) else [parameters]
    out: list[int] = []
    for row in rows:
        values = row.values() if isinstance(row, dict) else (row or ())
        out += [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    return out


def instrument(engine: Any, trace: Trace) -> None:
    from sqlalchemy import event

    open_tx: dict[int, dict[str, Any]] = {}
    numbers = iter(range(1, 10**9))

    def state(dbapi_connection: Any) -> dict[str, Any]:
        key = id(dbapi_connection)
        if key not in open_tx:
            open_tx[key] = {"tx": next(numbers), "kinds": set(), "sent": [], "committed": False}
            trace.write("B", time.monotonic(), open_tx[key]["tx"])
        return open_tx[key]

    def on_begin(conn: Any) -> None:
        state(conn.connection.dbapi_connection)

    def on_execute(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        st = state(conn.connection.dbapi_connection)
        kind, sent = _kind(statement)
        if kind and kind not in st["kinds"]:
            st["kinds"].add(kind)
            trace.write("K", time.monotonic(), st["tx"], kind)
        if sent:
            st["sent"] += _ints(parameters)

    def on_commit(conn: Any) -> None:
        open_tx.get(id(conn.connection.dbapi_connection), {})["committed"] = True

    def on_checkin(dbapi_connection: Any, record: Any) -> None:
        st = open_tx.pop(id(dbapi_connection), None)
        if st is None:
            return
        now = time.monotonic()
        kinds = ",".join(sorted(st["kinds"])) or "none"
        trace.write("E", now, st["tx"], kinds, "committed" if st["committed"] else "rolledback")
        if st["committed"] and st["sent"]:
            trace.write("C", now, st["tx"], ",".join(map(str, st["sent"])))

    sync = engine.sync_engine
    event.listen(sync, "begin", on_begin, insert=True)
    event.listen(sync, "before_cursor_execute", on_execute)
    event.listen(sync, "commit", on_commit)
    event.listen(sync.pool, "checkin", on_checkin)


class TracedSender:
    """The Telegram adapter, with each push's start and return in the trace."""

    def __init__(self, inner: Any, trace: Trace) -> None:
        self.inner, self.trace = inner, trace
        self.channel, self.max_recipients = inner.channel, inner.max_recipients

    async def push(self, recipients: Any, replies: Any, *, retry_key: str) -> None:
        chat = ",".join(recipients)
        self.trace.write("S", time.monotonic(), chat, retry_key)
        outcome = "ok"
        try:
            await self.inner.push(recipients, replies, retry_key=retry_key)
        except BaseException as exc:
            outcome = type(exc).__name__
            raise
        finally:
            self.trace.write("R", time.monotonic(), chat, retry_key, outcome)


async def main(config: dict[str, Any]) -> None:
    from bot.channels.line import LineChannel
    from bot.channels.telegram import TelegramChannel
    from bot.db.session import create_engine_and_sessionmaker
    from delivery.outbox import OutboxRelay
    from delivery.ratelimit import ChannelLimit

    trace = Trace(config["trace"])
    engine, maker = create_engine_and_sessionmaker(config["url"])
    instrument(engine, trace)
    fakes = config["fakes"]
    line = LineChannel(channel_secret="bench-secret", access_token=fakes["line_token"], api_base_url=fakes["line"])
    telegram = TelegramChannel(token=fakes["telegram_token"], api_base_url=fakes["telegram"])
    await line.start()
    await telegram.start()
    limits = {"line": ChannelLimit(rate=config["line_rate"]),
              "telegram": ChannelLimit(rate=config["telegram_rate"], per_recipient_rate=1.0)}
    try:
        from delivery.budget import build_limiter
        limiter = build_limiter(maker, limits)
    except ImportError:  # a baseline older than the shared budget
        from delivery.ratelimit import RateLimiter
        limiter = RateLimiter(limits)
    relay = OutboxRelay(maker, {"line": line, "telegram": TracedSender(telegram, trace)}, limiter,
                        lease=timedelta(seconds=config["lease"]), poll_interval=0.2)
    for channel, cap in (getattr(relay, "max_in_flight", None) or {}).items():
        trace.write("cap", time.monotonic(), channel, cap)
    trace.write("ready", time.monotonic())
    lag = asyncio.create_task(_loop_lag(trace))
    await relay.run()   # until SIGKILL
    lag.cancel()


async def _loop_lag(trace: Trace) -> None:
    while True:
        before = time.monotonic()
        await asyncio.sleep(0.02)
        now = time.monotonic()
        trace.write("L", now, round((now - before - 0.02) * 1000, 2))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
