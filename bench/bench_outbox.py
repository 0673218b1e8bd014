"""Outbox benchmark: queued pushes through relays that are killed with SIGKILL (kill -9) as they
go, the real adapters and the fake platforms; losses, duplicates, and why Telegram's happen.

The relay under test runs in a process of its own (bench/outbox_relay_child.py: built as
``kurashi serve`` builds it, traced) and is killed ``KURASHI_BENCH_OUTBOX_KILLS`` times
(default 3), each time at a random moment 0.5-3 s after its first Telegram push; a new
relay process starts at once, and a relay in this process finishes the queue (the dead
relays' leased rows come back when their lease, shortened to 5 s here, runs out).

Telegram has no idempotency key, so a kill repeats every message Telegram accepted whose
"sent" stamp was not committed yet. From the traces and the fake's log, per kill: the
duplicates, split into requests in flight that Telegram took and pushes answered but not
stamped (with the database transactions open at the kill); over all the relays' lives: the
window push answered → stamp committed (p50/p99, split into waiting in the relay and the
transaction), the exposure — Telegram rows between "push started" and "stamp committed",
what a kill at that moment would repeat — sampled every 10 ms, and the most Telegram sends
in flight at once. LINE is counted too (its retry key makes a repeat a 409, not a duplicate).

Rates: each channel is allowed half of what one relay process reaches here (a calibration
run through an unlimited relay, side by side: the machine is shared and small), at most
LINE's 1,000 requests/s and Telegram's real 30 messages/s (KURASHI_BENCH_OUTBOX_TELEGRAM_RATE
changes it: 120 was used before), with Telegram's 1 message/s per chat on. The achieved rate
is what the killed relays sent, also as a share of what the rate limit let through while
they lived (a full bucket plus the rate; target ≥ 0.9).

- 100,000 pushes at scale 1 (KURASHI_BENCH_OUTBOX_SCALE=0.05 for a twentieth): Telegram
  messages to distinct chats (python-telegram-bot → fake Bot API) and the rest as LINE alert
  multicasts of 500 users (line-bot-sdk → fake LINE API), plus LINE personal pushes (one
  request each) on top of them, sized so that each channel needs about a minute at its
  allowed rate, and at least what the kills need.
- The fakes run in a child process with spec validation off (the test suite validates
  every request; here it would be the bottleneck); KURASHI_BENCH_OUTBOX_TELEGRAM_RTT_MS
  makes the fake Telegram answer after that round trip (half before it takes the request).
- SQLite by default; PostgreSQL when KURASHI_TEST_POSTGRES_URL is set (a throw-away
  database). KURASHI_BENCH_OUTBOX_BASELINE=<git rev> first runs the same with that
  revision's relay (``git archive`` into a temporary folder, same virtualenv); each version
  gets fake platforms and a database of its own (in a shared set-up the second version
  measured came out slower, whichever it was); KURASHI_BENCH_OUTBOX_TRACES=<folder> keeps
  the traces.

Owns nothing but this measurement; imports the fakes from tests/.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.platforms import close_senders, run_against_fakes, start_fake_platforms, start_senders

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOTAL_PUSHES = 100_000
RUN_SECONDS = 60.0            # how long each channel should need at its allowed rate
LINE_RATE_CAP = 1000.0        # LINE default (requests/s)
# Telegram's 30 messages/s (the relay's bound on sends in flight follows it); the bench used
# 120 (×4) before its kills became the point — KURASHI_BENCH_OUTBOX_TELEGRAM_RATE=120 for that
TELEGRAM_RATE_CAP = float(os.environ.get("KURASHI_BENCH_OUTBOX_TELEGRAM_RATE", "30"))
SHARE_OF_CAPACITY = 0.5       # allowed rate = this × the calibrated capacity
CALIBRATION = {"line": 1500, "telegram": 1000}
LEASE_SECONDS = 5.0
EXPOSURE_STEP = 0.010         # seconds between samples of the exposure
KILL_AFTER = (0.5, 3.0)       # a relay is killed at a random moment this long after its first Telegram push
BASELINE = os.environ.get("KURASHI_BENCH_OUTBOX_BASELINE", "")
TELEGRAM_RTT = float(os.environ.get("KURASHI_BENCH_OUTBOX_TELEGRAM_RTT_MS", "0")) / 1000


# --- the fake platforms, in a child process ---------------------------------------------------


def _serve_fakes(conn: Any) -> None:
    asyncio.run(_fakes_main(conn))


async def _fakes_main(conn: Any) -> None:
    import logging

    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)   # killed relays' connections reset
    line_api, telegram_api, reach = await start_fake_platforms(telegram_latency=TELEGRAM_RTT)
    conn.send(reach)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, conn.recv)  # "report"
    line = Counter((user, m.get("text")) for d in line_api.deliveries if d.kind != "reply"
                   for user in d.to for m in d.messages)
    telegram = Counter((str(m.get("chat_id")), m.get("text")) for m in telegram_api.sent)
    # when each accepted sendMessage arrived (time.monotonic(), the same clock as the traces)
    telegram_at = [(str(c.params.get("chat_id")), c.record.at) for c in telegram_api.calls_of("sendMessage")
                   if c.record.status == 200]
    statuses = Counter(r.status for r in line_api.requests)
    conn.send({"line": dict(line), "telegram": dict(telegram), "telegram_at": telegram_at,
               "line_statuses": dict(statuses),
               "line_requests": len(line_api.requests), "telegram_requests": len(telegram_api.requests)})
    await line_api.stop()
    await telegram_api.stop()


# --- the traces of the killed relays ------------------------------------------------------------


@dataclass
class Life:
    """One relay process from its trace, killed at ``killed`` (time.monotonic())."""

    killed: float
    ready: float = 0.0
    caps: dict[str, int] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)     # Telegram chat → push started
    returned: dict[str, tuple[float, str]] = field(default_factory=dict)   # chat → (time, outcome)
    stamped: dict[int, float] = field(default_factory=dict)     # row id → its "sent" stamp committed
    stamped_by: dict[int, int] = field(default_factory=dict)    # row id → the transaction that stamped it
    tx: dict[int, tuple[float, float | None, str]] = field(default_factory=dict)  # tx → (begin, end, kinds)
    lags: list[float] = field(default_factory=list)             # event loop lag samples, ms

    @classmethod
    def read(cls, path: Path, killed: float) -> Life:
        life = cls(killed)
        for line in path.read_text().splitlines():
            parts = line.split()
            if not parts:
                continue
            what, t = parts[0], float(parts[1])
            if t > killed:
                continue   # cannot happen with SIGKILL; a line half-written at the kill is skipped here
            if what == "ready":
                life.ready = t
            elif what == "cap":
                life.caps[parts[2]] = int(parts[3])
            elif what == "S":
                life.started[parts[2]] = t
            elif what == "R":
                life.returned[parts[2]] = (t, parts[4] if len(parts) > 4 else "?")
            elif what == "L":
                life.lags.append(float(parts[2]))
            elif what == "B":
                life.tx[int(parts[2])] = (t, None, "")
            elif what == "K" and len(parts) >= 4:
                begin, end, kinds = life.tx.get(int(parts[2]), (t, None, ""))
                life.tx[int(parts[2])] = (begin, end, ",".join(filter(None, [kinds, parts[3]])))
            elif what == "E" and len(parts) >= 5:
                begin = life.tx.get(int(parts[2]), (t, None, ""))[0]
                life.tx[int(parts[2])] = (begin, t, "" if parts[3] == "none" else parts[3])
            elif what == "C" and len(parts) >= 4:
                for row_id in parts[3].split(","):
                    life.stamped[int(row_id)] = t
                    life.stamped_by[int(row_id)] = int(parts[2])
        return life

    def open_at(self, t: float) -> list[str]:
        """Kinds of the transactions open at ``t`` (begun, not back in the pool)."""
        return [kinds or "begin" for begin, end, kinds in self.tx.values() if begin <= t and (end is None or end > t)]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def _explain(lives: list[Life], row_of_chat: dict[str, int], deliveries: dict[str, list[float]]) -> dict[str, Any]:
    """Duplicates per kill and why; the sent→stamped window; the exposure."""
    kills: list[dict[str, Any]] = []
    windows: list[float] = []
    queued: list[float] = []          # push returned → its stamp's transaction began (in-process waits)
    written: list[float] = []         # … → that transaction was committed (and its connection back)
    overlapped: Counter[str] = Counter()
    exposure: list[int] = []          # sampled every EXPOSURE_STEP from a relay's first push to its kill
    max_in_flight = 0
    seen: set[str] = set()
    for life in lives:
        at_kill: Counter[str] = Counter()
        unstamped_ages: list[float] = []
        duplicates = 0
        for chat in life.started:
            if chat in seen:   # a row a dead relay had started, sent again: counted at that kill
                continue
            seen.add(chat)
            row = row_of_chat[chat]
            returned = life.returned.get(chat)
            stamp = life.stamped.get(row)
            arrived = deliveries.get(chat, [])
            if len(arrived) > 1:
                duplicates += 1
            if stamp is not None:
                continue
            if returned is None:
                at_kill["in_flight"] += 1
                if len(arrived) > 1:
                    at_kill["in_flight_delivered"] += 1
            elif returned[1] == "ok":
                at_kill["returned_unstamped"] += 1
                unstamped_ages.append((life.killed - returned[0]) * 1000)
        # the window of every row stamped while the relay lived, and what ran meanwhile
        for chat, (returned_at, outcome) in life.returned.items():
            stamp = life.stamped.get(row_of_chat[chat])
            if outcome != "ok" or stamp is None:
                continue
            windows.append((stamp - returned_at) * 1000)
            tx = life.tx.get(life.stamped_by.get(row_of_chat[chat], -1))
            if tx is not None:
                queued.append((tx[0] - returned_at) * 1000)
                written.append((stamp - tx[0]) * 1000)
            for kind in {k for begin, end, kinds in life.tx.values()
                         if begin < stamp and (end is None or end > returned_at) and end != stamp
                         for k in (kinds or "begin").split(",")}:
                overlapped[kind] += 1
        # exposure: rows between "push started" and "stamp committed" (or an error), every 10 ms
        events: list[tuple[float, int]] = []
        in_flight: list[tuple[float, int]] = []
        for chat, started in life.started.items():
            returned = life.returned.get(chat)
            stamp = life.stamped.get(row_of_chat[chat])
            end = stamp if stamp is not None else (returned[0] if returned and returned[1] != "ok" else life.killed)
            events += [(started, 1), (end, -1)]
            in_flight += [(started, 1), (returned[0] if returned else life.killed, -1)]
        events.sort()
        in_flight.sort()
        level = 0
        for _, step in in_flight:
            level += step
            max_in_flight = max(max_in_flight, level)
        if life.started:
            first = min(life.started.values())
            t, level, i = first, 0, 0
            while t < life.killed:
                while i < len(events) and events[i][0] <= t:
                    level += events[i][1]
                    i += 1
                exposure.append(level)
                t += EXPOSURE_STEP
        kills.append({
            "duplicates": duplicates, "in_flight": at_kill["in_flight"],
            "in_flight_delivered": at_kill["in_flight_delivered"],
            "returned_unstamped": at_kill["returned_unstamped"],
            "unstamped_age_ms": [round(a, 1) for a in sorted(unstamped_ages)],
            "open_transactions_at_kill": sorted(life.open_at(life.killed)),
            "caps": life.caps,
        })
    lags = [lag for life in lives for lag in life.lags]
    return {
        "kills": kills,
        "event_loop_lag_ms": {"p50": round(_pct(lags, 0.5), 2), "p99": round(_pct(lags, 0.99), 2)},
        "duplicates_per_kill": [k["duplicates"] for k in kills],
        "window_ms": {"n": len(windows), "p50": round(_pct(windows, 0.5), 2), "p99": round(_pct(windows, 0.99), 2),
                      "max": round(max(windows, default=0.0), 1)},
        "window_queued_ms": {"p50": round(_pct(queued, 0.5), 2), "p99": round(_pct(queued, 0.99), 2)},
        "window_written_ms": {"p50": round(_pct(written, 0.5), 2), "p99": round(_pct(written, 0.99), 2)},
        # stamped rows whose window overlapped another transaction of the relay, by its kind
        "window_overlapped_by": dict(overlapped),
        "exposure": {"mean": round(statistics.fmean(exposure), 2) if exposure else 0.0,
                     "p99": _pct([float(e) for e in exposure], 0.99), "max": max(exposure, default=0)},
        "max_telegram_sends_in_flight": max_in_flight,
    }


# --- the run --------------------------------------------------------------------------------


def _start_relay(code_dir: Path, config: dict[str, Any], log_path: Path) -> subprocess.Popen[bytes]:
    """bench/outbox_relay_child.py on the code in ``code_dir``, its output in ``log_path``."""
    env = {**os.environ, "PYTHONPATH": str(code_dir)}
    with log_path.open("wb") as log:
        return subprocess.Popen([sys.executable, str(HERE / "outbox_relay_child.py"), json.dumps(config)],
                                env=env, cwd=str(code_dir), stdout=log, stderr=subprocess.STDOUT)


def _export(revision: str, into: Path) -> None:
    """The tree of ``revision`` (git archive) in ``into``."""
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)


def _first_push(trace: Path) -> float | None:
    """When a running relay's first Telegram push started (None: not yet)."""
    try:
        with trace.open() as f:
            for line in f:
                if line.startswith("S ") and line.endswith("\n"):
                    return float(line.split()[1])
    except FileNotFoundError:
        pass
    return None


