"""The ASGI application: ``create_app(settings) -> FastAPI`` and its lifespan.

Owns start-up and shutdown order: JSON logging → database upgrade (Alembic) → knowledge
base + matcher loaded once → configured channels → background work (pending inbound
events, outbox relay when ``RUN_SENDER``, scheduler when ``RUN_SCHEDULER``, Telegram
polling when asked) — and the reverse on shutdown. Also ``GET /healthz`` (503 when the
database does not answer) and ``GET /metrics`` (Prometheus).

Routes: every module in ``bot/web/`` that defines a module-level ``router``
(a FastAPI APIRouter) is included — webhooks, the web chat, later the staff console — so
features add routes without editing this file. The conversation core never imports this.
"""
from __future__ import annotations

import asyncio
import hmac
import importlib
import json
import logging
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

import bot.web
from bot.db.session import upgrade_database
from bot.inbound import ingest_events, process_pending_events
from bot.logging import configure_logging
from bot.metrics import render_latest
from bot.services import Services, build_services, run_scheduler
from bot.settings import Settings
from bot.web._security import SecurityHeaders
from bot.web.webhooks import WebhookFastPath
from delivery.budget import build_limiter
from delivery.outbox import OutboxRelay
from knowledge.loader import KnowledgeBase

log = logging.getLogger("kurashi.app")

#: Routers included first, in this order (the chat page owns "/" and must not shadow others).
_ROUTER_ORDER = ("webhooks",)


def _web_routers() -> list[tuple[str, Any]]:
    names = [m.name for m in pkgutil.iter_modules(bot.web.__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (_ROUTER_ORDER.index(n) if n in _ROUTER_ORDER else len(_ROUTER_ORDER),
                              n == "chat", n))
    routers = []
    for name in names:
        module = importlib.import_module(f"bot.web.{name}")
        router = getattr(module, "router", None)
        if router is not None:
            routers.append((name, router))
    return routers


async def _start_background(app: FastAPI, services: Services) -> None:
    """Pending inbound events, outbox relay, scheduler, Telegram polling — whatever exists and is enabled."""
    settings = services.settings
    # Events stored before a crash are answered now (DESIGN.md: nothing is lost).
    services.spawn(process_pending_events(services), name="inbound-resume")

    if settings.run_sender:
        # The relay gets what it needs here; delivery imports nothing of the app. On PostgreSQL
        # the Telegram budget is one for every process (delivery/budget.py).
        services.relay = OutboxRelay(services.sessionmaker, dict(services.channels),
                                     limits=build_limiter(services.sessionmaker))
        services.spawn(services.relay.run(), name="outbox-relay")

    if settings.run_scheduler:
        services.spawn(run_scheduler(services), name="scheduler")

    if getattr(app.state, "telegram_polling", False):
        telegram = services.channels.get("telegram")
        if telegram is None:
            log.error("telegram polling requested but Telegram is not configured (TELEGRAM_BOT_TOKEN)")
        else:
            async def ingest_update(update: dict[str, Any]) -> None:
                # Polled updates take the webhook's path: stored (deduplicated) first, then processed.
                payload = json.dumps(update, ensure_ascii=False)
                await ingest_events(services, "telegram", [(str(update.get("update_id")), payload)])

            stop = asyncio.Event()
            services.extras["telegram_polling_stop"] = stop
            services.spawn(telegram.poll(ingest_update, stop), name="telegram-polling")


def create_app(
    settings: Settings | None = None,
    *,
    telegram_polling: bool = False,
    kb: KnowledgeBase | None = None,
    matcher: Any = None,
) -> FastAPI:
    """The kurashi web app. Settings are read from the environment when not given.

    ``kb``/``matcher`` replace the knowledge base loaded from ``settings.knowledge_dir``
    (tests and benchmarks with a fixed knowledge set).
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        check_security_settings(settings, telegram_polling=telegram_polling)
        await upgrade_database(settings.database_url)
        services = await build_services(settings, kb=kb, matcher=matcher)
        app.state.services = services
        starters = [getattr(ch, "start", None) for ch in services.channels.values()]
        for start in filter(None, starters):
            await start()
        telegram = services.channels.get("telegram")
        if telegram is not None and hasattr(telegram, "register_commands"):
            # The localized "/" menu (setMyCommands, a few calls) in the background: start-up never waits on Telegram.
            services.spawn(telegram.register_commands(services.engine.texts.command_menus()), name="telegram-commands")
        await _start_background(app, services)
        log.info("started", extra={"channels": ",".join(sorted(services.channels)),
                                   "intents": len(services.kb.intents)})
        try:
            yield
        finally:
            await services.aclose()
            log.info("stopped")

    app = FastAPI(title="kurashi", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.telegram_polling = telegram_polling

    @app.get("/healthz", include_in_schema=False)
    async def check_health() -> JSONResponse:
        """200 when the database answers, else 503."""
        services: Services | None = getattr(app.state, "services", None)
        if services is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            async with services.engine_db.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any driver error means "not healthy"
            log.warning("health check failed", extra={"error": type(exc).__name__})
            return JSONResponse({"status": "error", "database": "down"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "intents": len(services.kb.intents)})

    @app.get("/metrics", include_in_schema=False)
    async def show_metrics(request: Request) -> Response:
        """Prometheus text; with METRICS_TOKEN set, only for ``Authorization: Bearer <token>``."""
        if settings.metrics_token:
            sent = request.headers.get("authorization", "")
            expected = f"Bearer {settings.metrics_token}"
            if not hmac.compare_digest(sent.encode("utf-8", "replace"), expected.encode("utf-8")):
                return Response("metrics need the bearer token (METRICS_TOKEN)\n", status_code=401,
                                headers={"WWW-Authenticate": "Bearer"}, media_type="text/plain")
        body, content_type = render_latest()
        return Response(body, media_type=content_type)

    for _name, router in _web_routers():
        app.include_router(router)
    app.add_middleware(WebhookFastPath)   # inner: the webhooks' responses get the headers too
    app.add_middleware(SecurityHeaders)
    return app


def check_security_settings(settings: Settings, *, telegram_polling: bool = False) -> None:
    """Say what is unsafe at start-up (not on first use); in production (ENVIRONMENT=production)
    refuse to start."""
    problems = settings.security_problems(telegram_polling=telegram_polling)
    for problem in problems:
        log.warning("unsafe setting: %s", problem)
    if problems and settings.production:
        raise RuntimeError("refusing to start with ENVIRONMENT=production: " + "; ".join(problems))


def app_from_environment() -> FastAPI:
    """The app with its settings read from the environment: what each worker process of
    ``kurashi serve --workers N`` builds (uvicorn imports ``bot.app:app_from_environment``)."""
    return create_app(Settings())
