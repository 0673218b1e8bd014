"""`kurashi scheduler`: run the job scheduler as its own process; `--list` shows stored jobs.

Owns only the command line; leadership, the job store and the jobs are scheduler/runner.py
and scheduler/jobs.py. Several `kurashi scheduler` processes (and apps with RUN_SCHEDULER)
may run at once: exactly one leads (PostgreSQL advisory lock / SQLite file lock), the
others wait and take over when it dies. With ``--with-sender`` the process also runs the
outbox relay (for deployments whose web processes run with RUN_SENDER=false).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("scheduler", help="run the job scheduler (JMA polling, event notices, reminders)")
    parser.add_argument("--list", action="store_true", help="list the stored jobs and exit")
    parser.add_argument("--with-sender", action="store_true", help="also run the outbox relay in this process")
    parser.add_argument("--no-recurring", action="store_true",
                        help="do not install the recurring jobs (JMA poll…); run only stored one-off jobs")
    parser.add_argument("--interval", type=float, default=5.0,
                        help="seconds between leader-lock attempts, health checks and job-store reads (default 5)")
    parser.set_defaults(func=run_scheduler_command)


def run_scheduler_command(args: argparse.Namespace) -> int:
    """Lead or wait to lead until SIGINT/SIGTERM; or print the stored jobs with --list."""
    from bot.logging import configure_logging
    from bot.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level)
    if args.list:
        return asyncio.run(_list(settings))
    return asyncio.run(_run(settings, args))


async def _list(settings) -> int:
    from bot.db.session import upgrade_database
    from bot.timefmt import jst
    from scheduler.runner import close_writers, list_jobs

    await upgrade_database(settings.database_url)
    try:
        jobs = await list_jobs(database_url=settings.database_url)
    finally:
        close_writers()
    for job in jobs:
        when = jst(job.next_run_time) if job.next_run_time else "paused"
        print(f"{job.id}\t{when}\t{job.func}\t{list(job.args)}")
    print(f"{len(jobs)} job(s)")
    return 0


async def _run(settings, args: argparse.Namespace) -> int:
    from bot.db.session import upgrade_database
    from bot.services import build_services
    from scheduler.jobs import RECURRING_JOBS
    from scheduler.runner import JobContext, SchedulerRunner, close_writers

    await upgrade_database(settings.database_url)
    services = relay_task = None
    if args.with_sender:
        from delivery.outbox import OutboxRelay

        services = await build_services(settings)
        from delivery.budget import build_limiter

        services.relay = OutboxRelay(services.sessionmaker, dict(services.channels),
                                     limits=build_limiter(services.sessionmaker))
        relay_task = asyncio.create_task(services.relay.run(), name="outbox-relay")
        engine, sessionmaker, kb = services.engine_db, services.sessionmaker, services.kb
    else:  # jobs need only the database and the knowledge base (no matcher, no channels)
        from bot.db.session import create_engine_and_sessionmaker
        from knowledge.loader import load_knowledge

        kb = load_knowledge(settings.knowledge_dir)
        engine, sessionmaker = create_engine_and_sessionmaker(settings.database_url)
    ctx = JobContext(database_url=settings.database_url, sessionmaker=sessionmaker, kb=kb,
                     settings=settings, notify=getattr(getattr(services, "relay", None), "notify", None))

    def announce(leading: bool) -> None:
        # A plain line on stdout (besides the JSON log) so operators and tests see who leads.
        print(f"scheduler: {'leading' if leading else 'standing by'} (pid {os.getpid()})", flush=True)

    runner = SchedulerRunner(ctx, retry_interval=args.interval, health_interval=args.interval,
                             store_poll_interval=args.interval, recurring=() if args.no_recurring else RECURRING_JOBS,
                             on_leadership=announce)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runner.start()
    print(f"scheduler: started (pid {os.getpid()})", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.stop()
        if services is not None:
            services.relay.stop()
            await asyncio.wait([relay_task], timeout=10)
            await services.aclose()
        else:
            await engine.dispose()
        close_writers()
    print("scheduler: stopped", file=sys.stderr, flush=True)
    return 0
