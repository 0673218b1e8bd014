"""Webhook path benchmark, open loop, against real `kurashi serve` processes.

Signed LINE webhooks (and Telegram updates) are sent at a fixed rate — on schedule, whether
or not earlier ones were answered, as the platforms do — to `kurashi serve` subprocesses
(SQLite: one process; PostgreSQL, when KURASHI_TEST_POSTGRES_URL is set: several, the
requests spread round-robin as a load balancer would). Measured per rate: the answered
rate, p50/p99 from "scheduled send" to "answer received by the fake platform API" (an
open-loop latency: queueing included, no coordinated omission), and the servers' CPU
milliseconds per event (user + system time of the `kurashi serve` processes, /proc), and the
whole machine's (every process and the kernel, /proc/stat), also without the generator's and
fakes' process: cores × 1000 / that is the most events per second this machine could answer,
whatever the number of workers.

The ceiling: a bare ASGI app under the same uvicorn in its own process, driven closed-loop
by the same load generator — what the generator and the HTTP stack allow on this machine
(the generator is not the bottleneck below that rate). The fakes and the generator run in
a child process of their own.

Knobs (environment): KURASHI_BENCH_WEBHOOK_SECONDS (per rate, default 4),
KURASHI_BENCH_WEBHOOK_SQLITE_RATES (default "25,50,100"), KURASHI_BENCH_WEBHOOK_PG_RATES
(default "100,300,600"), KURASHI_BENCH_WEBHOOK_PG_PROCESSES (default 2),
KURASHI_BENCH_WEBHOOK_PG_SINGLE_RATES (default "300"; PostgreSQL again with one `kurashi serve`
process on a fresh database: the one-process goal; empty skips it),
KURASHI_BENCH_WEBHOOK_PG_WORKERS (default unset; N: PostgreSQL runs as one `kurashi serve
--workers N` on one port instead of PG_PROCESSES separate ports — the version measured,
a baseline too, must know --workers),
KURASHI_BENCH_WEBHOOK_TELEGRAM_RATE (default 20; 0 skips the Telegram row), KURASHI_BENCH_WEBHOOK_PROFILE (a folder:
the servers run under cProfile), KURASHI_BENCH_WEBHOOK_BASELINE (a git revision measured
first, side by side: `git archive` into a temporary folder, same virtualenv). Owns nothing else; imports the fakes from tests/.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"

SECONDS = float(os.environ.get("KURASHI_BENCH_WEBHOOK_SECONDS", "4"))
SQLITE_RATES = [int(r) for r in os.environ.get("KURASHI_BENCH_WEBHOOK_SQLITE_RATES", "25,50,100").split(",") if r]
PG_RATES = [int(r) for r in os.environ.get("KURASHI_BENCH_WEBHOOK_PG_RATES", "100,300,600").split(",") if r]
PG_PROCESSES = int(os.environ.get("KURASHI_BENCH_WEBHOOK_PG_PROCESSES", "2"))
PG_SINGLE_RATES = [int(r) for r in os.environ.get("KURASHI_BENCH_WEBHOOK_PG_SINGLE_RATES", "300").split(",") if r]
#: N > 0: PostgreSQL as one `kurashi serve --workers N` (one port) instead of PG_PROCESSES ports.
PG_WORKERS = int(os.environ.get("KURASHI_BENCH_WEBHOOK_PG_WORKERS", "0") or 0)
#: A folder: run the servers under cProfile and write serve-<port>.prof there.
PROFILE_DIR = os.environ.get("KURASHI_BENCH_WEBHOOK_PROFILE", "")
#: A git revision: the same runs against that version of the code first (same virtualenv,
#: its own database), so "before" and "after" are measured side by side.
BASELINE = os.environ.get("KURASHI_BENCH_WEBHOOK_BASELINE", "")
TELEGRAM_RATE = int(os.environ.get("KURASHI_BENCH_WEBHOOK_TELEGRAM_RATE", "20"))
USERS = 5000
TELEGRAM_SECRET = "bench-telegram-secret-7c1d"
SECRET_KEY = "bench-secret-key-0123456789abcdefghijklmnop"
STARTUP_LIMIT = 180.0
DRAIN_LIMIT = 60.0
CEILING_SECONDS = 2.0
CEILING_CONCURRENCY = 64

# Used only when ../shared/eval/dev.jsonl is absent.
_FALLBACK_QUESTIONS = ["where do I put plastic bottles", "how to throw away a sofa", "I lost my residence card",
                       "national health insurance", "earthquake what to do", "how to get a my number card"]


def _questions() -> list[str]:
    path = SHARED / "eval" / "dev.jsonl"
    if not path.exists():
        return _FALLBACK_QUESTIONS
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        # Resident questions only: commands would change the user's state (language, forget me…).
        if not str(item.get("intent", "")).startswith(("bot.", "greeting.")):
            out.append(item["text"])
    return out or _FALLBACK_QUESTIONS


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (uvicorn's workers of a `kurashi serve --workers N`)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _machine_cpu_seconds() -> float:
    """CPU time spent by the whole machine, every process and the kernel (/proc/stat's first
    line: all but idle and iowait): servers, PostgreSQL, the load generator and the fakes."""
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    busy = sum(fields[:8]) - fields[3] - fields[4]   # user nice system idle iowait irq softirq steal
    return busy / ticks


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (/proc/<pid>/stat fields 14 and 15)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


# --- the bare ASGI ceiling (run as `python -m bench.bench_webhook bare PORT`) ----------------

async def _bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the body, answer 200 with a small JSON, do nothing else."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"ok":true}'})


# --- servers ----------------------------------------------------------------------------------

class Servers:
    """`kurashi serve` subprocesses on loopback ports (or the bare app)."""

    def __init__(self, env: dict[str, str], count: int, *, bare: bool = False, code_dir: Path | None = None,
                 workers: int = 1) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        self.logs: list[Any] = []
        kurashi = Path(sys.executable).parent / "kurashi"
        for _ in range(count):
            port = _free_port()
            if bare:
                code = ("import uvicorn; from bench.bench_webhook import _bare_app; "
                        f"uvicorn.run(_bare_app, host='127.0.0.1', port={port}, log_level='warning', "
                        "access_log=False, timeout_keep_alive=300)")
                command = [sys.executable, "-c", code]
            elif PROFILE_DIR:
                out = Path(PROFILE_DIR) / f"serve-{port}.prof"
                code = ("import cProfile; from bot.cli import main; "
                        f"cProfile.run('main([\"serve\", \"--port\", \"{port}\"])', {str(out)!r})")
                command = [sys.executable, "-c", code]
            elif code_dir is not None:   # another version of the code (the baseline), same virtualenv
                command = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())",
                           "serve", "--port", str(port)]
                env = {**env, "PYTHONPATH": str(code_dir)}
            else:
                command = [str(kurashi) if kurashi.exists() else sys.executable, *([] if kurashi.exists() else [
                    "-c", "import sys; from bot.cli import main; sys.exit(main())"]), "serve", "--port", str(port)]
            if workers > 1 and not bare:
                command += ["--workers", str(workers)]
            log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
            self.logs.append(log)
            self.procs.append(subprocess.Popen(command, env=env, cwd=code_dir or ROOT, stdout=log,
                                               stderr=subprocess.STDOUT))
            self.urls.append(f"http://127.0.0.1:{port}")

    def wait_ready(self, path: str = "/healthz") -> None:
        import httpx

        deadline = time.monotonic() + STARTUP_LIMIT
        for proc, url, log in zip(self.procs, self.urls, self.logs, strict=True):
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"server exited: {log.read().decode(errors='replace')[-3000:]}")
                try:
                    if httpx.get(url + path, timeout=2, trust_env=False).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start")
                time.sleep(0.2)

    @property
    def pids(self) -> list[int]:
        """The servers and their worker processes (with --workers)."""
        return [pid for p in self.procs for pid in (p.pid, *_children(p.pid))]

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)   # uvicorn's graceful stop (a profile is then written)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in self.logs:
            log.close()


# --- the load generator (child process, with the fakes) ---------------------------------------

async def _post(client: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> int:
    for attempt in (1, 2):
        try:
            async with client.post(url, data=body, headers=headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _open_loop(client: aiohttp.ClientSession, requests: list[tuple[str, bytes, dict[str, str]]],
                     rate: float) -> tuple[list[float], list[int]]:
    """Send request i at start + i/rate (not waiting for earlier answers); scheduled times and statuses."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    scheduled = [start + i / rate for i in range(len(requests))]
    statuses = [0] * len(requests)

    async def one(i: int) -> None:
        url, body, headers = requests[i]
        statuses[i] = await _post(client, url, body, headers)

    tasks = []
    for i in range(len(requests)):
        delay = scheduled[i] - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return scheduled, statuses


