"""The key the web app signs with (console sessions, web chat session ids): SECRET_KEY, or
— when it is unset (said at start-up, refused in production) — a random key of this
process, so signed values end at restart and do not work across workers."""
from __future__ import annotations

import secrets

from starlette.requests import Request


def app_secret(request: Request) -> str:
    key = getattr(request.app.state.settings, "secret_key", None)
    if key:
        return key
    state = request.app.state
    fallback = getattr(state, "fallback_secret", None)
    if fallback is None:
        fallback = state.fallback_secret = secrets.token_urlsafe(32)
    return fallback


def public_https(request: Request) -> bool:
    """Whether PUBLIC_BASE_URL is https (then cookies are Secure)."""
    return str(getattr(request.app.state.settings, "public_base_url", "")).lower().startswith("https://")
