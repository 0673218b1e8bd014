"""Staff console authentication: passwords, the session cookie, CSRF, the login rate limit.

Owns, for every console page (ours and the scheduler's operator pages):
- ``require_staff(request) -> Staff``: FastAPI dependency. No valid session → 303 redirect
  to ``/console/login?next=…`` (the "401 → login" of the brief, done as a redirect because
  routers cannot install exception handlers). Sets ``request.state.staff``.
- ``require_operator(request) -> Staff``: staff of the city organisation (``CITY_ORG``)
  with role "operator"; any other signed-in staff get 403.
- ``csrf_field(request) -> Markup`` (also a Jinja global) and ``verify_csrf(request)``:
  the hidden ``csrf_token`` input on every form and its check (403) on every POST —
  use ``dependencies=[Depends(verify_csrf)]`` on each POST route (a POST without any
  session is redirected to the login page instead).
- ``hash_password`` / ``verify_password`` (argon2id, argon2-cffi defaults).
- ``login(...)``: check a password under the rate limit, record the attempt.

Session: a signed cookie (itsdangerous, ``SECRET_KEY``), HttpOnly, SameSite=Lax, path
``/console``, Secure when ``PUBLIC_BASE_URL`` is https, valid 12 hours from login. It holds
the staff id, a per-session CSRF token, a fingerprint of the password hash and the
account's ``session_version``, all checked against the database on every request: changing
a password, deactivating the account or logging out (which raises the version:
``revoke_sessions``) ends existing sessions server-side — a copied cookie stops working. CSRF is session-bound: the form token must equal the token inside the signed
session cookie; before login, the same is done with a short-lived signed login cookie.
Without ``SECRET_KEY`` a random per-process key is used (logged as a warning): sessions
then end at every restart and do not work across several worker processes.

Login rate limit (the choice asked for in the brief): **stored in the database**
(``staff_login_attempts``), so it holds across restarts and worker processes. A login is
refused (429) when, within the last ``WINDOW``, there were ``MAX_FAILURES_PER_ACCOUNT``
failed attempts for that e-mail from that client address since its last success,
``MAX_FAILURES_PER_ACCOUNT_ANYWHERE`` for that e-mail from any address since the account's
last success (rotated addresses), or ``MAX_FAILURES_PER_ADDRESS`` failed attempts from
that address for any e-mail (guessing across accounts). Refused attempts are not checked
and not counted again, so waiting out the window always works. The client address is the
one uvicorn puts in the ASGI scope: ``kurashi serve`` trusts X-Forwarded-For only from the
proxies listed in FORWARDED_ALLOW_IPS (none by default), otherwise it is the socket peer.

Must not import the conversation engine or platform SDKs; case logic stays in
bot/consult/cases.py.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup, escape
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.consult_models import ROLE_OPERATOR, LoginAttempt, Staff
from bot.db.models import utcnow
from bot.web._secret import app_secret

log = logging.getLogger("kurashi.web.console.auth")

PREFIX = "/console"
#: The city's own organisation (key in knowledge/partners.yaml): its operators run the
#: knowledge base, event notices, alerts and delivery reports.
CITY_ORG = "city_intl"

SESSION_COOKIE = "kurashi_console"
LOGIN_COOKIE = "kurashi_console_login"
SESSION_MAX_AGE = 12 * 60 * 60
LOGIN_MAX_AGE = 60 * 60
CSRF_FIELD = "csrf_token"

WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ACCOUNT_ANYWHERE = 10
MAX_FAILURES_PER_ADDRESS = 20

_hasher = PasswordHasher()
#: Verified against when the e-mail is unknown, so an unknown account takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


# --------------------------------------------------------------------------- passwords

def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (refuses an empty one)."""
    if not password:
        raise ValueError("empty password")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; never raises on a bad hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- cookies

def _settings(request: Request) -> Any:
    return request.app.state.settings


def _secret(request: Request) -> str:
    # SECRET_KEY, else a random key of this process (said at start-up: bot.app.check_security_settings).
    return app_secret(request)


def _serializer(request: Request, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_secret(request), salt=salt)