async def _variant(url: str, fakes: dict[str, str], maker: Any, senders: dict[str, Any], scale: float,
                   rates: dict[str, float], version: str, number: int, code_dir: Path, tmp: Path,
                   kills: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from bot.db.models import OutboxMessage
    from delivery.budget import build_limiter
    from delivery.messages import Reply
    from delivery.outbox import OutboxRelay, Push, enqueue_many
    from delivery.ratelimit import ChannelLimit

    M = OutboxMessage
    tag = f"v{number}"
    line_rate, telegram_rate = rates["line"], rates["telegram"]
    total = int(TOTAL_PUSHES * scale)
    # each channel needs about this long at its allowed rate: enough for every relay to be
    # killed at its moment (and for the rows each dead relay leaves leased for a while)
    run_seconds = max(RUN_SECONDS * scale, (kills + 1) * (KILL_AFTER[1] + 3.0))
    telegram_n = int(telegram_rate * run_seconds)
    multicast_n = max(0, total - telegram_n)                        # users, 500 per request
    line_single = max(0, int(line_rate * run_seconds - multicast_n / 500))
    chat = [str((2 + number) * 1_000_000 + i) for i in range(telegram_n)]
    user = [f"U{number:x}{i:031x}" for i in range(line_single + multicast_n)]
    started = time.perf_counter()
    telegram_ids: list[int] = []
    for start in range(0, max(line_single, telegram_n), 5000):
        async with maker() as s, s.begin():
            await enqueue_many(s, [Push("line", [user[i]], [Reply(f"push {i}")], tag)
                                   for i in range(start, min(start + 5000, line_single))])
            telegram_ids += await enqueue_many(s, [Push("telegram", [chat[i]], [Reply("event notice")], tag)
                                                   for i in range(start, min(start + 5000, telegram_n))])
    async with maker() as s, s.begin():
        await enqueue_many(s, [
            Push("line", user[line_single + b:line_single + min(b + 500, multicast_n)],
                 [Reply(f"alert {b // 500}")], tag, ref=f"alert:{tag}")
            for b in range(0, multicast_n, 500)
        ])
    enqueue_seconds = time.perf_counter() - started
    row_of_chat = dict(zip(chat, telegram_ids, strict=True))
    async with maker() as s:
        line_ids = set((await s.execute(select(M.id).where(M.kind == tag, M.channel == "line"))).scalars())

    # relays killed with SIGKILL, one after the other, each at a random moment of its work
    config = {"url": url, "fakes": fakes, "line_rate": line_rate, "telegram_rate": telegram_rate,
              "lease": LEASE_SECONDS}
    lives: list[Life] = []
    t0 = time.time()
    rng = random.Random(0)   # the same kill moments for every version
    for k in range(kills):
        trace = tmp / f"trace-{tag}-{k}.txt"
        log_path = tmp / f"relay-{tag}-{k}.log"
        config["trace"] = str(trace)
        process = _start_relay(code_dir, config, log_path)
        deadline = time.monotonic() + 120
        kill_after = rng.uniform(*KILL_AFTER)
        while (first := _first_push(trace)) is None or time.monotonic() - first < kill_after:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"relay {k} of {version} stopped or stalled:\n{log_path.read_text()[-3000:]}")
            await asyncio.sleep(0.01)
        killed = time.monotonic()
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        lives.append(Life.read(trace, killed))
    killed_at = time.time() - t0

    # the survivor: a relay in this process finishes the queue
    limits = {"line": ChannelLimit(rate=line_rate),
              "telegram": ChannelLimit(rate=telegram_rate, per_recipient_rate=1.0)}
    last = OutboxRelay(maker, senders, build_limiter(maker, limits), lease=timedelta(seconds=LEASE_SECONDS),
                       poll_interval=0.2)
    task = asyncio.create_task(last.run())
    while True:
        await asyncio.sleep(1.0)
        async with maker() as s:
            pending = await s.scalar(select(func.count()).select_from(M).where(M.kind == tag, M.status == "pending"))
        if not pending:
            break
    last.stop()
    await task

    # what the killed relays sent from their start to their kill (Telegram: pushes started,
    # LINE: rows stamped), per second and as a share of what the rate limit let through in
    # that time (a full bucket — one second's worth — plus the rate)
    achieved: dict[str, float] = {}
    share: dict[str, float] = {}
    for channel, rate in (("line", line_rate), ("telegram", telegram_rate)):
        done, seconds, allowed = 0, 0.0, 0.0
        for life in lives:
            if channel == "telegram":
                done += len(life.started)
            else:
                done += sum(1 for r in life.stamped if r in line_ids)
            seconds += life.killed - life.ready
            allowed += rate + rate * (life.killed - life.ready)
        achieved[channel] = done / seconds if seconds > 0 else 0.0
        share[channel] = done / allowed if allowed > 0 else 0.0
    async with maker() as s:
        status = Counter({(c, st): n for c, st, n in (await s.execute(
            select(M.channel, M.status, func.count()).where(M.kind == tag).group_by(M.channel, M.status))).all()})
    return {"version": version, "tag": tag, "enqueue_seconds": round(enqueue_seconds, 1),
            "kills": kills, "last_kill_at_seconds": round(killed_at, 1), "lives": lives,
            "row_of_chat": row_of_chat, "chats": set(chat), "users": set(user),
            "pushes": {"line": line_single + multicast_n, "telegram": telegram_n},
            "rows": {"line": len(line_ids), "telegram": telegram_n},
            "failed_rows": {c: status[(c, "failed")] for c in ("line", "telegram")},
            "achieved_per_s": {c: round(v, 1) for c, v in achieved.items()},
            "share_of_allowed": {c: round(v, 3) for c, v in share.items()},
            "allowed_per_s": {"line": line_rate, "telegram": telegram_rate}}


