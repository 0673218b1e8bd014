"""Webhook path benchmark: signed LINE webhooks and Telegram updates through the real app
(uvicorn on loopback, SQLite, the real knowledge base and matcher) until the answer
reaches the fake platform API, side by side with a bare ASGI endpoint on the same server
stack (the ceiling: what uvicorn + the HTTP client alone allow on this machine).

Measured per platform: events/s (events answered / wall time) and p50/p99 latency from
"webhook sent" to "answer received by the fake platform", under load and one event at a
time. The fakes and the load generator run in a child process so that only the app's CPU
is measured. Bounded: a few thousand requests (KURASHI_BENCH_WEBHOOK_EVENTS per platform).
Owns nothing else; imports the fakes from tests/.
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"

LINE_EVENTS = int(os.environ.get("KURASHI_BENCH_WEBHOOK_EVENTS", "600"))
# Every Telegram update here is a first contact answered with ~3 messages, and direct
# answers share the bot-wide budget of 30 messages/s with the outbox: ~10 updates/s at most.
TELEGRAM_EVENTS = max(50, LINE_EVENTS // 2)
CEILING_REQUESTS = LINE_EVENTS
CONCURRENCY = 32
SEQUENTIAL = 30          # events sent one at a time (each waits for its answer): latency without a queue
USERS = 200
TELEGRAM_SECRET = "bench-telegram-secret-7c1d"

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
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[Any], str]:
    # A long keep-alive: between phases the client's pooled connections sit idle, and a
    # connection closed by the server at the moment it is reused would abort the run.
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                            access_log=False, timeout_keep_alive=300)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            try:
                task.result()
            except SystemExit as exc:  # uvicorn exits on a failed lifespan start-up
                raise RuntimeError("the app failed to start (see the log above)") from exc
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, f"http://127.0.0.1:{port}"


async def _stop(server: uvicorn.Server, task: asyncio.Task[Any]) -> None:
    server.should_exit = True
    await asyncio.wait_for(task, 60)


async def _bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ceiling: read the body, answer 200 with a small JSON, do nothing else."""
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


