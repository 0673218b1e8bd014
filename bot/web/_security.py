"""Security headers on every HTTP response of the app (a pure ASGI middleware: no
per-request overhead beyond appending headers, so the webhook path stays cheap).

- Content-Security-Policy: scripts, styles, fonts and connections from this site only
  (the chat page and the console load everything locally; the console's templates keep
  small inline <style> blocks, hence 'unsafe-inline' for styles only — never scripts),
  images also from https: and data:, no plugins, no <base>, forms post here only, and
  ``frame-ancestors 'none'``: no page may be framed (clickjacking of the chat or console).
- X-Frame-Options: DENY (the same for browsers without CSP level 2), X-Content-Type-Options:
  nosniff, Referrer-Policy: same-origin.
A route that sets one of these headers itself keeps its own.
"""
from __future__ import annotations

from typing import Any

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in HEADERS if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
