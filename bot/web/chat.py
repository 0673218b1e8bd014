"""Routes of the web chat: the page, its static files and its JSON API.

Owns ``GET /`` (the chat page), ``GET /static/chat.{js,css}``, ``GET /api/chat/ui``
(page labels and languages from knowledge/messages.yaml), ``POST /api/chat``
({"text"} | {"data"} | {"event": "start"}, optional "lang" hint → {"replies": [...]}),
``GET /api/chat/updates`` (pushes waiting for this browser, from the durable web
mailbox), ``GET /api/chat/history`` (the recent conversation of this browser session, so a
reload shows it again with its buttons; table web_turns, bot.db.web_turns). Every answer
also says the session's ``mode``: "chat", "compose" (writing a consultation) or "case"
(messages go to staff) — the page's privacy banner follows it. The browser session is a
random id in an HttpOnly cookie signed with
SECRET_KEY (itsdangerous; an unsigned or tampered id is a new session; Secure when
PUBLIC_BASE_URL is https), renewed on every message, so it expires with
delivery.web_mailbox.WEB_USER_RETENTION; the id is the web channel's platform user id.

Abuse guard: ``POST /api/chat`` is rate-limited per client address by an in-process
sliding window (NEW_SESSION_LIMIT new sessions and MESSAGE_LIMIT messages per address per
window), and ``GET /api/chat/updates`` by UPDATES_LIMIT polls per address, answering
429 with a JSON error and Retry-After. In-process is enough for the
simulator channel (one app process serves it); with several processes each counts on its
own. Behind a reverse proxy the address is the proxy's unless uvicorn trusts its
X-Forwarded-For (``kurashi serve`` trusts it only from the proxies in FORWARDED_ALLOW_IPS).

Thin: the conversation is decided by ``services.engine``; JSON shapes by
``bot.channels.web``. Everything is served locally — no CDN.
"""
from __future__ import annotations

import logging
import math
import secrets
import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from itsdangerous import BadSignature, Signer
from sqlalchemy import select

from bot.channels.web import WebChannel, reply_to_json
from bot.cleaning import BadJSON, load_json
from bot.conversation.locale import Texts, normalize_language
from bot.db.models import User
from bot.db.web_turns import ROLE_BOT, ROLE_USER, append_web_turns, recent_web_turns
from bot.services import Services, get_services
from bot.web._body import read_capped
from bot.web._secret import app_secret, public_https
from delivery.web_mailbox import WEB_USER_RETENTION

log = logging.getLogger("kurashi.web.chat")
router = APIRouter()

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "kurashi_sid"
COOKIE_MAX_AGE = int(WEB_USER_RETENTION.total_seconds())
#: Per client address and RATE_WINDOW seconds: new browser sessions (each one creates a
#: users row) and messages in all. Generous for people sharing one address (a dormitory's
#: Wi-Fi), tight enough that a script cannot fill the users table.
RATE_WINDOW = 600.0
NEW_SESSION_LIMIT = 10
MESSAGE_LIMIT = 300
#: GET /api/chat/updates per address and RATE_WINDOW: a page polls every 5 s (120 per
#: window), so this is five busy tabs behind one address — and no script hammering the mailbox.
UPDATES_LIMIT = 600
RATE_MAX_ADDRESSES = 10_000   # bound on the limiter's memory; the least recently seen go first
#: A chat message is at most a few kilobytes (bot.channels.web.MAX_TEXT characters); a body
#: over this is refused with 413 before it is read.
MAX_BODY_BYTES = 64 * 1024
UI_KEYS = ("web.title", "web.placeholder", "web.send", "web.language", "web.notice", "event.error",
           "web.notice_compose", "web.notice_case", "web.too_long", "web.earlier")
#: Longest message the page sends (the input says so when it is reached: no silent cut).
PAGE_MAX_TEXT = 2000
MAX_LABEL = 120
_STATIC_FILES = {"chat.js": "text/javascript", "chat.css": "text/css"}


class SlidingWindowLimiter:
    """At most ``limit`` hits per key in any ``window`` seconds; remembers at most ``max_keys`` keys.

    Memory is bounded: ``limit`` timestamps per key and ``max_keys`` keys (least recently
    used evicted — an evicted key starts afresh, which only errs on the side of allowing).
    """

    def __init__(self, limit: int, window: float, *, max_keys: int = RATE_MAX_ADDRESSES,
                 clock: Any = time.monotonic) -> None:
        self.limit, self.window, self.max_keys, self._clock = limit, window, max_keys, clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str) -> float:
        """0 when ``key`` may go now (the hit is counted), else seconds until it may."""
        now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque(maxlen=self.limit)
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window - now
        hits.append(now)
        return 0.0


def _limiters(services: Services) -> tuple[SlidingWindowLimiter, SlidingWindowLimiter]:
    """(new sessions, messages) limiters of this app process."""
    limiters = services.extras.get("web_chat_limiters")
    if limiters is None:
        limiters = services.extras["web_chat_limiters"] = (
            SlidingWindowLimiter(NEW_SESSION_LIMIT, RATE_WINDOW), SlidingWindowLimiter(MESSAGE_LIMIT, RATE_WINDOW))
    return limiters


def _updates_limiter(services: Services) -> SlidingWindowLimiter:
    limiter = services.extras.get("web_chat_updates_limiter")
    if limiter is None:
        limiter = services.extras["web_chat_updates_limiter"] = SlidingWindowLimiter(UPDATES_LIMIT, RATE_WINDOW)
    return limiter


def _too_many_requests(wait: float) -> JSONResponse:
    seconds = max(1, math.ceil(wait))
    return JSONResponse({"error": "too many requests from this address, retry later", "retry_after": seconds,
                         "replies": []}, status_code=429, headers={"Retry-After": str(seconds)})


