"""The scheduler: persistent one-off jobs by textual reference, and exactly one leader.

The leader test is the only one that starts APScheduler: two real `kurashi scheduler`
processes share one database; a job fires once, and when the leader is killed the other
process takes over and fires the next job (SQLite: file lock; PostgreSQL: advisory lock).
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.db.models import utcnow
from scheduler.jobs import RECURRING_JOBS, RecurringJob, poll_jma_feeds, register_recurring
from scheduler.runner import (
    JobContext,
    SchedulerRunner,
    cancel_job,
    close_writers,
    get_job,
    list_jobs,
    schedule_job,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = "tests.scheduler.probe_jobs:record_fire"


@pytest.fixture(autouse=True)
def _close_writers():
    yield
    close_writers()


async def test_jobs_are_stored_replaced_and_cancelled_by_id(database_url):
    run_at = utcnow() + timedelta(days=1)
    job = await schedule_job("event:7:publish", PROBE, run_at, ["/tmp/x", "7"], database_url=database_url)
    assert job.func == PROBE and job.args == ("/tmp/x", "7")
    assert abs((job.next_run_time - run_at).total_seconds()) < 1

    later = run_at + timedelta(hours=2)                     # editing an event moves its send
    await schedule_job("event:7:publish", PROBE, later, ["/tmp/x", "7"], database_url=database_url)
    stored = await get_job("event:7:publish", database_url=database_url)
    assert abs((stored.next_run_time - later).total_seconds()) < 1
    assert [j.id for j in await list_jobs(database_url=database_url)] == ["event:7:publish"]

    assert await cancel_job("event:7:publish", database_url=database_url) is True
    assert await cancel_job("event:7:publish", database_url=database_url) is False
    assert await get_job("event:7:publish", database_url=database_url) is None


async def test_bad_job_references_and_naive_times_are_refused(database_url):
    with pytest.raises(ValueError):
        await schedule_job("x", "tests.scheduler.probe_jobs.record_fire", utcnow(), database_url=database_url)
    with pytest.raises(ValueError):
        await schedule_job("x", PROBE, utcnow().replace(tzinfo=None), database_url=database_url)


async def test_the_leader_passes_its_job_context_to_every_job(tmp_path):
    """No process-global context: the runner's executor hands its JobContext to the job."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ctx.db'}"
    out = tmp_path / "ctx.txt"
    runner = SchedulerRunner(JobContext(database_url=url, sessionmaker=None), retry_interval=0.1,
                             health_interval=0.1, store_poll_interval=0.1)
    await runner.start()
    try:
        assert await runner.wait_leader(30)
        await schedule_job("probe:ctx", "tests.scheduler.probe_jobs:record_context", utcnow(), [str(out)],
                           database_url=url)
        await _until(out.exists, "the job to run")
        assert out.read_text() == url
    finally:
        await runner.stop()


async def test_a_job_called_without_its_context_says_so():
    with pytest.raises(TypeError, match="ctx=JobContext"):
        await poll_jma_feeds()


def test_recurring_registry_replaces_by_id():
    before = list(RECURRING_JOBS)
    try:
        register_recurring(RecurringJob("sla:remind", "scheduler.jobs:poll_jma_feeds", cron={"minute": "*/5"}))
        register_recurring(RecurringJob("sla:remind", "scheduler.jobs:poll_jma_feeds", seconds=300))
        assert [j.id for j in RECURRING_JOBS].count("sla:remind") == 1
        assert RECURRING_JOBS[-1].seconds == 300
        assert any(j.id == "jma:poll" and j.seconds == 60 for j in RECURRING_JOBS)
    finally:
        RECURRING_JOBS[:] = before


class _Proc:
    """A `kurashi scheduler` subprocess whose stdout lines are collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode().strip())

    @property
    def leading(self) -> bool:
        leads = [line for line in self.lines if line.startswith("scheduler: leading")]
        return bool(leads)


async def _start(database_url: str, tmp_path: Path) -> _Proc:
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(REPO_ROOT), "LOG_LEVEL": "WARNING",
           "RUN_SENDER": "false"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())",
        "scheduler", "--no-recurring", "--interval", "0.2",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=(tmp_path / "stderr.log").open("ab"),
    )
    return _Proc(proc)


async def _until(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        await asyncio.sleep(0.1)


def _fires(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(t, int(p)) for t, p in (line.split() for line in path.read_text().splitlines())]


async def test_two_scheduler_processes_fire_a_job_once_and_the_survivor_takes_over(database_url, tmp_path):
    out = tmp_path / "fires.txt"
    procs = [await _start(database_url, tmp_path), await _start(database_url, tmp_path)]
    try:
        await _until(lambda: any(p.leading for p in procs), "a leader")
        await asyncio.sleep(1.0)  # give a (wrong) second leader every chance to appear
        assert sum(p.leading for p in procs) == 1
        leader = next(p for p in procs if p.leading)
        other = next(p for p in procs if p is not leader)

        await schedule_job("probe:one", PROBE, utcnow() + timedelta(seconds=0.5), [str(out), "one"],
                           database_url=database_url)
        await _until(lambda: _fires(out), "the first job to fire")

        leader.proc.send_signal(signal.SIGKILL)                 # a crash, not a clean stop
        await leader.proc.wait()
        await _until(lambda: other.leading, "the survivor to take over")
        await schedule_job("probe:two", PROBE, utcnow() + timedelta(seconds=0.5), [str(out), "two"],
                           database_url=database_url)
        await _until(lambda: len(_fires(out)) >= 2, "the second job to fire")
        await asyncio.sleep(1.0)

        fires = _fires(out)
        assert [t for t, _ in fires] == ["one", "two"]               # each exactly once
        assert fires[0][1] == leader.proc.pid and fires[1][1] == other.proc.pid
        assert await get_job("probe:one", database_url=database_url) is None
    finally:
        for p in procs:
            if p.proc.returncode is None:
                p.proc.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                await asyncio.wait_for(p.proc.wait(), 20)
            except TimeoutError:
                p.proc.kill()
                await p.proc.wait()
            p.reader.cancel()
