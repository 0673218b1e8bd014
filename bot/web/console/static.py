"""The console's own static files (``/console/static/console.css``, ``console.js``).

Served from this package (no CDN); a fixed list, so no path from the URL reaches the disk.
Must not import the conversation engine.
"""
from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from bot.web.console.templating import STATIC_DIR

router = APIRouter()
_FILES = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}


@router.get("/static/{name}")
async def send_static(name: str) -> FileResponse:
    """One of the console's CSS/JS files (cached for an hour)."""
    if name not in _FILES:
        raise HTTPException(status_code=404)
    return FileResponse(STATIC_DIR / name, media_type=_FILES[name], headers={"Cache-Control": "max-age=3600"})
