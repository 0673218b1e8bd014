"""`kurashi serve --workers N`: N uvicorn worker processes on one port, one PostgreSQL database.

The real command in a subprocess (PYTHONPATH = this checkout), on an empty PostgreSQL
database of the test's own, talking to the fake LINE API: the parent migrates once and the
workers do not; signed LINE webhooks from several residents, each on a fresh connection, are
served by both workers and every event is answered exactly once; one worker leads the
scheduler. And the refusals (SQLite, Telegram polling, no SECRET_KEY), which start nothing.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bot.cli import main
from bot.db.session import sync_url
from tests.fakes.line_api import FakeLineAPI
from tests.fakes.webhooks import line_body, line_signed, line_text_event

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ENV = "KURASHI_TEST_POSTGRES_URL"
WORKERS = 2
USERS = 8
MIN_ROUNDS = 5            # messages per resident at least…
MAX_ROUNDS = 40           # …and more (bounded) until both workers have served a webhook
STARTUP_LIMIT = 180.0     # seconds: bounds, not timing assertions (a loaded 2-core machine)
ANSWER_LIMIT = 120.0
STOP_LIMIT = 60.0
SECRET_KEY = "workers-test-secret-key-0123456789abcdefghij"
QUESTIONS = ["hello", "where do I put plastic bottles", "how to throw away a sofa", "garbage day",
             "I lost my residence card", "thank you"]
_SETTINGS_ENV = ("DATABASE_URL", "LINE_", "TELEGRAM_", "SMTP_", "SECRET_KEY", "FORWARDED_ALLOW_IPS", "RUN_",
                 "LOG_LEVEL", "ENVIRONMENT", "JMA_FEED_URL", "KNOWLEDGE_DIR", "METRICS_TOKEN",
                 "KURASHI_SCHEMA_UPGRADED")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test's own with no tables at all (the parent migrates it)."""
    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    name = f"kurashi_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue      # a traceback or anything else that is not one of our JSON lines
        if isinstance(entry, dict):
            lines.append(entry)
    return lines


def _pids(lines: list[dict[str, Any]], msg: str) -> list[int]:
    return [e["pid"] for e in lines if msg in str(e.get("msg", ""))]


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _server_env(database_url: str, line_api: FakeLineAPI) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SETTINGS_ENV)}
    env.update({
        "PYTHONPATH": str(REPO_ROOT), "DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY,
        "LINE_CHANNEL_SECRET": line_api.channel_secret, "LINE_CHANNEL_ACCESS_TOKEN": line_api.access_token,
        "LINE_API_BASE_URL": line_api.base_url, "RUN_SENDER": "true", "RUN_SCHEDULER": "true",
        "JMA_FEED_URL": "", "LOG_LEVEL": "INFO", "ENVIRONMENT": "development",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    })
    return env


async def _wait_for(predicate: Any, limit: float, what: str, proc: asyncio.subprocess.Process,
                    log: Path) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if proc.returncode is not None:
            pytest.fail(f"kurashi serve exited ({proc.returncode}) while waiting for {what}:\n"
                        f"{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}:\n{log.read_text(errors='replace')[-3000:]}")
        await asyncio.sleep(0.2)