async def _calibrate(url: str, fakes: dict[str, str], conn: Any) -> dict[str, float]:
    """Sends per second of one unlimited relay here, both channels at once."""
    from sqlalchemy import func, select

    from bot.db.models import OutboxMessage
    from bot.db.session import create_engine_and_sessionmaker, upgrade_database
    from delivery.messages import Reply
    from delivery.outbox import OutboxRelay, Push, enqueue_many
    from delivery.ratelimit import ChannelLimit, RateLimiter

    await upgrade_database(url)
    engine, maker = create_engine_and_sessionmaker(url)
    senders = await start_senders(fakes)
    M = OutboxMessage
    async with maker() as s, s.begin():
        await enqueue_many(s, [Push("line", [f"C{i:032x}"], [Reply(f"calibration {i}")], "calibration")
                               for i in range(CALIBRATION["line"])]
                           + [Push("telegram", [str(900000 + i)], [Reply("calibration")], "calibration")
                              for i in range(CALIBRATION["telegram"])])
    unlimited = {"line": ChannelLimit(rate=1e6), "telegram": ChannelLimit(rate=1e6)}
    relay = OutboxRelay(maker, senders, RateLimiter(unlimited), poll_interval=0.2)
    t_cal = time.time()
    task = asyncio.create_task(relay.run())
    while relay.stats["sent"] + relay.stats["failed"] < sum(CALIBRATION.values()):
        await asyncio.sleep(0.2)
    relay.stop()
    await task
    capacity: dict[str, float] = {}
    async with maker() as s:
        for channel in ("line", "telegram"):
            sent, last = (await s.execute(select(func.count(), func.max(M.sent_at)).where(
                M.channel == channel, M.status == "sent", M.kind == "calibration"))).one()
            capacity[channel] = sent / (last.timestamp() - t_cal) if last else 0.0
    await close_senders(senders)
    await engine.dispose()
    conn.send("report")
    conn.recv()
    return capacity


