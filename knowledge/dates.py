"""Dates and times residents read, unambiguous in each language.

"12/08" is 12 August to a Vietnamese reader and 8 December to a Japanese one, so nothing
shown to residents uses numeric day/month: dates have the weekday and the month in words
or in the language's own order (CLDR "full" date patterns through Babel), times are
24-hour, and a time says it is Japan time. ``kurashi kb check`` flags numeric dates in
the knowledge base (knowledge/textcheck.py).

    format_date(date(2026, 12, 8), "vi")           -> "Thứ Ba, 8 tháng 12, 2026"
    format_datetime(dt, "en")                      -> "Tuesday, December 8, 2026, 18:30 (Japan Time)"

Pure functions; imports nothing from bot/, intents/ or scheduler/.
"""
from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as _babel_date
from babel.dates import get_timezone_name

TOKYO = ZoneInfo("Asia/Tokyo")
#: Project language code -> CLDR locale (Tagalog is published as Filipino).
_LOCALES = {"tl": "fil"}
#: Languages that write a bracketed note with full-width brackets and no comma.
_FULLWIDTH = {"ja", "zh"}


@lru_cache(maxsize=32)
def _locale(lang: str | None) -> Locale:
    code = _LOCALES.get(lang or "en", lang or "en")
    try:
        return Locale.parse(code)
    except (ValueError, LookupError, UnknownLocaleError):
        return Locale.parse("en")


def _local(moment: datetime | date) -> datetime | date:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("a resident-facing time must be timezone-aware")
        return moment.astimezone(TOKYO)
    return moment


def format_date(day: date | datetime, lang: str | None) -> str:
    """The weekday, day, month in words (or the language's own order) and year, in Japan:
    ``2026年12月8日火曜日``, ``Tuesday, December 8, 2026``, ``Thứ Ba, 8 tháng 12, 2026``."""
    local = _local(day)
    return _babel_date(local.date() if isinstance(local, datetime) else local, "full", locale=_locale(lang))


def format_time(moment: datetime, lang: str | None = None) -> str:
    """24-hour Japan time: ``18:30``."""
    return f"{_local(moment):%H:%M}"


def japan_time_label(lang: str | None) -> str:
    """"Japan Time" in ``lang`` (CLDR): 日本時間, Giờ Nhật Bản, 일본 시간 …"""
    return get_timezone_name(TOKYO, "generic", locale=_locale(lang))


def format_datetime(moment: datetime, lang: str | None, *, zone: bool = True) -> str:
    """Date (as ``format_date``), 24-hour time and — unless ``zone=False`` because the
    sentence around it says so already — "(Japan Time)" in the language."""
    separator = " " if lang in _FULLWIDTH or lang == "ko" else ", "
    text = f"{format_date(moment, lang)}{separator}{format_time(moment)}"
    if not zone:
        return text
    label = japan_time_label(lang)
    return f"{text}（{label}）" if lang in _FULLWIDTH else f"{text} ({label})"
