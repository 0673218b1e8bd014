"""Routes of the web chat: the page, its static files and its JSON API.

Owns ``GET /`` (the chat page), ``GET /static/chat.{js,css}``, ``GET /api/chat/ui``
(page labels and languages from knowledge/messages.yaml), ``POST /api/chat``
({"text"} | {"data"} | {"event": "start"}, optional "lang" hint → {"replies": [...]}),
``GET /api/chat/updates`` (pushes waiting for this browser). The browser session is a
random id in an HttpOnly cookie; it is the web channel's platform user id.

Thin: the conversation is decided by ``services.engine``; JSON shapes by
``bot.channels.web``. Everything is served locally — no CDN.
"""
from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from bot.channels.web import WebChannel, reply_to_json
from bot.conversation.locale import Texts, normalize_language
from bot.services import get_services

log = logging.getLogger("kurashi.web.chat")
router = APIRouter()

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "kurashi_sid"
COOKIE_MAX_AGE = 60 * 60 * 24 * 30
UI_KEYS = ("web.title", "web.placeholder", "web.send", "web.language", "web.notice", "event.error")
_STATIC_FILES = {"chat.js": "text/javascript", "chat.css": "text/css"}


def _session_id(request: Request) -> tuple[str, bool]:
    sid = request.cookies.get(COOKIE, "")
    if 16 <= len(sid) <= 64 and sid.isalnum():
        return sid, False
    return secrets.token_hex(16), True


def _set_cookie(response: Response, sid: str) -> None:
    response.set_cookie(COOKIE, sid, max_age=COOKIE_MAX_AGE, httponly=True, samesite="lax")


def _web_channel(request: Request) -> WebChannel:
    services = get_services(request)
    channel = services.channels.get("web")
    if channel is None:
        channel = services.channels["web"] = WebChannel()
    return channel


@router.get("/", include_in_schema=False)
async def show_chat_page() -> FileResponse:
    """The chat page (text comes from /api/chat/ui, in the visitor's language)."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


@router.get("/static/{name}", include_in_schema=False)
async def serve_static(name: str) -> Response:
    if name not in _STATIC_FILES:
        return Response(status_code=404)
    return FileResponse(STATIC / name, media_type=_STATIC_FILES[name])


@router.get("/api/chat/ui")
async def show_ui_labels(request: Request, lang: str | None = None) -> JSONResponse:
    """Labels of the page in ``lang`` (fallback en), and the languages of the switch."""
    texts = Texts(get_services(request).kb)
    code = normalize_language(lang) or "en"
    return JSONResponse({
        "lang": code,
        "labels": {key: texts.t(key, code) for key in UI_KEYS},
        "languages": [{"code": c, "name": texts.language_name(c)} for c in texts.picker_languages],
    })


@router.post("/api/chat")
async def post_chat_message(request: Request) -> JSONResponse:
    """One message or button press from the page → the core's replies as JSON."""
    services = get_services(request)
    sid, new = _session_id(request)
    try:
        body: Any = await request.json()
    except ValueError:
        return JSONResponse({"error": "malformed JSON"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"error": "expected a JSON object"}, status_code=400)
    channel = _web_channel(request)
    msg = channel.to_incoming(sid, body)
    try:
        replies = await services.engine.handle(msg)
    except Exception:
        log.exception("web chat message failed")
        lang = normalize_language(body.get("lang") if isinstance(body.get("lang"), str) else None)
        text = Texts(services.kb).t("event.error", lang)
        response = JSONResponse({"replies": [{"text": text, "quick_replies": [], "buttons": [],
                                              "card": None}]}, status_code=500)
    else:
        pushed = await channel.take(sid)
        response = JSONResponse({"replies": [reply_to_json(r) for r in replies] + pushed})
    if new:
        _set_cookie(response, sid)
    return response


@router.get("/api/chat/updates")
async def poll_chat_updates(request: Request) -> JSONResponse:
    """Pushed replies (consultation answers, alerts…) waiting for this browser session."""
    sid, new = _session_id(request)
    pushed = [] if new else await _web_channel(request).take(sid)
    response = JSONResponse({"replies": pushed})
    if new:
        _set_cookie(response, sid)
    return response