def _signer(request: Request) -> Signer:
    return Signer(app_secret(request), salt="kurashi.web.sid")


def _session_id(request: Request) -> tuple[str, bool]:
    """(session id, new?): the id in a cookie this app signed, else a fresh one — a made-up or
    tampered id is a new session, never someone else's (or a way round NEW_SESSION_LIMIT)."""
    raw = request.cookies.get(COOKIE, "")
    if raw and len(raw) <= 128:
        try:
            sid = _signer(request).unsign(raw).decode("ascii")
        except (BadSignature, UnicodeDecodeError):
            sid = ""
        if len(sid) == 32 and all(c in "0123456789abcdef" for c in sid):
            return sid, False
    return secrets.token_hex(16), True


def _set_cookie(request: Request, response: Response, sid: str) -> None:
    response.set_cookie(COOKIE, _signer(request).sign(sid).decode("ascii"), max_age=COOKIE_MAX_AGE,
                        httponly=True, samesite="lax", secure=public_https(request))


def _web_channel(request: Request) -> WebChannel:
    services = get_services(request)
    channel = services.channels.get("web")
    if channel is None:
        channel = services.channels["web"] = WebChannel(services.sessionmaker)
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
        "labels": {key: texts.raw(key, code) if key == "web.too_long" else texts.t(key, code) for key in UI_KEYS},
        "max_text": PAGE_MAX_TEXT,
        "languages": [{"code": c, "name": texts.language_name(c)} for c in texts.picker_languages],
    })


@router.post("/api/chat")
async def post_chat_message(request: Request) -> JSONResponse:
    """One message or button press from the page → the core's replies as JSON."""
    services = get_services(request)
    sid, new = _session_id(request)
    address = request.client.host if request.client else "unknown"
    new_sessions, messages = _limiters(services)
    # New sessions first: a refused one is not counted as a message either.
    wait = new_sessions.retry_after(address) if new else 0.0
    wait = wait or messages.retry_after(address)
    if wait > 0:
        log.warning("web chat rate limit", extra={"new_session": new})
        return _too_many_requests(wait)
    raw = await read_capped(request, MAX_BODY_BYTES)
    if raw is None:
        return JSONResponse({"error": "body too large"}, status_code=413)
    try:
        body: Any = load_json(raw)
    except BadJSON as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
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
        shown = [reply_to_json(r) for r in replies] + pushed
        mode = await _remember_turns(services, sid, _user_line(body), shown)
        response = JSONResponse({"replies": shown, "mode": mode})
    _set_cookie(request, response, sid)   # renewed on every message: expires with the session's retention
    return response


def _user_line(body: dict[str, Any]) -> dict[str, Any] | None:
    """What the page showed as the resident's bubble: the text, or the pressed button's label."""
    if body.get("event") == "start":
        return None
    if isinstance(body.get("data"), str) and body.get("data"):
        label = body.get("label")
        return {"text": label[:MAX_LABEL]} if isinstance(label, str) and label.strip() else None
    text = body.get("text")
    return {"text": text[:PAGE_MAX_TEXT]} if isinstance(text, str) and text.strip() else None


def mode_of(user: User | None) -> str:
    """"compose" while a consultation is being written, "case" while messages go to staff, else "chat"."""
    consult = ((user.state if user is not None else None) or {}).get("consult") or {}
    if consult.get("step") == "compose":
        return "compose"
    if consult.get("mode") == "case":
        return "case"
    return "chat"


async def _remember_turns(services: Services, sid: str, user_line: dict[str, Any] | None,
                          replies: list[dict[str, Any]]) -> str:
    """Store this exchange in the session's history (for a reload); returns the session's mode.

    History is a convenience: a failure is logged and the answer still goes out."""
    lines = ([(ROLE_USER, user_line)] if user_line else []) + [(ROLE_BOT, r) for r in replies]
    try:
        async with services.sessionmaker() as session, session.begin():
            await append_web_turns(session, sid, lines)
            return mode_of(await _web_user(session, sid))
    except Exception:
        log.exception("web chat history not stored")
        return "chat"


async def _web_user(session: Any, sid: str) -> User | None:
    return (await session.execute(
        select(User).where(User.channel == "web", User.platform_user_id == sid))).scalar_one_or_none()


@router.get("/api/chat/history")
async def show_chat_history(request: Request) -> JSONResponse:
    """The recent conversation of this browser session (oldest first) and its mode; after a
    reload the page shows it again, the buttons of the last reply still usable."""
    sid, new = _session_id(request)
    if new:
        return JSONResponse({"turns": [], "mode": "chat", "lang": None})
    services = get_services(request)
    async with services.sessionmaker() as session:
        turns = await recent_web_turns(session, sid)
        user = await _web_user(session, sid)
    return JSONResponse({"turns": turns, "mode": mode_of(user), "lang": user.language if user else None},
                        headers={"Cache-Control": "no-store"})


@router.get("/api/chat/updates")
async def poll_chat_updates(request: Request) -> JSONResponse:
    """Pushed replies (consultation answers, alerts…) waiting for this browser session."""
    address = request.client.host if request.client else "unknown"
    wait = _updates_limiter(get_services(request)).retry_after(address)
    if wait > 0:
        return _too_many_requests(wait)
    sid, new = _session_id(request)
    pushed = [] if new else await _web_channel(request).take(sid)
    mode = await _remember_turns(get_services(request), sid, None, pushed) if pushed else None
    response = JSONResponse({"replies": pushed, "mode": mode} if mode else {"replies": pushed})
    if new:
        _set_cookie(request, response, sid)
    return response
