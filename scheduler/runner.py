"""The job scheduler: APScheduler 3 with a persistent job store, one leader at a time.

Owns: ``SchedulerRunner`` (leader election + an ``AsyncIOScheduler`` whose
``SQLAlchemyJobStore`` is shared by all processes, see ``job_store_url``; started by
``bot.services.run_scheduler`` when RUN_SCHEDULER, or by ``kurashi scheduler``, with the
recurring jobs of scheduler/jobs.py), ``JobContext`` (what jobs get instead of objects),
``RecurringJob``, and the public functions features use to schedule one-off jobs:
``schedule_job``, ``cancel_job``, ``get_job``, ``list_jobs`` (given the database URL).

Rules for jobs (read before adding one):
- A job is referenced by its textual id ``"module:function"`` (so the stored job survives
  restarts and code reloads) and takes ids/strings only as arguments. Its function is
  ``async def fn(*ids, ctx: JobContext | None = None)`` starting with
  ``ctx = need_context(ctx)``: the leader's executor passes its runner's ``ctx`` to every
  job it runs (there is no process-global context; the default only lets APScheduler
  store the job without it); tests pass their own ``ctx`` with a fixed clock and never
  start APScheduler.
- Jobs only write database rows (outbox rows through delivery.outbox.enqueue, in the same
  transaction as the state change); they never call a platform.
- A job may fire late (misfires run when a leader comes back: ``misfire_grace_time=None``,
  coalesced) and, if the leader dies while it runs, not at all: a job must check the
  database state when it runs, and important work should also be caught by a periodic
  job (see scheduler/jobs.py RECURRING_JOBS).

Leader election:
- PostgreSQL: ``pg_try_advisory_lock(LOCK_KEY)`` held on a dedicated AUTOCOMMIT connection
  (no transaction left open). Other processes retry every ``retry_interval`` seconds; when
  the leader dies its connection closes, the lock is released and another takes over. A
  leader that loses its connection stops its scheduler at the next health check
  (``health_interval``), so the overlap after a network split is at most that long.
- SQLite: an exclusive ``flock`` on ``<database file>.scheduler.lock`` (SQLite is one
  machine), same retry/takeover logic; an in-memory database is always its own leader.

Jobs added by another process (e.g. ``kurashi events add``) are written straight to the
job store; the leader re-reads the store every ``store_poll_interval`` seconds.

Where the job store lives (``job_store_url``): PostgreSQL — the ``apscheduler_jobs`` table of
the application database (created by migration 0003). SQLite — a sibling file
``<database>.jobs.sqlite``: APScheduler 3's job store is synchronous and runs on the event
loop, and in the same file a job-store write would wait for an aiosqlite write transaction
that cannot finish while the loop is blocked ("database is locked" after the busy timeout).

Imports no job: the jobs (scheduler/jobs.py, events, alerts, garbage reminders and the
features' jobs) are named by text and get ``ctx`` from the executor.
Must not import the conversation core, channel adapters, FastAPI or platform SDKs.
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from bot.db.models import utcnow
from bot.db.session import is_sqlite, sync_url

log = logging.getLogger("kurashi.scheduler")

#: pg_try_advisory_lock key of the scheduler leader (b"kurashi" as a big-endian integer).
LOCK_KEY = int.from_bytes(b"kurashi", "big")
JOB_TABLE = "apscheduler_jobs"
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}


# --- job context -------------------------------------------------------------------------


@dataclass
class JobContext:
    """What jobs need, given by the process that runs them (jobs take ids, not objects)."""

    database_url: str
    sessionmaker: async_sessionmaker[AsyncSession]
    kb: Any = None                                   # knowledge.loader.KnowledgeBase
    settings: Any = None                             # bot.settings.Settings
    now: Callable[[], datetime] = utcnow             # the clock (tests fix it)
    notify: Callable[[], None] | None = None         # wake the local outbox relay after a commit
    http: Any = None                                 # httpx.AsyncClient shared by jobs, optional
    extras: dict[str, Any] = field(default_factory=dict)

    def wake_sender(self) -> None:
        if self.notify is not None:
            with contextlib.suppress(Exception):
                self.notify()


def need_context(ctx: Any) -> Any:
    """A job's first line: the ``ctx`` the runner's executor (or a test) passed; TypeError when
    a job is called without one."""
    if ctx is None:
        raise TypeError("a job needs ctx=JobContext (the scheduler runner passes it)")
    return ctx


@dataclass(frozen=True)
class RecurringJob:
    """A job the leader installs: ``seconds`` (interval) or ``cron`` (crontab fields, UTC).
    The list of them is scheduler/jobs.py ``RECURRING_JOBS``, handed to ``SchedulerRunner``."""

    id: str
    func: str                                   # "module:function"
    seconds: float | None = None
    cron: dict[str, Any] = field(default_factory=dict)
    args: tuple[Any, ...] = ()

    def build_trigger(self) -> Any:
        if self.seconds is not None:
            return IntervalTrigger(seconds=self.seconds, timezone="UTC")
        return CronTrigger(timezone="UTC", **self.cron)


class _JobView:
    """A stored job as the executor runs it: the same job with ``ctx`` added to its kwargs."""

    def __init__(self, job: Any, ctx: JobContext) -> None:
        self._job = job
        self.func = functools.partial(job.func, ctx=ctx)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)

    def __str__(self) -> str:
        return str(self._job)


class _ContextExecutor(AsyncIOExecutor):
    """APScheduler's asyncio executor, passing the runner's JobContext to every job it runs
    (jobs are stored as "module:function" plus ids; the context is never stored)."""

    def __init__(self, ctx: JobContext) -> None:
        super().__init__()
        self.ctx = ctx

    def _do_submit_job(self, job: Any, run_times: Any) -> Any:
        return super()._do_submit_job(_JobView(job, self.ctx), run_times)


# --- writing jobs from any process --------------------------------------------------------


class _StoreWriter(BaseScheduler):
    """A scheduler that never runs jobs: used to add/remove jobs in the shared job store.

    Started paused, so it only validates and (de)serialises jobs for the store.
    """

    def wakeup(self) -> None:  # pragma: no cover - never running
        pass

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait=False)


_writers: dict[str, _StoreWriter] = {}
_writers_lock = threading.Lock()
#: Runners of this process, so a local leader wakes up at once after a job is written.
_local_runners: set[SchedulerRunner] = set()


def job_store_url(database_url: str) -> str:
    """The sync URL of the job store for ``database_url`` (see the module docstring)."""
    if not is_sqlite(database_url):
        return sync_url(database_url)
    database = make_url(database_url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return "sqlite://"
    return f"sqlite:///{database}.jobs.sqlite"


def _writer(database_url: str) -> _StoreWriter:
    url = job_store_url(database_url)
    with _writers_lock:
        writer = _writers.get(url)
        if writer is None:
            writer = _StoreWriter(timezone=UTC, job_defaults=JOB_DEFAULTS)
            writer.add_jobstore(SQLAlchemyJobStore(url=url, tablename=JOB_TABLE), "default")
            writer.start(paused=True)
            _writers[url] = writer
        return writer


def _resolve_url(database_url: str) -> str:
    if not database_url:
        raise ValueError("database_url is required (jobs pass ctx.database_url)")
    return database_url


def _wake_local_leaders() -> None:
    for runner in list(_local_runners):
        runner.wakeup()


@dataclass(frozen=True)
class ScheduledJob:
    id: str
    func: str
    args: tuple[Any, ...]
    next_run_time: datetime | None


def _describe(job: Any) -> ScheduledJob:
    next_run = job.next_run_time.astimezone(UTC) if job.next_run_time else None
    return ScheduledJob(id=job.id, func=str(job.func_ref), args=tuple(job.args), next_run_time=next_run)


async def schedule_job(
    job_id: str,
    func: str,
    run_at: datetime,
    args: Sequence[Any] = (),
    *,
    database_url: str,
) -> ScheduledJob:
    """Run ``func`` ("module:function") once at ``run_at`` (aware) with ``args`` (ids).

    Replaces any job with the same id (editing an event moves its send). Works from any
    process: the job is written to the shared store and the leader picks it up. A time in
    the past runs as soon as the leader sees it.
    """
    if run_at.tzinfo is None:
        raise ValueError("run_at must be timezone-aware")
    if ":" not in func:
        raise ValueError(f"func must be a textual reference 'module:function', not {func!r}")
    url = _resolve_url(database_url)

    def _add() -> ScheduledJob:
        job = _writer(url).add_job(func, "date", run_date=run_at.astimezone(UTC), args=list(args),
                                   id=job_id, replace_existing=True, jobstore="default")
        return _describe(job)

    result = await asyncio.to_thread(_add)
    _wake_local_leaders()
    return result


async def cancel_job(job_id: str, *, database_url: str) -> bool:
    """Remove the job ``job_id``; False when there was none (already fired or never scheduled)."""
    url = _resolve_url(database_url)

    def _remove() -> bool:
        try:
            _writer(url).remove_job(job_id, jobstore="default")
        except JobLookupError:
            return False
        return True

    removed = await asyncio.to_thread(_remove)
    _wake_local_leaders()
    return removed


async def get_job(job_id: str, *, database_url: str) -> ScheduledJob | None:
    """The stored job ``job_id`` (function, args, next run time) or None."""
    url = _resolve_url(database_url)

    def _get() -> ScheduledJob | None:
        job = _writer(url).get_job(job_id, jobstore="default")
        return _describe(job) if job is not None else None

    return await asyncio.to_thread(_get)


async def list_jobs(*, database_url: str) -> list[ScheduledJob]:
    """Every stored job, soonest first."""
    url = _resolve_url(database_url)
    return await asyncio.to_thread(lambda: [_describe(j) for j in _writer(url).get_jobs(jobstore="default")])


def close_writers() -> None:
    """Dispose of the job-store engines used by schedule_job & co (tests, shutdown)."""
    with _writers_lock:
        writers = list(_writers.values())
        _writers.clear()
    for writer in writers:
        with contextlib.suppress(Exception):
            writer.shutdown()


# --- leader election ------------------------------------------------------------------------


class _Lock:
    """One attempt-able leader lock; ``acquire()`` never blocks, ``alive()`` checks it is still held."""

    async def acquire(self) -> bool:
        raise NotImplementedError

    async def alive(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class _PostgresLock(_Lock):
    def __init__(self, database_url: str, key: int) -> None:
        self.engine = create_async_engine(database_url, poolclass=NullPool, hide_parameters=True)
        self.key = key
        self.conn: Any = None

    async def acquire(self) -> bool:
        conn = await self.engine.connect()
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})).scalar()
        except BaseException:
            await conn.close()
            raise
        if got:
            self.conn = conn
            return True
        await conn.close()
        return False

    async def alive(self) -> bool:
        if self.conn is None:
            return False
        try:
            await asyncio.wait_for(self.conn.execute(text("SELECT 1")), timeout=10)
            return True
        except Exception:  # any driver/network error means the session (and the lock) may be gone
            log.warning("scheduler: lost the leader connection", exc_info=True)
            with contextlib.suppress(Exception):
                await self.conn.close()
            self.conn = None
            return False

    async def release(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            with contextlib.suppress(Exception):
                await self.conn.close()
            self.conn = None
        await self.engine.dispose()


class _FileLock(_Lock):
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.fd: int | None = None

    async def acquire(self) -> bool:
        if self.path is None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    async def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _make_lock(database_url: str, key: int) -> _Lock:
    if is_sqlite(database_url):
        database = make_url(database_url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return _FileLock(None)
        return _FileLock(Path(database).with_name(Path(database).name + ".scheduler.lock"))
    return _PostgresLock(database_url, key)


# --- the runner ------------------------------------------------------------------------------


class SchedulerRunner:
    """Contend for leadership; while leading, run APScheduler on the shared job store.

    ``await runner.start()`` returns at once (the contest runs as a task);
    ``await runner.stop()`` shuts down and releases the lock. ``run()`` does both around
    waiting forever (for ``kurashi scheduler`` and the app's background task).
    """

    def __init__(
        self,
        ctx: JobContext,
        *,
        lock_key: int = LOCK_KEY,
        retry_interval: float = 5.0,
        health_interval: float = 5.0,
        store_poll_interval: float = 5.0,
        recurring: Sequence[RecurringJob] = (),
        on_leadership: Callable[[bool], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.on_leadership = on_leadership
        self.lock_key = lock_key
        self.retry_interval = retry_interval
        self.health_interval = health_interval
        self.store_poll_interval = store_poll_interval
        self.recurring = list(recurring)
        self.scheduler: AsyncIOScheduler | None = None
        self._task: asyncio.Task[None] | None = None
        self._leader = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self._leader.is_set()

    async def wait_leader(self, timeout: float | None = None) -> bool:
        """True once this runner leads (False after ``timeout`` seconds)."""
        try:
            await asyncio.wait_for(self._leader.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def wakeup(self) -> None:
        """Re-read the job store now (after a job was written)."""
        scheduler = self.scheduler
        if scheduler is not None and scheduler.running:
            with contextlib.suppress(Exception):
                scheduler.wakeup()

    async def start(self) -> None:
        self._stopping.clear()
        _local_runners.add(self)
        self._task = asyncio.create_task(self._contend(), name="scheduler-contend")

    async def stop(self) -> None:
        self._stopping.set()
        _local_runners.discard(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        """Start, then wait until cancelled; always stops cleanly."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(self.stop())

    # -- internals ---------------------------------------------------------------------

    async def _contend(self) -> None:
        while not self._stopping.is_set():
            lock = _make_lock(self.ctx.database_url, self.lock_key)
            try:
                got = await lock.acquire()
            except Exception:
                log.warning("scheduler: could not try the leader lock", exc_info=True)
                got = False
            if not got:
                await lock.release()
                await self._sleep(self.retry_interval)
                continue
            try:
                await self._lead(lock)
            except Exception:  # e.g. the job store is unreachable: give the lock up, try again later
                log.exception("scheduler: leading failed")
            finally:
                was_leader = self._leader.is_set()
                self._leader.clear()
                self._shutdown_scheduler()
                await lock.release()
                if was_leader:
                    self._announce(False)
            if not self._stopping.is_set():
                await self._sleep(self.retry_interval)

    async def _lead(self, lock: _Lock) -> None:
        log.info("scheduler: leading", extra={"pid": os.getpid()})
        scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS,
                                     executors={"default": _ContextExecutor(self.ctx)})
        scheduler.add_jobstore(SQLAlchemyJobStore(url=job_store_url(self.ctx.database_url), tablename=JOB_TABLE),
                               "default")
        scheduler.start()
        self.scheduler = scheduler
        if self.recurring:
            self._install_recurring(scheduler)
        self._leader.set()
        self._announce(True)
        while not self._stopping.is_set():
            await self._sleep(min(self.health_interval, self.store_poll_interval))
            if not await lock.alive():
                log.warning("scheduler: leadership lost; stopping jobs")
                return
            self.wakeup()

    def _install_recurring(self, scheduler: AsyncIOScheduler) -> None:
        for job in self.recurring:
            try:
                existing = scheduler.get_job(job.id)
                if (existing is not None and str(existing.trigger) == str(job.build_trigger())
                        and existing.func_ref == job.func and list(existing.args) == list(job.args)):
                    continue  # unchanged: keep its next run time across restarts
                scheduler.add_job(job.func, job.build_trigger(), id=job.id, args=list(job.args),
                                  replace_existing=True)
            except Exception:
                log.exception("scheduler: could not install recurring job %s", job.id)

    def _announce(self, leading: bool) -> None:
        if self.on_leadership is not None:
            with contextlib.suppress(Exception):
                self.on_leadership(leading)

    def _shutdown_scheduler(self) -> None:
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None and scheduler.running:
            with contextlib.suppress(Exception):
                scheduler.shutdown(wait=False)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
