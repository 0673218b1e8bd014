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
"""
from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

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


@router.post("/webhooks/line", include_in_schema=False)
async def receive_line_webhook(request: Request) -> JSONResponse:
    """LINE delivers events here; verify, store, answer 200, process in the background."""
    services = get_services(request)
    line = services.channels.get("line")
    if line is None:
        return _error(404, "LINE is not configured")
    if services.closed:
        return _shut_down("line")
    signature = request.headers.get(LINE_SIGNATURE_HEADER)
    if not signature:
        return _error(400, "missing X-Line-Signature", "line")
    body = await _read_body(request)
    if body is None:
        return _error(413, "body too large", "line")
    if not line.verify(body, signature):
        log.warning("line webhook with a wrong signature refused")
        return _error(401, "invalid signature", "line")
    try:
        events = line.split_body(body)
    except InvalidWebhookBody as exc:
        return _error(400, str(exc), "line", "malformed")
    # LINE's "verify" button in the console sends an empty events list: 200, nothing to do.
    stored = await ingest_events(services, "line", events) if events else []
    return _stored("line", len(events), len(stored))


@router.post("/webhooks/telegram", include_in_schema=False)
async def receive_telegram_webhook(request: Request) -> JSONResponse:
    """Telegram delivers one Update here; check the secret, store, answer 200, process later."""
    services = get_services(request)
    telegram = services.channels.get("telegram")
    if telegram is None:
        return _error(404, "Telegram is not configured")
    if services.closed:
        return _shut_down("telegram")
    secret = request.headers.get(SECRET_HEADER)
    if not secret:
        return _error(401, "missing secret token", "telegram")
    if not telegram.verify(secret):
        log.warning("telegram webhook with a wrong secret refused")
        return _error(403, "invalid secret token", "telegram")
    body = await _read_body(request)
    if body is None:
        return _error(413, "body too large", "telegram")
    try:
        events = telegram.split_body(body)
    except InvalidUpdateBody as exc:
        return _error(400, str(exc), "telegram", "malformed")
    stored = await ingest_events(services, "telegram", events)
    return _stored("telegram", len(events), len(stored))