async def _post(client: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST once, retrying once on a dropped connection (webhooks are idempotent by event id)."""
    for attempt in (1, 2):
        try:
            async with client.post(url, data=body, headers=headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _drive(client: aiohttp.ClientSession, requests: list[tuple[str, bytes, dict[str, str]]]) -> list[float]:
    """POST every request with CONCURRENCY workers; returns the send time of each (perf_counter)."""
    sent_at = [0.0] * len(requests)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(requests)):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            url, body, headers = requests[i]
            sent_at[i] = time.perf_counter()
            status = await _post(client, url, body, headers)
            if status != 200:
                raise RuntimeError(f"webhook answered {status}")

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return sent_at


def _summary(name: str, count: int, latencies_ms: list[float], wall: float) -> dict[str, Any]:
    return {
        "name": name,
        "events": count,
        "answered": len(latencies_ms),
        "events_per_s": round(len(latencies_ms) / wall, 1) if wall > 0 else None,
        "p50_ms": round(_percentile(latencies_ms, 0.50), 2),
        "p99_ms": round(_percentile(latencies_ms, 0.99), 2),
        "mean_ms": round(statistics.fmean(latencies_ms), 2) if latencies_ms else None,
    }


async def _ceiling(client: aiohttp.ClientSession, base: str, body: bytes, name: str) -> dict[str, Any]:
    latencies: list[float] = []
    queue = list(range(CEILING_REQUESTS))

    async def worker() -> None:
        while queue:
            queue.pop()
            start = time.perf_counter()
            status = await _post(client, f"{base}/ceiling", body, {"Content-Type": "application/json"})
            if status != 200:
                raise RuntimeError(f"bare endpoint answered {status}")
            latencies.append((time.perf_counter() - start) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return _summary(name, CEILING_REQUESTS, latencies, time.perf_counter() - started)


def _mean_ceiling(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """One ceiling from the runs before and after a platform's load: mean rate, both kept."""
    merged = dict(after)
    rates = [r["events_per_s"] for r in (before, after) if r["events_per_s"]]
    merged["events_per_s"] = round(statistics.fmean(rates), 1) if rates else None
    merged["runs_events_per_s"] = [before["events_per_s"], after["events_per_s"]]
    return merged


async def _load(conn: Any) -> None:
    """Child process: the fake platforms and the load generator, so that their CPU is not
    charged to the app under test. Talks to the parent over ``conn``."""
    from tests.fakes.line_api import FakeLineAPI
    from tests.fakes.telegram_api import FakeTelegramAPI
    from tests.fakes.webhooks import line_body, line_signed, line_text_event, telegram_text_update

    questions = _questions()
    # Validation against the specs is the tests' job; here it would measure openapi-core.
    line_api = await FakeLineAPI(validate=False).start()
    telegram_api = await FakeTelegramAPI(validate=False).start()
    conn.send({"line": line_api.base_url, "line_token": line_api.access_token, "line_secret": line_api.channel_secret,
               "telegram": telegram_api.base_url, "telegram_token": telegram_api.token})
    urls = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    base, bare_base = urls["app"], urls["bare"]
    results: dict[str, Any] = {}
    try:
        # aiohttp as the load generator: on this stack httpx's client costs ~20x more per request.
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as client:
            # -- LINE -------------------------------------------------------------------------
            # The ceiling is measured right before and right after each platform's run (the
            # machine is shared and its speed drifts); the share uses their mean.
            ceiling_before = await _ceiling(client, bare_base, line_body(line_text_event("U" + "0" * 32, "x")),
                                            "bare ASGI (LINE body)")
            users = [f"U{i:032x}" for i in range(USERS)]
            tokens, requests = [], []
            for i in range(LINE_EVENTS):
                user = users[i % USERS]
                token = line_api.issue_reply_token(user)
                body = line_body(line_text_event(user, questions[i % len(questions)], reply_token=token))
                tokens.append(token)
                requests.append((f"{base}/webhooks/line", body, line_signed(body, line_api.channel_secret)))
            started = time.perf_counter()
            sent = await _drive(client, requests)
            await line_api.wait_until(lambda: len(line_api.deliveries) >= LINE_EVENTS, timeout=300)
            arrival = {}
            for record in line_api.requests_to("/v2/bot/message/reply"):
                if record.status == 200:
                    arrival[record.json["replyToken"]] = record.at
            # RecordedRequest.at is time.monotonic(); convert through the offset to perf_counter.
            offset = time.perf_counter() - time.monotonic()
            latencies = [(arrival[t] + offset - sent[i]) * 1000 for i, t in enumerate(tokens) if t in arrival]
            wall = max(arrival.values()) + offset - started if arrival else 0.0
            results["line"] = _summary("LINE webhook → reply", LINE_EVENTS, latencies, wall)
            results["line"]["pushed_instead"] = len(line_api.requests_to("/v2/bot/message/push"))
            one_by_one = []
            for i in range(SEQUENTIAL):
                user = users[i % USERS]
                token = line_api.issue_reply_token(user)
                body = line_body(line_text_event(user, questions[(i * 7) % len(questions)], reply_token=token))
                start = time.perf_counter()
                await _post(client, f"{base}/webhooks/line", body, line_signed(body, line_api.channel_secret))
                await line_api.wait_for_reply(token, timeout=60)
                one_by_one.append((time.perf_counter() - start) * 1000)
            results["line"]["sequential_p50_ms"] = round(_percentile(one_by_one, 0.5), 2)
            results["line"]["sequential_p99_ms"] = round(_percentile(one_by_one, 0.99), 2)
            results["line_ceiling"] = _mean_ceiling(
                ceiling_before, await _ceiling(client, bare_base, requests[0][1], "bare ASGI (LINE body)"))

            # -- Telegram ---------------------------------------------------------------------
            chats = [900000 + i for i in range(TELEGRAM_EVENTS)]   # one chat per update: arrival by chat id
            requests = []
            for i, chat in enumerate(chats):
                update = telegram_text_update(chat, questions[i % len(questions)])
                body = json.dumps(update).encode("utf-8")
                requests.append((f"{base}/webhooks/telegram", body,
                                 {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}))
            ceiling_before = await _ceiling(client, bare_base, requests[0][1], "bare ASGI (Telegram body)")
            started = time.perf_counter()
            sent = await _drive(client, requests)
            await telegram_api.wait_until(
                lambda: len({m["chat_id"] for m in telegram_api.sent}) >= TELEGRAM_EVENTS, timeout=300)
            first_arrival: dict[str, float] = {}
            for call in telegram_api.calls_of("sendMessage"):
                chat = str(call.params.get("chat_id"))
                if call.record.status == 200 and chat not in first_arrival:
                    first_arrival[chat] = call.record.at
            offset = time.perf_counter() - time.monotonic()
            latencies = [(first_arrival[str(c)] + offset - sent[i]) * 1000
                         for i, c in enumerate(chats) if str(c) in first_arrival]
            wall = max(first_arrival.values()) + offset - started if first_arrival else 0.0
            results["telegram"] = _summary("Telegram webhook → sendMessage", TELEGRAM_EVENTS, latencies, wall)
            one_by_one = []
            for i in range(SEQUENTIAL):
                chat = 800000 + i
                body = json.dumps(telegram_text_update(chat, questions[(i * 7) % len(questions)])).encode("utf-8")
                start = time.perf_counter()
                await _post(client, f"{base}/webhooks/telegram", body, {
                    "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
                await telegram_api.wait_for_messages(chat, 1, timeout=60)
                one_by_one.append((time.perf_counter() - start) * 1000)
            results["telegram"]["sequential_p50_ms"] = round(_percentile(one_by_one, 0.5), 2)
            results["telegram"]["sequential_p99_ms"] = round(_percentile(one_by_one, 0.99), 2)
            results["telegram_ceiling"] = _mean_ceiling(
                ceiling_before, await _ceiling(client, bare_base, requests[0][1], "bare ASGI (Telegram body)"))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        results = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        await line_api.stop()
        await telegram_api.stop()
    conn.send(results)


def _load_main(conn: Any) -> None:
    asyncio.run(_load(conn))


async def _run() -> dict[str, Any]:
    import multiprocessing

    from bot.app import create_app
    from bot.settings import Settings

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_load_main, args=(child,), daemon=True)
    process.start()
    loop = asyncio.get_running_loop()
    tmp = tempfile.TemporaryDirectory(prefix="kurashi-bench-webhook-")
    try:
        fakes = await loop.run_in_executor(None, parent.recv)
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{tmp.name}/bench.db",
            line_channel_secret=fakes["line_secret"], line_channel_access_token=fakes["line_token"],
            line_api_base_url=fakes["line"], telegram_bot_token=fakes["telegram_token"],
            telegram_webhook_secret=TELEGRAM_SECRET, telegram_api_base_url=fakes["telegram"],
            run_sender=True, run_scheduler=False, log_level="WARNING",
        )
        server, task, base = await _serve(create_app(settings))
        bare_server, bare_task, bare_base = await _serve(_bare_app)
        try:
            parent.send({"app": base, "bare": bare_base})
            results = await loop.run_in_executor(None, parent.recv)
        finally:
            await _stop(server, task)
            await _stop(bare_server, bare_task)
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
        tmp.cleanup()
    if "error" in results:
        raise RuntimeError(f"load generator failed: {results['error']}")

    for platform in ("line", "telegram"):
        ceiling = results[f"{platform}_ceiling"]["events_per_s"]
        got = results[platform]["events_per_s"]
        results[platform]["share_of_ceiling"] = round(got / ceiling, 3) if ceiling and got else None
    results["setup"] = {
        "concurrency": CONCURRENCY, "line_users": USERS, "database": "sqlite",
        "ceiling": "bare ASGI measured right before and right after each platform's run; mean of the two",
        "server": f"uvicorn {uvicorn.__version__}, one app process; fakes and load generator in a child process",
        "telegram_chats": "one new chat per update (every update is a first contact, ~3 messages); "
                          "answers are paced by the shared Telegram budget of 30 messages/s",
        "latency": "webhook sent → first answer received by the fake platform API; under load it is "
                   "mostly queueing (webhooks are acknowledged at once, answers follow at the processing "
                   "rate), so the one-at-a-time figures show the cost of one event",
    }
    results["table"] = [
        f"{r['name']:<34} {r['events_per_s']:>8} ev/s  p50 {r['p50_ms']:>8} ms  p99 {r['p99_ms']:>8} ms"
        + (f"  ({r['share_of_ceiling']:.1%} of ceiling)" if r.get("share_of_ceiling") else "")
        for r in (results["line"], results["line_ceiling"], results["telegram"], results["telegram_ceiling"])
    ] + [
        f"{name:<34} one at a time: p50 {results[key]['sequential_p50_ms']} ms, "
        f"p99 {results[key]['sequential_p99_ms']} ms"
        for key, name in (("line", "LINE (no queue)"), ("telegram", "Telegram (no queue)"))
    ]
    return results


def run() -> dict[str, Any]:
    return asyncio.run(_run())
