"""Reading public request bodies with a cap: nothing larger than the route's limit is read
into memory (a declared Content-Length over it is refused before reading; a chunked body
is counted as it arrives). Shared by the webhooks (1 MB) and the web chat (64 KB)."""
from __future__ import annotations

from starlette.requests import Request


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is larger than ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
