"""`kurashi serve` behind a reverse proxy: uvicorn runs with proxy_headers and
FORWARDED_ALLOW_IPS, so the staff console's login rate limit keys on the X-Forwarded-For
client when the request comes from a trusted proxy, and on the socket peer otherwise.
The real command in a subprocess, on loopback, against a SQLite file."""
from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
STARTUP_LIMIT = 120.0     # seconds to wait for /healthz (loading the matcher), not an assertion


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(tmp_path: Path, allow: str) -> Iterator[tuple[str, Path]]:
    db = tmp_path / f"serve-{abs(hash(allow))}.db"
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{db}", "SECRET_KEY": "s" * 48,
           "RUN_SENDER": "false", "RUN_SCHEDULER": "false", "LOG_LEVEL": "WARNING"}
    for name in ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN", "TELEGRAM_BOT_TOKEN", "SMTP_URL",
                 "FORWARDED_ALLOW_IPS"):
        env.pop(name, None)
    # Through the .env file (read by Settings only): uvicorn itself would also read the
    # environment variable, which would hide a `kurashi serve` that ignores the setting.
    (tmp_path / ".env").write_text(f"FORWARDED_ALLOW_IPS={allow}\n")
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())",
                             "serve", "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_LIMIT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"kurashi serve exited: {proc.stdout.read().decode(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2, trust_env=False).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("kurashi serve did not start")
            time.sleep(0.2)
        yield url, db
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _failed_login_address(url: str, db: Path) -> str:
    with httpx.Client(base_url=url, trust_env=False, timeout=20) as client:
        page = client.get("/console/login")
        token = CSRF.search(page.text).group(1)
        client.post("/console/login", data={"email": "nobody@example.org", "password": "wrong password",
                                             "csrf_token": token, "next": "/console/"},
                    headers={"X-Forwarded-For": "203.0.113.7"})
    with sqlite3.connect(db) as conn:
        return conn.execute("select address from staff_login_attempts order by id desc limit 1").fetchone()[0]


@pytest.mark.parametrize("allow, expected", [
    ("", "127.0.0.1"),                   # the default: no proxy is trusted, the socket peer counts
    ("127.0.0.1", "203.0.113.7"),        # a proxy on the same host, configured
    ("10.9.9.9", "127.0.0.1"),           # a forwarded header from an untrusted peer is ignored
])
def test_login_rate_limit_keys_on_the_forwarded_client_only_from_trusted_proxies(tmp_path, allow, expected) -> None:
    for url, db in _serve(tmp_path, allow):
        assert _failed_login_address(url, db) == expected
