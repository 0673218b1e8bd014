"""Scheduled jobs and the registry of recurring ones.

Owns ``RECURRING_JOBS`` — the jobs the scheduler leader (scheduler/runner.py) installs at
start: the JMA feed poll every minute, and whatever other features register (event
notices sweep, garbage reminders, consultation SLA reminders). To add one, append a
``RecurringJob`` line below (a minimal edit) or call ``register_recurring`` at import time
of a module this file imports. One-off jobs (an event's publish time) are scheduled with
``scheduler.runner.schedule_job`` instead.

Every job: ``async def verb_noun(*ids, ctx: JobContext | None = None)``, first line
``ctx = need_context(ctx)`` (the runner's executor passes ``ctx``), referenced by
"module:function", writes only database rows (outbox rows via delivery.outbox.enqueue). The leader gets this list from whoever starts it
(``bot.services.run_scheduler``, ``kurashi scheduler``): the runner imports no job.

Must not import the conversation core, channel adapters, FastAPI or platform SDKs.
"""
from __future__ import annotations

import logging

from scheduler.alerts import poll_feeds
from scheduler.runner import JobContext, RecurringJob, need_context

log = logging.getLogger("kurashi.jobs")


RECURRING_JOBS: list[RecurringJob] = [
    RecurringJob("jma:poll", "scheduler.jobs:poll_jma_feeds", seconds=60),
    RecurringJob("consult:sla", "bot.consult.sla:remind_overdue_consultations", seconds=300),
    RecurringJob("events:sweep", "scheduler.events:sweep_events", seconds=300),
    RecurringJob("garbage:remind", "scheduler.garbage_jobs:send_garbage_reminders", cron={"minute": "*/5"}),
    RecurringJob("storage:prune", "bot.privacy:prune_stored_rows", cron={"hour": 18, "minute": 30}),  # 03:30 JST
    RecurringJob("consult:retention", "bot.privacy:prune_case_content", cron={"hour": 18, "minute": 40}),
]


def register_recurring(job: RecurringJob) -> None:
    """Add (or replace, by id) a recurring job; call at import time of a module imported here."""
    RECURRING_JOBS[:] = [j for j in RECURRING_JOBS if j.id != job.id] + [job]


async def poll_jma_feeds(*, ctx: JobContext | None = None) -> dict[str, int]:
    """Poll every JMA_FEED_URL once (conditional GET) and queue alerts for new relevant entries."""
    ctx = need_context(ctx)
    urls = list(ctx.settings.jma_feed_urls) if ctx.settings is not None else list(ctx.extras.get("feed_urls", []))
    stats = await poll_feeds(ctx, urls)
    if stats.get("alerts"):
        ctx.wake_sender()
    return stats
