"""`kurashi serve [--host] [--port] [--workers N] [--telegram-polling]`: run the app with uvicorn.

Owns only the command line; the app itself is ``bot.app.create_app``. With ``--workers N``
(N > 1) uvicorn's own multi-process mode runs N worker processes on one listening socket,
each building the app with ``bot.app.app_from_environment``; this process (the parent)
upgrades the database once before they start (``bot.db.session.mark_schema_upgraded`` tells
them not to migrate again) and gives them a shared metrics folder (PROMETHEUS_MULTIPROC_DIR:
``/metrics`` adds up every worker), then only supervises them (a dead worker is replaced;
SIGTERM or SIGINT stops them all). Several workers need PostgreSQL and SECRET_KEY, and no Telegram
polling: those are refused with exit code 2 and a one-line reason.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from typing import Any

#: The worker processes' app factory (uvicorn imports it by name in each worker).
APP_FACTORY = "bot.app:app_from_environment"

log = logging.getLogger("kurashi.serve")


def _worker_count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return count


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the web app (webhooks, web chat, health, metrics)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--workers", type=_worker_count, default=1, metavar="N",
                        help="worker processes sharing host:port (default 1); more than one needs "
                             "PostgreSQL and SECRET_KEY, and no --telegram-polling")
    parser.add_argument("--telegram-polling", action="store_true",
                        help="fetch Telegram updates with getUpdates instead of a webhook (development)")
    parser.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Start uvicorn with the kurashi app until interrupted."""
    import uvicorn

    from bot.logging import configure_logging
    from bot.settings import Settings

    settings = Settings()
    if args.workers > 1:
        problem = workers_problem(settings, args.workers, telegram_polling=args.telegram_polling)
        if problem is not None:
            print(f"kurashi serve: {problem}", file=sys.stderr)
            return 2
        configure_logging(settings.log_level)
        return _run_workers(settings, args)

    from bot.app import create_app

    configure_logging(settings.log_level)
    app = create_app(settings, telegram_polling=args.telegram_polling)
    _log_unreachable_orgs(settings)
    uvicorn.run(app, **_uvicorn_options(settings, args))
    return 0


def workers_problem(settings: Any, workers: int, *, telegram_polling: bool = False) -> str | None:
    """Why ``workers`` (> 1) processes cannot serve with these settings, or None."""
    from bot.db.session import is_sqlite

    if telegram_polling:
        return (f"--workers {workers} cannot poll Telegram: each worker would call getUpdates and they "
                "would take each other's updates; use the webhook (TELEGRAM_WEBHOOK_SECRET) or one worker")
    if is_sqlite(settings.database_url):
        return (f"--workers {workers} needs PostgreSQL (DATABASE_URL=postgresql+asyncpg://…): SQLite has "
                "one writer at a time; run one worker on SQLite")
    if not settings.secret_key:
        return (f"--workers {workers} needs SECRET_KEY: without it every worker signs staff console "
                "sessions and web chat ids with a random key of its own, which the other workers refuse")
    return None


def _uvicorn_options(settings: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Where to listen and whom to believe, the same for one process and for N workers."""
    # Behind a reverse proxy the client address (login rate limit, logs) comes from
    # X-Forwarded-For, trusted only from FORWARDED_ALLOW_IPS; by default from nobody (uvicorn's
    # own default would trust 127.0.0.1, and read FORWARDED_ALLOW_IPS behind our back).
    trusted = settings.forwarded_allow_ips.strip()
    return {"host": args.host, "port": args.port, "log_config": None, "proxy_headers": bool(trusted),
            "forwarded_allow_ips": trusted or None}


def _run_workers(settings: Any, args: argparse.Namespace) -> int:
    """Upgrade the database once, then run ``args.workers`` uvicorn workers until stopped.

    uvicorn's supervisor (what ``uvicorn.run(..., workers=N)`` runs) is used directly so that
    a worker that fails to start (its lifespan raised) ends this process with uvicorn's
    start-up failure code instead of 0."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from bot.db.session import mark_schema_upgraded, upgrade_database_sync

    try:
        upgrade_database_sync(settings.database_url)
    except Exception:
        log.exception("database upgrade failed: not starting the workers")
        return STARTUP_FAILURE
    mark_schema_upgraded(settings.database_url)
    log.info("database upgraded once for all workers", extra={"workers": args.workers})
    _log_unreachable_orgs(settings)

    metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Read by prometheus_client when a worker imports it (bot/metrics.py); emptied with this run.
        metrics_dir = tempfile.TemporaryDirectory(prefix="kurashi-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
    config = uvicorn.Config(APP_FACTORY, factory=True, workers=args.workers, **_uvicorn_options(settings, args))
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    try:
        supervisor.run()
    except KeyboardInterrupt:  # pragma: no cover - uvicorn handles SIGINT itself
        pass
    finally:
        if metrics_dir is not None:
            metrics_dir.cleanup()
    if any(getattr(p, "exitcode", None) == STARTUP_FAILURE for p in getattr(supervisor, "processes", ())):
        log.error("a worker failed to start (see its log lines above): stopped")
        return STARTUP_FAILURE
    return 0


def _log_unreachable_orgs(settings: Any) -> None:
    """Startup line: partner organisations nobody would be told about (bot/consult/notify.py)."""
    import asyncio

    from bot.consult.notify import log_startup_reachability

    try:
        asyncio.run(log_startup_reachability(settings))
    except Exception:  # a check, never a reason not to start
        logging.getLogger("kurashi.consult").exception("could not check consultation notification targets")