def _secure(request: Request) -> bool:
    return str(getattr(_settings(request), "public_base_url", "")).lower().startswith("https://")


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PREFIX, httponly=True, samesite="lax",
                        secure=_secure(request))


@dataclass(frozen=True)
class ConsoleSession:
    staff_id: int
    csrf: str
    fingerprint: str
    version: int = 0


def _read_session(request: Request) -> ConsoleSession | None:
    """The signed session cookie's content (cached per request), or None."""
    if hasattr(request.state, "console_session"):
        return request.state.console_session
    session = None
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        try:
            data = _serializer(request, "kurashi.console.session").loads(raw, max_age=SESSION_MAX_AGE)
            session = ConsoleSession(int(data["s"]), str(data["c"]), str(data["p"]), int(data["v"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            session = None
    request.state.console_session = session
    return session


def start_session(request: Request, response: Response, staff: Staff) -> str:
    """Sign ``staff`` in on ``response`` (a new session with a new CSRF token); returns the token."""
    csrf = secrets.token_urlsafe(24)
    value = _serializer(request, "kurashi.console.session").dumps(
        {"s": staff.id, "c": csrf, "p": _fingerprint(staff.password_hash), "v": staff.session_version or 0})
    _set_cookie(request, response, SESSION_COOKIE, value, SESSION_MAX_AGE)
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return csrf


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)


async def revoke_sessions(db: AsyncSession, staff_id: int) -> None:
    """End every console session of this account server-side (its signed cookies stop
    working at once): logout, and whenever an account must be signed out everywhere."""
    await db.execute(update(Staff).where(Staff.id == staff_id)
                     .values(session_version=Staff.session_version + 1)
                     .execution_options(synchronize_session=False))


def _read_login_token(request: Request) -> str | None:
    raw = request.cookies.get(LOGIN_COOKIE)
    if not raw:
        return None
    try:
        return str(_serializer(request, "kurashi.console.login").loads(raw, max_age=LOGIN_MAX_AGE))
    except (BadSignature, TypeError, ValueError):
        return None


def prepare_login_csrf(request: Request, response: Response) -> str:
    """The CSRF token of the login form (kept in a signed cookie until the login succeeds)."""
    token = _read_login_token(request) or secrets.token_urlsafe(24)
    _set_cookie(request, response, LOGIN_COOKIE,
                _serializer(request, "kurashi.console.login").dumps(token), LOGIN_MAX_AGE)
    request.state.csrf_token = token
    return token


# --------------------------------------------------------------------------- CSRF

def csrf_token(request: Request) -> str:
    """The CSRF token for forms on this page (session-bound; the login token before login)."""
    token = getattr(request.state, "csrf_token", None)
    if token:
        return token
    session = _read_session(request)
    if session is not None:
        return session.csrf
    raise RuntimeError("no CSRF token: call require_staff (or prepare_login_csrf) before rendering a form")


def csrf_field(request: Request) -> Markup:
    """The hidden input every console form must contain (``{{ csrf_field(request) }}``)."""
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token(request))}">')


async def verify_csrf(request: Request) -> None:
    """FastAPI dependency for every POST: the form's ``csrf_token`` must match the session's
    (or, on the login form, the login cookie's) token — else 403."""
    if _read_session(request) is None and request.url.path != f"{PREFIX}/login":
        # The session ended (12 hours, password changed) while a form was open: the login
        # page, not a bare 403 — nothing is done either way.
        raise _login_redirect(request)
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = [t for t in (getattr(_read_session(request), "csrf", None), _read_login_token(request)) if t]
    if not isinstance(sent, str) or not sent or not any(hmac.compare_digest(sent, t) for t in expected):
        log.warning("console CSRF check failed", extra={"path": request.url.path})
        raise HTTPException(status_code=403, detail="CSRF token missing or invalid")


# --------------------------------------------------------------------------- dependencies

def _login_redirect(request: Request) -> HTTPException:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET" or not target.startswith(PREFIX):
        target = PREFIX + "/"
    return HTTPException(status_code=303, detail="login required",
                         headers={"Location": f"{PREFIX}/login?next={quote(target, safe='')}"})


