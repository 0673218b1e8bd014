"""Plumbing shared by the fake platform servers: where ../shared lives, the loopback
aiohttp server lifecycle, request records and programmable failures.

Test-only code; it must not import anything from ``bot`` (the fakes play the platforms,
they know nothing about kurashi).
"""
from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from aiohttp import web

#: ../shared, the sibling of the repository root (read-only reference material).
SHARED_DIR = Path(__file__).resolve().parents[2] / ".." / "shared"
REFERENCE_DIR = SHARED_DIR / "reference"


def shared_path(*parts: str) -> Path | None:
    """The path of a file under ../shared/reference, or None when it is absent."""
    path = REFERENCE_DIR.joinpath(*parts)
    return path if path.exists() else None


def allow_loopback_without_proxy() -> None:
    """Make clients that honour proxy variables (aiohttp trust_env, httpx) reach 127.0.0.1 directly."""
    for name in ("NO_PROXY", "no_proxy"):
        current = [p for p in os.environ.get(name, "").split(",") if p]
        for host in ("127.0.0.1", "localhost"):
            if host not in current:
                current.append(host)
        os.environ[name] = ",".join(current)


@dataclass
class RecordedRequest:
    """One HTTP request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]           # case-insensitive (multidict.CIMultiDict)
    body: bytes
    json: Any = None                      # decoded JSON body (LINE) or decoded parameters (Telegram)
    status: int = 0                       # the status the fake answered
    at: float = field(default_factory=time.monotonic)
    violations: list[str] = field(default_factory=list)


@dataclass
class Failure:
    """A programmed failure: the next ``times`` matching calls answer ``status``."""

    status: int
    times: int = 1
    retry_after: int | None = None
    description: str | None = None
    #: LINE only: accept (deliver, remember the retry key) and still answer the failure,
    #: i.e. the ambiguous "sent but the response was lost" case.
    deliver: bool = False
    #: let this many matching calls through before the failure starts
    skip: int = 0


class LoopbackServer:
    """An aiohttp.web application on 127.0.0.1, port chosen by the OS, in the running loop."""

    def __init__(self) -> None:
        self.app = web.Application(client_max_size=50 * 1024 * 1024)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self._failures: dict[str, list[Failure]] = {}
        self._changed = asyncio.Condition()

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the fake server is not started")
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Self:
        allow_loopback_without_proxy()
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]  # aiohttp exposes no public getter
        self.port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- failures -------------------------------------------------------------------------
    def _queue_failure(self, key: str, failure: Failure) -> None:
        self._failures.setdefault(key, []).append(failure)

    def _take_failure(self, key: str) -> Failure | None:
        queue = self._failures.get(key)
        if not queue:
            return None
        failure = queue[0]
        if failure.skip > 0:
            failure.skip -= 1
            return None
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        return failure

    def clear_failures(self) -> None:
        self._failures.clear()

    # -- waiting ----------------------------------------------------------------------------
    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds (re-checked after every request); TimeoutError otherwise."""

        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(_wait(), timeout)

    def record_violation(self, record: RecordedRequest, message: str) -> None:
        text = f"{record.method} {record.path}: {message}"
        record.violations.append(text)
        self.violations.append(text)