async def _ceiling(client: aiohttp.ClientSession, url: str, body: bytes) -> float:
    """Closed-loop requests/s the generator gets from the bare app."""
    count = 0
    deadline = time.monotonic() + CEILING_SECONDS

    async def worker() -> None:
        nonlocal count
        while time.monotonic() < deadline:
            await _post(client, url, body, {"Content-Type": "application/json"})
            count += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(CEILING_CONCURRENCY)))
    return count / (time.monotonic() - started)


async def _load(conn: Any) -> None:
    from tests.fakes.line_api import FakeLineAPI
    from tests.fakes.telegram_api import FakeTelegramAPI
    from tests.fakes.webhooks import line_body, line_signed, line_text_event, telegram_text_update

    questions = _questions()
    line_api = await FakeLineAPI(validate=False).start()
    telegram_api = await FakeTelegramAPI(validate=False).start()
    conn.send({"line": line_api.base_url, "line_token": line_api.access_token, "line_secret": line_api.channel_secret,
               "telegram": telegram_api.base_url, "telegram_token": telegram_api.token})
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=0)
    counter = 0
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as client:
        while True:
            order = await loop.run_in_executor(None, conn.recv)
            if order["do"] == "stop":
                break
            try:
                if order["do"] == "ceiling":
                    body = line_body(line_text_event("U" + "0" * 32, "x"))
                    conn.send({"ceiling_per_s": round(await _ceiling(client, order["urls"][0] + "/", body), 1)})
                    continue
                rate, count, urls = order["rate"], order["count"], order["urls"]
                requests, keys = [], []
                for i in range(count):
                    counter += 1
                    url = urls[i % len(urls)]
                    if order["do"] == "line":
                        user = f"U{(counter % USERS):032x}"
                        token = line_api.issue_reply_token(user)
                        body = line_body(line_text_event(user, questions[counter % len(questions)], reply_token=token))
                        requests.append((f"{url}/webhooks/line", body, line_signed(body, line_api.channel_secret)))
                        keys.append(token)
                    else:
                        chat = 5_000_000 + counter       # one chat per update: arrival by chat id
                        body = json.dumps(telegram_text_update(chat, questions[counter % len(questions)])).encode()
                        requests.append((f"{url}/webhooks/telegram", body, {
                            "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}))
                        keys.append(str(chat))
                pushes_before = len(line_api.requests_to("/v2/bot/message/push"))
                conn.send({"started": True})
                scheduled, statuses = await _open_loop(client, requests, rate)
                wanted = set(keys)
                deadline = time.monotonic() + DRAIN_LIMIT
                arrival: dict[str, float] = {}
                while time.monotonic() < deadline:
                    arrival = {}
                    if order["do"] == "line":
                        for record in line_api.requests_to("/v2/bot/message/reply"):
                            token = (record.json or {}).get("replyToken")
                            if record.status == 200 and token in wanted:
                                arrival.setdefault(token, record.at)
                        pushed = len(line_api.requests_to("/v2/bot/message/push")) - pushes_before
                    else:
                        for call in telegram_api.calls_of("sendMessage"):
                            chat = str(call.params.get("chat_id"))
                            if call.record.status == 200 and chat in wanted:
                                arrival.setdefault(chat, call.record.at)
                        pushed = 0
                    if len(arrival) >= len(wanted):
                        break
                    await asyncio.sleep(0.2)
                # RecordedRequest.at is time.monotonic(); the schedule is loop.time() (also monotonic).
                offset = loop.time() - time.monotonic()
                latencies = [(arrival[k] + offset - scheduled[i]) * 1000 for i, k in enumerate(keys) if k in arrival]
                last = max(arrival.values()) + offset if arrival else scheduled[-1]
                conn.send({
                    "sent": count, "refused": sum(1 for s in statuses if s != 200), "answered": len(latencies),
                    "answered_per_s": round(len(latencies) / max(1e-9, last - scheduled[0]), 1),
                    "p50_ms": round(_percentile(latencies, 0.5), 1), "p99_ms": round(_percentile(latencies, 0.99), 1),
                    "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None, "pushed": pushed,
                })
            except Exception as exc:  # noqa: BLE001 - reported to the parent
                conn.send({"error": f"{type(exc).__name__}: {exc}"})
    await line_api.stop()
    await telegram_api.stop()


def _load_main(conn: Any) -> None:
    asyncio.run(_load(conn))


# --- the run ------------------------------------------------------------------------------------

#: The process of the load generator and the fake platform APIs (set by ``run``): its CPU is the
#: bench's own, not what a deployment would spend.
_HARNESS_PIDS: list[int] = []


def _phase(parent: Any, kind: str, rate: int, servers: Servers) -> dict[str, Any]:
    count = max(10, int(rate * SECONDS))
    parent.send({"do": kind, "rate": rate, "count": count, "urls": servers.urls})
    started = parent.recv()
    if "error" in started:
        raise RuntimeError(started["error"])
    cpu_before, machine_before = _cpu_seconds(servers.pids), _machine_cpu_seconds()
    harness_before = _cpu_seconds(_HARNESS_PIDS)
    result = parent.recv()
    if "error" in result:
        raise RuntimeError(result["error"])
    cpu = _cpu_seconds(servers.pids) - cpu_before
    machine = _machine_cpu_seconds() - machine_before
    harness = _cpu_seconds(_HARNESS_PIDS) - harness_before
    answered = max(1, result["answered"])
    result["rate"] = rate
    result["cpu_ms_per_event"] = round(cpu * 1000 / answered, 2)
    # Everything one event costs this machine, and without the bench's own load generator and
    # fakes (servers, PostgreSQL, kernel): what the cores allow at most (cores × 1000 / it).
    cores = os.cpu_count() or 1
    result["machine_cpu_ms_per_event"] = round(machine * 1000 / answered, 2)
    result["deployment_cpu_ms_per_event"] = round(max(0.0, machine - harness) * 1000 / answered, 2)
    result["machine_bound_per_s"] = round(cores * 1000 / max(1e-9, result["machine_cpu_ms_per_event"]))
    result["deployment_bound_per_s"] = round(cores * 1000 / max(1e-9, result["deployment_cpu_ms_per_event"]))
    return result


def _postgres_database(code_dir: Path | None = None) -> tuple[str, str] | None:
    admin_url = os.environ.get("KURASHI_TEST_POSTGRES_URL")
    if not admin_url:
        return None
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from bot.db.session import sync_url, upgrade_database_sync

    name = f"kurashi_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    if code_dir is None:
        upgrade_database_sync(url)   # once, before several processes start
    else:                            # with that version's migrations
        code = "import sys; from bot.db.session import upgrade_database_sync; upgrade_database_sync(sys.argv[1])"
        subprocess.run([sys.executable, "-c", code, url], check=True, cwd=code_dir,
                       env={**os.environ, "PYTHONPATH": str(code_dir)})
    return url, name


def _drop_postgres(name: str) -> None:
    from bench.platforms import drop_database

    drop_database(name)


def run() -> dict[str, Any]:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    loader = ctx.Process(target=_load_main, args=(child,), daemon=True)
    loader.start()
    _HARNESS_PIDS[:] = [loader.pid]
    tmp = tempfile.TemporaryDirectory(prefix="kurashi-bench-webhook-")
    results: dict[str, Any] = {"runs": []}
    try:
        fakes = parent.recv()
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "TELEGRAM_", "DATABASE_URL"))}
        base_env.update({
            "LINE_CHANNEL_SECRET": fakes["line_secret"], "LINE_CHANNEL_ACCESS_TOKEN": fakes["line_token"],
            "LINE_API_BASE_URL": fakes["line"], "TELEGRAM_BOT_TOKEN": fakes["telegram_token"],
            "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET, "TELEGRAM_API_BASE_URL": fakes["telegram"],
            "RUN_SENDER": "true", "RUN_SCHEDULER": "false", "LOG_LEVEL": "WARNING", "SECRET_KEY": SECRET_KEY,
            "NO_PROXY": "127.0.0.1,localhost", "ENVIRONMENT": "development",
        })

        bare = Servers(base_env, 1, bare=True)
        try:
            bare.wait_ready("/")
            parent.send({"do": "ceiling", "urls": bare.urls})
            results["ceiling"] = parent.recv()
        finally:
            bare.stop()

        versions: list[tuple[str, Path | None]] = [("current", None)]
        if BASELINE:
            baseline_dir = Path(tmp.name) / "baseline"
            baseline_dir.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE], check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(baseline_dir)], input=archive.stdout, check=True)
            versions.insert(0, (f"baseline {BASELINE[:9]}", baseline_dir))
        dropped: list[str] = []
        try:
            for version, code_dir in versions:
                setups: list[tuple[str, str, int, list[int]]] = [
                    ("sqlite", f"sqlite+aiosqlite:///{tmp.name}/bench-{len(dropped)}-{version[:8]}.db", 1,
                     SQLITE_RATES)]
                pg = _postgres_database(code_dir)
                if pg is not None:
                    dropped.append(pg[1])
                    setups.append(("postgresql", pg[0], PG_WORKERS or PG_PROCESSES, PG_RATES))
                if pg is not None and PG_SINGLE_RATES and (PG_WORKERS or PG_PROCESSES) > 1:
                    single = _postgres_database(code_dir)   # fresh: the same first contacts as above
                    if single is not None:
                        dropped.append(single[1])
                        setups.append(("postgresql", single[0], 1, PG_SINGLE_RATES))
                for database, url, processes, rates in setups:
                    workers = PG_WORKERS if database == "postgresql" and PG_WORKERS and processes > 1 else 1
                    servers = Servers({**base_env, "DATABASE_URL": url}, 1 if workers > 1 else processes,
                                      code_dir=code_dir, workers=workers)
                    try:
                        servers.wait_ready()
                        _phase(parent, "line", 10, servers)                   # warm-up (first contacts, caches)
                        for rate in rates:
                            run_ = _phase(parent, "line", rate, servers)
                            results["runs"].append({"version": version, "platform": "line", "database": database,
                                                    "processes": processes, "workers": workers > 1, **run_})
                        if database == "sqlite" and TELEGRAM_RATE > 0:
                            run_ = _phase(parent, "telegram", TELEGRAM_RATE, servers)
                            results["runs"].append({"version": version, "platform": "telegram",
                                                    "database": database, "processes": processes,
                                                    "workers": workers > 1, **run_})
                    finally:
                        servers.stop()
        finally:
            for name in dropped:
                _drop_postgres(name)
        parent.send({"do": "stop"})
    finally:
        loader.join(timeout=30)
        if loader.is_alive():
            loader.kill()
        tmp.cleanup()
    results["setup"] = {
        "seconds_per_rate": SECONDS,
        "servers": "`kurashi serve` subprocesses (RUN_SENDER on, scheduler off), fakes + open-loop load "
                   "generator in another process; PostgreSQL requests round-robin over the processes "
                   + (f"(one port: `kurashi serve --workers {PG_WORKERS}`)" if PG_WORKERS else ""),
        "latency": "scheduled send → first answer received by the fake platform API (open loop)",
        "cpu": "user+system time of the kurashi serve processes during the phase / events answered",
        "machine_cpu": "CPU time of the whole machine during the phase (servers, PostgreSQL, generator, fakes, "
                       "kernel; /proc/stat) / events answered; machine_bound_per_s = cores × 1000 / that; "
                       "deployment_*: the same without the load generator's and fakes' process (servers, "
                       "PostgreSQL, kernel: what a deployment would spend per event)",
        "telegram": "one new chat per update (first contacts)",
    }
    ceiling = (f"bare ASGI ceiling (closed loop, {CEILING_CONCURRENCY} conns): "
               f"{results['ceiling'].get('ceiling_per_s')} req/s")
    results["table"] = [ceiling] + [
        f"{r['version'][:18]:<18} {r['platform']:<8} {r['database']:<10} ×{r['processes']}{'w' if r.get('workers') else ''}"
        f" @ {r['rate']:>4}/s: answered "
        f"{r['answered']}/{r['sent']} ({r['answered_per_s']}/s)  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  "
        f"cpu {r['cpu_ms_per_event']} ms/event  machine {r['machine_cpu_ms_per_event']} ms/event, "
        f"{r['deployment_cpu_ms_per_event']} without the bench's generator and fakes "
        f"(≤ {r['deployment_bound_per_s']}/s on {os.cpu_count()} cores)" + (f"  refused {r['refused']}" if r["refused"] else "")
        for r in results["runs"]]
    return results


if __name__ == "__main__":
    outcome = run()
    print("\n".join(outcome["table"]))
