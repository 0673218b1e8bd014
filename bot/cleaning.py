"""Untrusted text and JSON from outside (webhook bodies, the web chat) made safe to store.

Owns one rule for every public input: a body is strict UTF-8 JSON of bounded nesting (else
``BadJSON``, answered 400 by the routes); inside it, characters no database column can hold
— lone UTF-16 surrogates (``"\\ud800"`` is valid JSON but not encodable as UTF-8) and NUL
(PostgreSQL text refuses it) — are stripped from every string, keys included, so text that
is otherwise fine goes through. ``clean_text`` is the same for one string.

Pure functions; no project imports.
"""
from __future__ import annotations

import json
from typing import Any

#: Webhook payloads nest a handful of levels (a Telegram reply inside a message inside an
#: update is about 8); anything deeper is not from a platform.
MAX_JSON_DEPTH = 64


class BadJSON(ValueError):
    """A body that is not strict UTF-8 JSON, or nests deeper than MAX_JSON_DEPTH."""


def clean_text(value: str) -> str:
    """``value`` without NUL characters and lone surrogates (the common case costs two scans)."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Only unpaired surrogates fail to encode (json.loads pairs escaped pairs itself).
        value = value.encode("utf-8", "ignore").decode("utf-8")
    return value


def _refuse_constant(name: str) -> Any:
    raise BadJSON(f"{name} is not JSON")


def _clean(value: Any, depth: int, max_depth: int) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        if depth >= max_depth:
            raise BadJSON("JSON nests too deeply")
        return {clean_text(k): _clean(v, depth + 1, max_depth) for k, v in value.items()}
    if isinstance(value, list):
        if depth >= max_depth:
            raise BadJSON("JSON nests too deeply")
        return [_clean(v, depth + 1, max_depth) for v in value]
    return value


def load_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse untrusted JSON: strict UTF-8, no NaN/Infinity, at most ``max_depth`` levels;
    strings cleaned with ``clean_text``. Raises ``BadJSON``."""
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadJSON("body is not UTF-8") from exc
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise BadJSON("JSON nests too deeply") from exc
    except BadJSON:
        raise
    except ValueError as exc:   # JSONDecodeError, and integers over Python's digit limit
        raise BadJSON("body is not JSON") from exc
    try:
        return _clean(data, 0, max_depth)
    except RecursionError as exc:
        raise BadJSON("JSON nests too deeply") from exc


class InvalidEvent(ValueError):
    """A stored event that cannot be answered because of its content (not a fault of ours):
    stamped failed with "invalid: <reason>" — one line, no traceback."""