@pytest.mark.postgres
@pytest.mark.timeout(600)
async def test_workers_share_a_port_migrate_once_and_answer_every_event_once(
    empty_postgres_url: str, line_api: FakeLineAPI, tmp_path: Path
) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())",
            "serve", "--workers", str(WORKERS), "--port", str(port),
            env=_server_env(empty_postgres_url, line_api), cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    worker_pids: set[int] = set()
    try:
        def workers_started() -> bool:
            worker_pids.update(_pids(_log_lines(log), "Application startup complete"))
            return len(worker_pids) >= WORKERS

        await _wait_for(workers_started, STARTUP_LIMIT, f"{WORKERS} workers to start", proc, log)
        assert len(worker_pids) == WORKERS and proc.pid not in worker_pids
        assert all(_parent_of(pid) == proc.pid for pid in worker_pids)     # uvicorn's own workers

        users = [f"U{uuid.uuid4().hex}" for _ in range(USERS)]
        tokens: list[str] = []
        url = f"http://127.0.0.1:{port}/webhooks/line"

        def served_by() -> Counter[int]:
            return Counter(e["pid"] for e in _log_lines(log)
                           if e.get("logger") == "uvicorn.access" and "POST /webhooks/line" in str(e.get("msg")))

        # No keep-alive: every webhook on a connection of its own, so the kernel hands the
        # connections to whichever worker accepts first (as with LINE's many connections).
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:
            async def send(user: str, question: str) -> None:
                token = line_api.issue_reply_token(user)
                tokens.append(token)
                body = line_body(line_text_event(user, question, reply_token=token))
                response = await client.post(url, content=body, headers=line_signed(body, line_api.channel_secret))
                assert response.status_code == 200, response.text

            rounds = 0
            # One message per resident per round, the residents at once; a resident's next
            # message after the previous was acknowledged (maybe still being answered elsewhere).
            while rounds < MIN_ROUNDS or (len(served_by()) < WORKERS and rounds < MAX_ROUNDS):
                await asyncio.gather(*(send(user, QUESTIONS[(rounds + i) % len(QUESTIONS)])
                                       for i, user in enumerate(users)))
                rounds += 1

        served = served_by()
        assert set(served) == worker_pids, f"webhooks served by {dict(served)}, workers {worker_pids}"
        assert sum(served.values()) == len(tokens)

        def replied_tokens() -> Counter[str]:
            return Counter((r.json or {}).get("replyToken") for r in line_api.requests_to("/v2/bot/message/reply"))

        await _wait_for(lambda: set(tokens) <= set(replied_tokens()), ANSWER_LIMIT,
                        "every webhook to be answered", proc, log)

        engine = create_engine(sync_url(empty_postgres_url), poolclass=NullPool)
        try:
            def events_by_status() -> dict[str, int]:
                with engine.connect() as conn:
                    return dict(conn.execute(text("SELECT status, count(*) FROM inbound_events GROUP BY status")).all())

            # Stamped done everywhere: nothing is left that could still be answered a second time.
            await _wait_for(lambda: events_by_status() == {"done": len(tokens)}, ANSWER_LIMIT,
                            "every inbound event to be stamped done", proc, log)
            with engine.connect() as conn:
                users_stored = conn.execute(text("SELECT count(*) FROM users WHERE channel = 'line'")).scalar()
                alembic_heads = conn.execute(text("SELECT count(*) FROM alembic_version")).scalar()
        finally:
            engine.dispose()
        replies = replied_tokens()
        assert all(replies[token] == 1 for token in tokens), {t: n for t, n in replies.items() if n != 1}
        assert users_stored == USERS and alembic_heads >= 1

        # /metrics adds up every worker, whichever worker answers the scrape.
        stored = 'kurashi_webhook_events_total{channel="line",outcome="stored"}'
        async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:
            for _ in range(4):
                page = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                values = [float(line.rsplit(" ", 1)[1]) for line in page.splitlines() if line.startswith(stored)]
                assert values == [len(tokens)], page[:2000]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)       # uvicorn's supervisor stops the workers, then itself
            try:
                await asyncio.wait_for(proc.wait(), STOP_LIMIT)
            except TimeoutError:
                for pid in [*worker_pids, proc.pid]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                await proc.wait()
    assert proc.returncode == 0, log.read_text(errors="replace")[-3000:]

    lines = _log_lines(log)
    # Alembic ran once, in the parent, before the workers started; each worker skipped it.
    assert _pids(lines, "database upgraded once for all workers") == [proc.pid]
    assert worker_pids <= set(_pids(lines, "not migrating again"))
    # The scheduler is led by one worker (PostgreSQL advisory lock), not by every worker.
    leaders = set(_pids(lines, "scheduler: leading"))
    assert leaders <= worker_pids and len(leaders) == 1 or _pids(lines, "leadership lost")
    assert not [e for e in lines if e.get("level") in ("error", "critical")], \
        [e.get("msg") for e in lines if e.get("level") in ("error", "critical")]


# -- refusals: nothing is started ------------------------------------------------------------------

@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No settings from the caller's environment or a .env file."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(_SETTINGS_ENV):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("database, secret, extra, reason", [
    ("sqlite", True, [], "--workers 2 needs PostgreSQL"),
    ("postgres", True, ["--telegram-polling"], "--workers 2 cannot poll Telegram"),
    ("sqlite", True, ["--telegram-polling"], "--workers 2 cannot poll Telegram"),
    ("postgres", False, [], "--workers 2 needs SECRET_KEY"),
])
def test_workers_are_refused_where_they_cannot_work(clean_env, tmp_path, capsys, database, secret, extra,
                                                     reason) -> None:
    db = tmp_path / "refused.db"
    clean_env.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}" if database == "sqlite"
                     else "postgresql+asyncpg://kurashi@127.0.0.1:9/unreachable")
    if secret:
        clean_env.setenv("SECRET_KEY", SECRET_KEY)
    assert main(["serve", "--workers", "2", "--port", "9", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"kurashi serve: {reason}"), err
    assert not db.exists()                       # refused before touching the database


def test_workers_must_be_a_positive_number(clean_env, capsys) -> None:
    for value in ("0", "-1", "two"):
        with pytest.raises(SystemExit) as stop:
            main(["serve", "--workers", value])
        assert stop.value.code == 2
        assert "--workers" in capsys.readouterr().err