async def _measure(url: str, fakes: dict[str, str], conn: Any, scale: float, kills: int, rates: dict[str, float],
                   version: str, number: int, code_dir: Path, tmp: Path) -> dict[str, Any]:
    """One version of the relay, with fake platforms and a database of its own (nothing left
    over from another version: the second one measured in a shared set-up came out slower)."""
    from bot.db.session import create_engine_and_sessionmaker, upgrade_database

    await upgrade_database(url)
    engine, maker = create_engine_and_sessionmaker(url)
    senders = await start_senders(fakes)
    r = await _variant(url, fakes, maker, senders, scale, rates, version, number, code_dir, tmp, kills)
    await close_senders(senders)
    await engine.dispose()

    conn.send("report")
    report = conn.recv()
    deliveries: dict[str, list[float]] = defaultdict(list)
    for chat_id, at in report["telegram_at"]:
        deliveries[chat_id].append(at)
    line = {k: v for k, v in report["line"].items() if k[0] in r["users"]}
    telegram = {k: v for k, v in report["telegram"].items() if k[0] in r["chats"]}
    out: dict[str, Any] = {"version": r["version"], "kills": r["kills"], "enqueue_seconds": r["enqueue_seconds"],
                           "last_kill_at_seconds": r["last_kill_at_seconds"],
                           "line_requests": report["line_requests"],
                           "line_409_retry_key_dedupes": report["line_statuses"].get(409, 0),
                           "telegram_requests": report["telegram_requests"]}
    for channel, delivered in (("line", line), ("telegram", telegram)):
        out[channel] = {
            "pushes": r["pushes"][channel], "rows": r["rows"][channel], "failed_rows": r["failed_rows"][channel],
            "delivered_unique": len(delivered), "losses": r["pushes"][channel] - len(delivered),
            "duplicates": sum(v - 1 for v in delivered.values()),
            "achieved_per_s": r["achieved_per_s"][channel], "allowed_per_s": r["allowed_per_s"][channel],
            "share_of_allowed": r["share_of_allowed"][channel],
        }
    out["telegram_kills"] = _explain(r["lives"], r["row_of_chat"], deliveries)
    return out