async def require_staff(request: Request) -> Staff:
    """FastAPI dependency: the signed-in, active staff account (else a redirect to the login page)."""
    cached = getattr(request.state, "staff", None)
    if cached is not None:
        return cached
    session = _read_session(request)
    if session is None:
        raise _login_redirect(request)
    services = request.app.state.services
    async with services.sessionmaker() as db:
        staff = await db.get(Staff, session.staff_id)
    if staff is None or not staff.active or (staff.session_version or 0) != session.version or not hmac.compare_digest(
            _fingerprint(staff.password_hash), session.fingerprint):
        raise _login_redirect(request)
    request.state.staff = staff
    request.state.csrf_token = session.csrf
    return staff


def is_operator(staff: Staff) -> bool:
    return staff.org == CITY_ORG and staff.role == ROLE_OPERATOR


async def require_operator(request: Request) -> Staff:
    """FastAPI dependency: an operator of the city organisation (other staff: 403)."""
    staff = await require_staff(request)
    if not is_operator(staff):
        raise HTTPException(status_code=403, detail="operators of the city organisation only")
    return staff


# --------------------------------------------------------------------------- login

class LoginRateLimited(Exception):
    """Too many failed attempts (for this account from this address, or from this address)."""


def client_address(request: Request) -> str:
    return (request.client.host if request.client else "unknown")[:64]


async def _too_many_failures(db: AsyncSession, email: str, address: str, now: datetime) -> bool:
    since = now - WINDOW
    last_ok = await db.scalar(select(func.max(LoginAttempt.at)).where(
        LoginAttempt.email == email, LoginAttempt.address == address, LoginAttempt.ok.is_(True),
        LoginAttempt.at >= since))
    failed = [LoginAttempt.email == email, LoginAttempt.address == address, LoginAttempt.ok.is_(False),
              LoginAttempt.at >= since]
    if last_ok is not None:
        failed.append(LoginAttempt.at > last_ok)   # a success starts the count again
    account = await db.scalar(select(func.count()).select_from(LoginAttempt).where(*failed))
    if (account or 0) >= MAX_FAILURES_PER_ACCOUNT:
        return True
    if email:
        # The account from every address: rotating addresses (or a spoofed X-Forwarded-For)
        # does not buy more guesses at one password.
        last_ok_any = await db.scalar(select(func.max(LoginAttempt.at)).where(
            LoginAttempt.email == email, LoginAttempt.ok.is_(True), LoginAttempt.at >= since))
        anywhere = [LoginAttempt.email == email, LoginAttempt.ok.is_(False), LoginAttempt.at >= since]
        if last_ok_any is not None:
            anywhere.append(LoginAttempt.at > last_ok_any)
        total = await db.scalar(select(func.count()).select_from(LoginAttempt).where(*anywhere))
        if (total or 0) >= MAX_FAILURES_PER_ACCOUNT_ANYWHERE:
            return True
    by_address = await db.scalar(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.address == address, LoginAttempt.ok.is_(False), LoginAttempt.at >= since))
    return (by_address or 0) >= MAX_FAILURES_PER_ADDRESS


async def login(db: AsyncSession, email: str, password: str, address: str, *,
                now: datetime | None = None) -> Staff | None:
    """Check ``email``/``password`` (in the caller's transaction): the Staff on success, None
    on a wrong e-mail or password; ``LoginRateLimited`` when over the limit (nothing checked)."""
    now = now or utcnow()
    email = (email or "").strip().lower()[:254]
    if await _too_many_failures(db, email, address, now):
        raise LoginRateLimited(email)
    staff = await db.scalar(select(Staff).where(Staff.email == email)) if email else None
    ok = verify_password(staff.password_hash if staff else _DUMMY_HASH, password or "")
    ok = ok and staff is not None and staff.active
    db.add(LoginAttempt(email=email, address=address, ok=ok, at=now))
    if not ok:
        await db.flush()
        return None
    assert staff is not None
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = _hasher.hash(password)
    staff.last_login_at = now
    await db.flush()
    return staff


#: Route parameter types: ``staff: CurrentStaff`` / ``operator: CurrentOperator``.
CurrentStaff = Annotated[Staff, Depends(require_staff)]
CurrentOperator = Annotated[Staff, Depends(require_operator)]
