"""Login and logout pages of the staff console.

Owns ``GET/POST /console/login`` (e-mail + password, argon2, rate-limited, CSRF-checked
with the login cookie's token) and ``POST /console/logout``. The rules for sessions, CSRF
and the rate limit are in ``auth.py``.
Must not import the conversation engine.
"""
from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from bot.web.console import auth
from bot.web.console.auth import PREFIX, verify_csrf
from bot.web.console.templating import render

log = logging.getLogger("kurashi.web.console")
router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a console path of this site (no open redirect)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


@router.get("/login")
async def show_login(request: Request, next: str | None = None) -> Response:
    """The login form (already signed in → the inbox)."""
    if auth._read_session(request) is not None:
        try:
            await auth.require_staff(request)
        except HTTPException:
            pass  # a stale session (account gone, password changed): show the form
        else:
            return RedirectResponse(_safe_next(next), status_code=303)
    placeholder = Response()
    auth.prepare_login_csrf(request, placeholder)
    response = render(request, "console/login.html", {"next": _safe_next(next), "email": ""})
    _copy_cookies(placeholder, response)
    return response


def _copy_cookies(source: Response, target: Response) -> None:
    for key, value in source.raw_headers:
        if key == b"set-cookie":
            target.raw_headers.append((key, value))


@router.post("/login", dependencies=[Depends(verify_csrf)])
async def submit_login(request: Request, email: str = Form(""), password: str = Form(""),
                       next: str = Form("")) -> Response:
    """Check the password; on success a new session and a redirect to ``next``."""
    services = request.app.state.services
    address = auth.client_address(request)
    try:
        async with services.sessionmaker() as db, db.begin():
            staff = await auth.login(db, email, password, address)
    except auth.LoginRateLimited:
        log.warning("console login rate-limited", extra={"address": address})
        return _form_again(request, next, email, "ログインの失敗が多すぎます。しばらく待ってから試してください。"
                           " Too many failed attempts — wait 15 minutes and try again.", 429)
    if staff is None:
        return _form_again(request, next, email, "メールアドレスかパスワードが違います。"
                           " Wrong e-mail or password.", 401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    auth.start_session(request, response, staff)
    log.info("console login", extra={"staff_id": staff.id, "org": staff.org})
    return response


def _form_again(request: Request, next_url: str, email: str, error: str, status_code: int) -> Response:
    placeholder = Response()
    auth.prepare_login_csrf(request, placeholder)
    response = render(request, "console/login.html",
                      {"next": _safe_next(next_url), "email": email, "error": error}, status_code=status_code)
    _copy_cookies(placeholder, response)
    return response


@router.post("/logout", dependencies=[Depends(verify_csrf)])
async def submit_logout(request: Request) -> Response:
    """End the session server-side (every session of the account) and remove the cookie."""
    session = auth._read_session(request)
    if session is not None:
        async with request.app.state.services.sessionmaker() as db, db.begin():
            await auth.revoke_sessions(db, session.staff_id)
        log.info("console logout", extra={"staff_id": session.staff_id})
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    auth.end_session(response)
    return response
