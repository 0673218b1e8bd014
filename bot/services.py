"""The running parts of one kurashi process, built once and passed down.

Owns ``Services`` (settings, knowledge base, matcher, conversation engine, database engine
and sessionmaker, channel adapters, referenced background tasks, the outbox relay) and
``build_services(settings)``. The FastAPI app (bot/app.py), ``kurashi chat`` and the
benchmarks build it; webhook routes and background processors receive it
(``request.app.state.services`` in routes, see ``get_services``).

Must not import FastAPI routes or be imported by the conversation core; platform adapters
are imported lazily, only when configured.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.conversation.engine import ConversationEngine
from bot.db.session import create_engine_and_sessionmaker
from bot.settings import Settings
from knowledge.loader import KnowledgeBase, load_knowledge

log = logging.getLogger("kurashi.services")

SHUTDOWN_GRACE_SECONDS = 8.0


@dataclass
class Services:
    settings: Settings
    kb: KnowledgeBase
    matcher: Any                                    # intents.matcher.Matcher
    engine: ConversationEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    engine_db: AsyncEngine
    #: Channel adapters by channel name ("line", "telegram", "web"); each is a ChannelSender.
    channels: dict[str, Any] = field(default_factory=dict)
    #: Background tasks kept referenced until done (asyncio keeps only weak references).
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    relay: Any = None                               # delivery.outbox.OutboxRelay when running
    extras: dict[str, Any] = field(default_factory=dict)   # room for later features (scheduler…)
    #: Set by ``aclose``: webhooks still store events but leave them for the next start.
    closing: bool = False
    #: Set when ``aclose`` is over: webhooks answer 503 (the database engine is disposed).
    closed: bool = False
    closing_event: asyncio.Event = field(default_factory=asyncio.Event)
    #: How long ``aclose`` lets events being answered finish before cancelling them (below
    #: the 10 s a container runtime waits between SIGTERM and SIGKILL).
    shutdown_grace: float = SHUTDOWN_GRACE_SECONDS

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, referenced until it finishes; failures are logged."""
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)

        def _done(t: asyncio.Task[Any]) -> None:
            self.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", exc_info=t.exception(),
                          extra={"task": t.get_name()})

        task.add_done_callback(_done)
        return task

    async def drain(self, timeout: float = 10.0, *, prefix: str | None = None) -> bool:
        """Wait (bounded) for in-flight background work (tasks named ``prefix*``, or all) to
        finish; True when nothing is left running. Tasks spawned while waiting count too."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            pending = [t for t in self.tasks
                       if not t.done() and (prefix is None or t.get_name().startswith(prefix))]
            remaining = deadline - loop.time()
            if not pending:
                return True
            if remaining <= 0:
                return False
            await asyncio.wait(pending, timeout=remaining)

    async def aclose(self) -> None:
        """Shut down without losing or repeating an answer, then release everything.

        Order (why): stop taking new work first — webhooks that still arrive are stored and
        left pending for the next start (``closing``); then give the inbound events being
        answered up to ``shutdown_grace`` seconds to finish, because cancelling one means it
        is answered again later; stop the outbox relay (it may have just received pushes
        from those answers); cancel whatever is left; hand the events cancelled mid-way back
        (pending, lease cleared) so the next process answers them at once instead of after
        the lease; close channel clients; dispose of the database engine.
        """
        self.closing = True
        self.closing_event.set()
        polling_stop = self.extras.get("telegram_polling_stop")
        if polling_stop is not None:
            polling_stop.set()
        if not await self.drain(self.shutdown_grace, prefix="inbound-"):
            log.warning("inbound events still in flight after the shutdown grace period; cancelling them",
                        extra={"grace_s": self.shutdown_grace})
        relay_stop = getattr(self.relay, "stop", None)
        if relay_stop is not None:
            try:
                result = relay_stop()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # pragma: no cover - best effort at shutdown
                log.exception("stopping the outbox relay failed")
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if "inbound_inflight" in self.extras:
            from bot.inbound import release_unfinished_events  # lazy: only processes that took webhooks

            try:
                await release_unfinished_events(self)
            except Exception:  # the database may be gone; the lease then runs out as before
                log.exception("releasing unfinished inbound events failed")
        for name, channel in self.channels.items():
            close = getattr(channel, "aclose", None) or getattr(channel, "close", None)
            if close is None:
                continue
            try:
                result = close()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # pragma: no cover - best effort at shutdown
                log.exception("closing channel failed", extra={"channel": name})
        await self.engine_db.dispose()
        self.closed = True


def build_core(
    settings: Settings,
    *,
    kb: KnowledgeBase | None = None,
    matcher: Any = None,
) -> Services:
    """Knowledge base, matcher, database and conversation engine — no channels, no tasks.

    ``kurashi chat`` and tests use this directly; the app adds channels in ``build_services``.
    The database must already be upgraded (``bot.db.session.upgrade_database``).
    """
    from intents.matcher import Matcher  # loads thresholds and numpy; keep import time low elsewhere

    kb = kb or load_knowledge(settings.knowledge_dir)
    matcher = matcher or Matcher.from_knowledge(kb)
    engine_db, sessionmaker = create_engine_and_sessionmaker(settings.database_url)
    from bot.consult.flow import ConsultationFlow  # consultations (issue 4) plug into the engine
    from bot.consult.routing import configure_response_hours
    from bot.privacy import forget_user  # forget-me asks every feature, not only the conversation

    configure_response_hours(settings.consult_response_hours)   # the "answers by …" promise

    engine = ConversationEngine(kb, matcher, sessionmaker, settings, consultation=ConsultationFlow(kb),
                                forget=forget_user)
    from scheduler import events, garbage_jobs  # live answers: upcoming events, garbage days/items

    events.register_answers(engine)
    garbage_jobs.register_answers(engine)
    return Services(settings=settings, kb=kb, matcher=matcher, engine=engine,
                    sessionmaker=sessionmaker, engine_db=engine_db)


def build_channels(services: Services) -> dict[str, Any]:
    """The channel adapters that are configured (call inside the running event loop).

    The web chat is always there; LINE needs its secret and access token, Telegram its
    bot token (../shared/DESIGN.md configuration names).
    """
    from bot.channels.web import WebChannel

    settings = services.settings
    channels: dict[str, Any] = {"web": WebChannel(services.sessionmaker)}  # web pushes: durable mailbox table
    if settings.line_enabled:
        from bot.channels.line import LineChannel

        channels["line"] = LineChannel.from_settings(settings)
    if settings.telegram_enabled:
        from bot.channels.telegram import TelegramChannel

        channels["telegram"] = TelegramChannel.from_settings(settings)
    if settings.smtp_url:
        from bot.channels.email import EmailSender  # staff e-mail goes through the outbox too

        channels["email"] = EmailSender.from_settings(settings)
    return channels


async def build_services(
    settings: Settings,
    *,
    kb: KnowledgeBase | None = None,
    matcher: Any = None,
    with_channels: bool = True,
) -> Services:
    """Everything one app process needs, with the configured channels (database upgraded by the caller)."""
    services = build_core(settings, kb=kb, matcher=matcher)
    if with_channels:
        services.channels = build_channels(services)
        from bot.consult.flow import media_fetcher

        media_fetcher(services)   # images sent during a consultation are fetched through the adapters
    return services


async def run_scheduler(services: Services) -> None:
    """The app lifespan's scheduler task (RUN_SCHEDULER): lead or wait to lead until cancelled.

    The runner gets its job context (database, knowledge base, settings, the local relay's
    wake-up) and the recurring jobs from here; scheduler/ imports no app object."""
    from scheduler.jobs import RECURRING_JOBS
    from scheduler.runner import JobContext, SchedulerRunner

    ctx = JobContext(
        database_url=services.settings.database_url,
        sessionmaker=services.sessionmaker,
        kb=services.kb,
        settings=services.settings,
        notify=getattr(services.relay, "notify", None),
    )
    runner = SchedulerRunner(ctx, recurring=RECURRING_JOBS)
    services.extras["scheduler"] = runner
    await runner.run()


def get_services(request: Any) -> Services:
    """The process's Services from inside a route (FastAPI dependency: ``Depends(get_services)``)."""
    return request.app.state.services