def run() -> dict[str, Any]:
    scale = float(os.environ.get("KURASHI_BENCH_OUTBOX_SCALE", "1"))
    kills = max(1, int(os.environ.get("KURASHI_BENCH_OUTBOX_KILLS", "3")))
    capacity, backend = run_against_fakes(_serve_fakes, _calibrate, "bench-outbox.db")
    rates = {"line": float(min(LINE_RATE_CAP, max(1, round(SHARE_OF_CAPACITY * capacity["line"])))),
             "telegram": float(min(TELEGRAM_RATE_CAP, max(1, round(SHARE_OF_CAPACITY * capacity["telegram"]))))}
    if TELEGRAM_RTT:   # the capacity measured is the round trip's, not the relay's: Telegram's own rate
        rates["telegram"] = TELEGRAM_RATE_CAP
    result: dict[str, Any] = {"database": backend, "calibrated_capacity_per_s": {c: round(v, 1) for c, v in
                                                                                 capacity.items()},
                              "allowed_per_s": rates, "versions": []}
    keep = os.environ.get("KURASHI_BENCH_OUTBOX_TRACES")   # a folder to keep the traces in (for a look)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(keep or tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        versions: list[tuple[str, Path]] = [("current", ROOT)]
        if BASELINE:
            baseline_dir = tmp / "baseline"
            _export(BASELINE, baseline_dir)
            versions.insert(0, (f"baseline {BASELINE[:9]}", baseline_dir))
        for number, (version, code_dir) in enumerate(versions):
            measured, _ = run_against_fakes(
                _serve_fakes,
                lambda url, fakes, conn, version=version, number=number, code_dir=code_dir: _measure(
                    url, fakes, conn, scale, kills, rates, version, number, code_dir, tmp),
                "bench-outbox.db")
            result["versions"].append(measured)
    cap = result["calibrated_capacity_per_s"]
    table = [
        (f"outbox ({backend}), scale {scale:g}: calibrated capacity of one relay here: LINE {cap['line']} req/s, "
         f"Telegram {cap['telegram']} msg/s; allowed = {SHARE_OF_CAPACITY:.0%} of it, capped at "
         f"{LINE_RATE_CAP:.0f} and {TELEGRAM_RATE_CAP:.0f}; Telegram round trip {TELEGRAM_RTT * 1000:.0f} ms, "
         f"{result['versions'][0]['kills']} kills per version"),
        (f"{'version':<18} {'channel':<9} {'pushes':>7} {'rows':>6} {'achieved/s':>10} {'allowed/s':>9} "
         f"{'share':>6} {'losses':>6} {'dups':>5}"),
    ]
    for v in result["versions"]:
        for channel in ("line", "telegram"):
            r = v[channel]
            table.append(f"{v['version']:<18} {channel:<9} {r['pushes']:>7} {r['rows']:>6} {r['achieved_per_s']:>10} "
                         f"{r['allowed_per_s']:>9} {r['share_of_allowed']:>6} {r['losses']:>6} {r['duplicates']:>5}")
    table.append("Telegram, per kill -9: duplicates = answered by the fake while in flight + answered but "
                 "not stamped; window = push returned -> stamp committed; exposure = rows between push start "
                 "and stamp commit (what a kill at that moment repeats), every 10 ms")
    for v in result["versions"]:
        k = v["telegram_kills"]
        per_kill = ", ".join(f"{x['duplicates']} = {x['in_flight_delivered']} + {x['returned_unstamped']}"
                             for x in k["kills"])
        w, e, lag = k["window_ms"], k["exposure"], k["event_loop_lag_ms"]
        caps = k["kills"][0]["caps"] if k["kills"] else {}
        q, wr = k["window_queued_ms"], k["window_written_ms"]
        table += [
            f"{v['version']:<18} dups per kill: {per_kill}",
            (f"{'':<18} window p50 {w['p50']} ms, p99 {w['p99']} ms, max {w['max']} ms (n={w['n']}): queued "
             f"p50 {q['p50']}/p99 {q['p99']} ms, then written p50 {wr['p50']}/p99 {wr['p99']} ms"),
            (f"{'':<18} exposure mean {e['mean']}, p99 {e['p99']}, max {e['max']}; sends in flight max "
             f"{k['max_telegram_sends_in_flight']} (bound: {caps.get('telegram', 'none; 64 for all channels')}); "
             f"event loop lag p50 {lag['p50']} ms, p99 {lag['p99']} ms"),
        ]
    table.append("LINE multicast = 1 request per 500 users; 409s on resent retry keys: "
                 + ", ".join(f"{v['version']} {v['line_409_retry_key_dedupes']}" for v in result["versions"]))
    result["table"] = table
    return result
