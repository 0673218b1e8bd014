"""`kurashi serve [--host] [--port] [--telegram-polling]`: run the app with uvicorn.

Owns only the command line; the app itself is ``bot.app.create_app``.
"""
from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the web app (webhooks, web chat, health, metrics)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--telegram-polling", action="store_true",
                        help="fetch Telegram updates with getUpdates instead of a webhook (development)")
    parser.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Start uvicorn with the kurashi app until interrupted."""
    import uvicorn

    from bot.app import create_app
    from bot.logging import configure_logging
    from bot.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level)
    app = create_app(settings, telegram_polling=args.telegram_polling)
    _log_unreachable_orgs(settings)
    # Behind a reverse proxy the client address (login rate limit, logs) comes from
    # X-Forwarded-For, trusted only from FORWARDED_ALLOW_IPS; by default from nobody (uvicorn's
    # own default would trust 127.0.0.1, and read FORWARDED_ALLOW_IPS behind our back).
    trusted = settings.forwarded_allow_ips.strip()
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, proxy_headers=bool(trusted),
                forwarded_allow_ips=trusted or None)
    return 0


def _log_unreachable_orgs(settings: Any) -> None:
    """Startup line: partner organisations nobody would be told about (bot/consult/notify.py)."""
    import asyncio
    import logging

    from bot.consult.notify import log_startup_reachability

    try:
        asyncio.run(log_startup_reachability(settings))
    except Exception:  # a check, never a reason not to start
        logging.getLogger("kurashi.consult").exception("could not check consultation notification targets")
