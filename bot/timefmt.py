"""Dates and times as staff and operators read them: Japan time, one format everywhere.

``jst(at)`` → ``"2026-12-06 10:20 JST"`` (``"–"`` for None). The staff console (the ``local``
Jinja filter), the CLI (``kurashi alert|insights|events|scheduler …``) and staff
notifications use it, so a time copied from one place matches the others. A naive datetime
is taken as UTC (the database stores UTC). Residents' texts format dates in their own
language elsewhere (scheduler/alerts.py, bot/consult/flow.py).
"""
from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")
FORMAT = "%Y-%m-%d %H:%M"
SUFFIX = "JST"
NONE = "–"


def to_jst(at: datetime) -> datetime:
    """``at`` in Japan time (naive values are UTC)."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(TOKYO)


def jst(at: datetime | None) -> str:
    """``"YYYY-MM-DD HH:MM JST"``, or ``"–"`` when there is no time."""
    return f"{to_jst(at).strftime(FORMAT)} {SUFFIX}" if at is not None else NONE


def jst_date(at: datetime | date | None) -> str:
    """``"YYYY-MM-DD"`` of the Japan-time day (a date is shown as it is)."""
    if at is None:
        return NONE
    if isinstance(at, datetime):
        return to_jst(at).strftime("%Y-%m-%d")
    return at.isoformat()


def jst_iso(value: str | None) -> str:
    """An ISO-8601 string (as JSON reports carry it) shown like ``jst``; unparsable text as it is."""
    if not value:
        return NONE
    try:
        return jst(datetime.fromisoformat(value))
    except ValueError:
        return value
