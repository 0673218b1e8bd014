"""Webhook routes: ``POST /webhooks/line`` and ``POST /webhooks/telegram``.

Owns the HTTP contract with the platforms: authenticate the delivery before reading it
(LINE ``X-Line-Signature``: missing → 400, wrong → 401; Telegram
``X-Telegram-Bot-Api-Secret-Token``: missing → 401, wrong → 403), refuse a body that is
not a webhook payload with 400, store the verified events (bot.inbound.ingest_events,
de-duplicated by platform event id) and answer 200 at once; the answer to the resident
is produced by a referenced background task. A channel that is not configured answers 404.
During shutdown (``Services.closing``) events are still stored and answered 200 but left
pending for the next start; once the process has shut down (``Services.closed``) 503.

Thin: no conversation logic, no SDK imports; adapters verify and split bodies.

``WebhookFastPath`` (added by bot/app.py inside the security-headers middleware) hands the
two webhook POSTs to their handlers straight from the ASGI call, past FastAPI's router,
exception middleware and dependency solving — a fixed ~0.3 ms of CPU per request on the
busiest path of the app; every other request (and every other method on these paths)
goes through FastAPI as before.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

from bot.channels.line import InvalidWebhookBody
from bot.channels.telegram import SECRET_HEADER, InvalidUpdateBody
from bot.inbound import ingest_events
from bot.metrics import record_webhook
from bot.services import get_services
from bot.web._body import read_capped

log = logging.getLogger("kurashi.web.webhooks")
router = APIRouter()

LINE_SIGNATURE_HEADER = "X-Line-Signature"
#: Platform webhook bodies are a few kilobytes; anything this big is not from LINE/Telegram.
MAX_BODY_BYTES = 1_000_000


async def _read_body(request: Request) -> bytes | None:
    """The raw body, or None when it is larger than MAX_BODY_BYTES (read no further)."""
    return await read_capped(request, MAX_BODY_BYTES)


def _error(status: int, reason: str, channel: str | None = None, outcome: str = "rejected") -> JSONResponse:
    if channel is not None:
        record_webhook(channel, outcome)
    return JSONResponse({"ok": False, "error": reason}, status_code=status)


def _shut_down(channel: str) -> JSONResponse:
    # After shutdown the database is gone: ask the platform to deliver again later.
    record_webhook(channel, "unavailable")
    return JSONResponse({"ok": False, "error": "shutting down"}, status_code=503, headers={"Retry-After": "5"})


def _stored(channel: str, events: int, stored: int) -> JSONResponse:
    if stored:
        record_webhook(channel, "stored")
    if events - stored > 0:
        record_webhook(channel, "duplicate")
    return JSONResponse({"ok": True, "stored": stored})


#: A check of one delivery: (adapter, request headers[, body]) -> the refusal, or None to go on.
HeaderCheck = Callable[[Any, Headers], "JSONResponse | None"]
BodyCheck = Callable[[Any, Headers, bytes], "JSONResponse | None"]


async def _receive(request: Request, channel: str, platform: str, malformed: type[Exception],
                   check_headers: HeaderCheck, check_body: BodyCheck | None = None) -> JSONResponse:
    """The one webhook path: configured? running? headers, then the (capped) body, checked by
    the platform's rules; split by the adapter; stored; answered with what was stored."""
    services = get_services(request)
    adapter = services.channels.get(channel)
    if adapter is None:
        return _error(404, f"{platform} is not configured")
    if services.closed:
        return _shut_down(channel)
    refusal = check_headers(adapter, request.headers)
    if refusal is not None:
        return refusal
    body = await _read_body(request)
    if body is None:
        return _error(413, "body too large", channel)
    refusal = check_body(adapter, request.headers, body) if check_body is not None else None
    if refusal is not None:
        return refusal
    try:
        events = adapter.split_body(body)
    except malformed as exc:
        return _error(400, str(exc), channel, "malformed")
    # LINE's "verify" button in the console sends an empty events list: 200, nothing to do.
    stored = await ingest_events(services, channel, events) if events else []
    return _stored(channel, len(events), len(stored))


def _line_signature_present(line: Any, headers: Headers) -> JSONResponse | None:
    if not headers.get(LINE_SIGNATURE_HEADER):
        return _error(400, "missing X-Line-Signature", "line")
    return None


def _line_signature_valid(line: Any, headers: Headers, body: bytes) -> JSONResponse | None:
    if not line.verify(body, headers[LINE_SIGNATURE_HEADER]):
        log.warning("line webhook with a wrong signature refused")
        return _error(401, "invalid signature", "line")
    return None


def _telegram_secret_valid(telegram: Any, headers: Headers) -> JSONResponse | None:
    secret = headers.get(SECRET_HEADER)
    if not secret:
        return _error(401, "missing secret token", "telegram")
    if not telegram.verify(secret):
        log.warning("telegram webhook with a wrong secret refused")
        return _error(403, "invalid secret token", "telegram")
    return None


@router.post("/webhooks/line", include_in_schema=False)
async def receive_line_webhook(request: Request) -> JSONResponse:
    """LINE delivers events here; the signature (over the body) is checked, events stored,
    200 answered, each processed in the background."""
    return await _receive(request, "line", "LINE", InvalidWebhookBody,
                          _line_signature_present, _line_signature_valid)


@router.post("/webhooks/telegram", include_in_schema=False)
async def receive_telegram_webhook(request: Request) -> JSONResponse:
    """Telegram delivers one Update here; the secret is checked before the body is read,
    the update stored, 200 answered, processed later."""
    return await _receive(request, "telegram", "Telegram", InvalidUpdateBody, _telegram_secret_valid)


class WebhookFastPath:
    """ASGI middleware: ``POST /webhooks/line`` and ``POST /webhooks/telegram`` go to their
    handlers directly (same handlers, same responses); anything else to the app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.routes = {"/webhooks/line": receive_line_webhook, "/webhooks/telegram": receive_telegram_webhook}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.routes.get(scope["path"])
            if handler is not None:
                response = await handler(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
