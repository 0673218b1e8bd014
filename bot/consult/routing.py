"""Routing rules for consultations: which organisation takes a case, when it is open, when
an answer is due. Pure functions over ``knowledge.schema.PartnersFile`` and an instant.

Owns: opening-hours arithmetic in Asia/Tokyo (weekday spans, per-language spans, Japanese
public holidays from the ``holidays`` package), ``route`` (first matching rule, else the
default), ``due_at`` (the SLA promise, counted in opening hours), and the look-ups of
partner organisations in the knowledge base (``organisations``, ``partner_name``,
``canned_replies``). No I/O, no database, no clock of its own: callers
pass ``at`` (timezone-aware). Must not import the conversation core, the database or
channel adapters.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from knowledge.schema import WEEKDAYS, Partner, PartnersFile

TOKYO = ZoneInfo("Asia/Tokyo")
#: How far ahead ``next_open`` looks (Golden Week plus a weekend fits easily).
LOOKAHEAD_DAYS = 14


@lru_cache(maxsize=16)
def _japan_holidays(year: int) -> frozenset[date]:
    import holidays  # the package computes the statutory holidays (振替休日 included)

    return frozenset(holidays.country_holidays("JP", years=year).keys())


def is_holiday(day: date) -> bool:
    """A Japanese public holiday (国民の祝日, substitute holidays included)."""
    return day in _japan_holidays(day.year)


def _hours_for(partner: Partner, language: str | None) -> dict[str, str] | None:
    if language and language in partner.language_hours:
        return partner.language_hours[language]
    return partner.hours


def _span(text: str) -> tuple[time, time]:
    start, end = text.split("-")
    h1, m1 = (int(x) for x in start.split(":"))
    h2, m2 = (int(x) for x in end.split(":"))
    return time(h1 % 24, m1), (time(23, 59, 59) if h2 == 24 else time(h2, m2))


def hours_known(partner: Partner, language: str | None = None) -> bool:
    return _hours_for(partner, language) is not None


def is_open(partner: Partner, at: datetime, language: str | None = None) -> bool:
    """Whether the organisation is open at ``at`` (for this language's line, if it has one).

    Unknown hours count as open: the organisation takes messages at any time.
    """
    hours = _hours_for(partner, language)
    if hours is None:
        return True
    local = at.astimezone(TOKYO)
    if partner.closed_on_holidays and is_holiday(local.date()):
        return False
    span = hours.get(WEEKDAYS[local.weekday()])
    if span is None:
        return False
    start, end = _span(span)
    return start <= local.time() < end


def next_open(partner: Partner, at: datetime, language: str | None = None) -> datetime | None:
    """``at`` when open now, else the next opening instant (UTC-aware, in Tokyo tz); None when
    the hours are unknown or nothing opens within ``LOOKAHEAD_DAYS``."""
    hours = _hours_for(partner, language)
    if hours is None:
        return None
    if is_open(partner, at, language):
        return at
    local = at.astimezone(TOKYO)
    for offset in range(LOOKAHEAD_DAYS + 1):
        day = local.date() + timedelta(days=offset)
        if partner.closed_on_holidays and is_holiday(day):
            continue
        span = hours.get(WEEKDAYS[day.weekday()])
        if span is None:
            continue
        start, _end = _span(span)
        candidate = datetime.combine(day, start, tzinfo=TOKYO)
        if candidate > local:
            return candidate
    return None


#: How far ahead ``due_at`` walks through opening hours before giving up (a sparse weekly
#: line, e.g. two afternoons a week, needs about a month for 24 opening hours).
DUE_LOOKAHEAD_DAYS = 120
#: Opening hours within which an organisation answers when the deployment says nothing.
DEFAULT_RESPONSE_HOURS = 48
MAX_RESPONSE_HOURS = 24 * 14


@dataclass(frozen=True)
class ResponseHours:
    """How many opening hours each organisation takes to answer: a deployment setting
    (``CONSULT_RESPONSE_HOURS``, e.g. ``"48,yfrcc=24,otit=24"``) agreed between the operator
    and the organisation — not a fact of the knowledge base."""

    default: int = DEFAULT_RESPONSE_HOURS
    by_org: tuple[tuple[str, int], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> ResponseHours:
        """``"48"``, ``"yfrcc=24"``, ``"48, yfrcc=24, otit=24"``; ValueError when malformed."""
        default, by_org = DEFAULT_RESPONSE_HOURS, {}
        for part in (text or "").split(","):
            part = part.strip()
            if not part:
                continue
            org, _, value = part.rpartition("=")
            try:
                hours = int(value)
            except ValueError:
                raise ValueError(f"{part!r}: write hours as a whole number, e.g. 48 or yfrcc=24") from None
            if not 1 <= hours <= MAX_RESPONSE_HOURS:
                raise ValueError(f"{part!r}: hours must be between 1 and {MAX_RESPONSE_HOURS}")
            if org:
                by_org[org.strip()] = hours
            else:
                default = hours
        return cls(default, tuple(sorted(by_org.items())))

    def of(self, org: str) -> int:
        return dict(self.by_org).get(org, self.default)


_response_hours = ResponseHours()


def configure_response_hours(value: ResponseHours | str | None) -> ResponseHours:
    """Set the deployment's response hours (``bot.services`` does it from the settings)."""
    global _response_hours
    _response_hours = value if isinstance(value, ResponseHours) else ResponseHours.parse(value)
    return _response_hours


def response_hours(org: str) -> int:
    """Opening hours within which ``org`` answers a consultation (deployment setting)."""
    return _response_hours.of(org)


def due_at(partner: Partner, at: datetime, language: str | None = None, *,
           hours_to_answer: int = DEFAULT_RESPONSE_HOURS) -> datetime:
    """When the first answer is promised: ``hours_to_answer`` (the deployment's
    ``response_hours(org)``) of *opening* time from ``at`` (business hours in Asia/Tokyo for
    this language's line, skipping closed weekdays and — when ``closed_on_holidays`` —
    Japanese public holidays). Unknown hours: wall-clock hours (the organisation takes
    messages at any time)."""
    hours = _hours_for(partner, language)
    remaining = timedelta(hours=hours_to_answer)
    if hours is None:
        return at + remaining
    local = at.astimezone(TOKYO)
    for offset in range(DUE_LOOKAHEAD_DAYS + 1):
        day = local.date() + timedelta(days=offset)
        if partner.closed_on_holidays and is_holiday(day):
            continue
        span = hours.get(WEEKDAYS[day.weekday()])
        if span is None:
            continue
        start_t, end_t = _span(span)
        start = datetime.combine(day, start_t, tzinfo=TOKYO)
        end = datetime.combine(day, end_t, tzinfo=TOKYO)
        if end_t == time(23, 59, 59):   # "-24:00": the span runs to midnight
            end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=TOKYO)
        start = max(start, local)
        if start >= end:
            continue
        if end - start >= remaining:
            return start + remaining
        remaining -= end - start
    # Nothing (enough) opens within the look-ahead: fall back to the wall clock.
    return at + timedelta(hours=hours_to_answer)


def depends_on_segment(partners: PartnersFile, topic: str) -> bool:
    """Whether some rule for ``topic`` looks at the resident's segment (trainee, student…):
    then the flow asks for it once when it is unknown."""
    for rule in partners.rules:
        partner = partners.partners.get(rule.org)
        if partner is None or topic not in partner.topics:
            continue
        if rule.topics and topic not in rule.topics:
            continue
        if rule.segments and "all" not in rule.segments:
            return True
    return False


@dataclass(frozen=True)
class Route:
    org: str
    partner: Partner
    rule: int | None          # index of the rule that matched; None = the default
    why: str


def route(partners: PartnersFile, topic: str, segment: str | None, language: str | None,
          at: datetime, *, exclude: frozenset[str] = frozenset()) -> Route:
    """Pick one organisation for (topic, segment, language) at instant ``at``.

    Rules are tried in order; a rule matches when each of its non-empty lists contains the
    value (segment "all" in a rule matches anyone; an unknown segment matches only rules
    without segments), the organisation takes the topic, and — for ``when_open`` rules —
    the organisation is open now for that language. ``exclude`` skips organisations (a
    transfer never routes back to where the case came from). No rule → the default.
    """
    for index, rule in enumerate(partners.rules):
        partner = partners.partners.get(rule.org)
        if partner is None or rule.org in exclude:
            continue
        if rule.topics and topic not in rule.topics:
            continue
        if topic not in partner.topics:
            continue
        if rule.segments and "all" not in rule.segments and (segment or "") not in rule.segments:
            continue
        if rule.languages and (language or "") not in rule.languages:
            continue
        if rule.when_open and not is_open(partner, at, language):
            continue
        return Route(rule.org, partner, index, rule.why or f"rule {index + 1}")
    return Route(partners.default, partners.partners[partners.default], None, "default")


# --------------------------------------------------------------------------- knowledge look-ups

def partner_name(kb: Any, org: str, lang: str | None) -> str:
    """The organisation's name in ``lang`` (fallback en, ja; the key itself if unknown)."""
    partners = getattr(kb, "partners", None)
    partner = partners.partners.get(org) if partners is not None else None
    if partner is None:
        return org
    for code in (lang, "en", "ja"):
        if code and partner.name.get(code):
            return partner.name[code]
    return org


def organisations(kb: Any) -> dict[str, Any]:
    """Every partner organisation (key → knowledge.schema.Partner)."""
    partners = getattr(kb, "partners", None)
    return dict(partners.partners) if partners is not None else {}


def canned_replies(kb: Any, language: str) -> dict[str, str]:
    """Canned staff replies (key → text) in ``language`` (fallback en) for the reply box."""
    partners = getattr(kb, "partners", None)
    out: dict[str, str] = {}
    for key, texts in (partners.canned_replies if partners is not None else {}).items():
        text = texts.get(language) or texts.get("en") or texts.get("ja")
        if text:
            out[key] = text
    return out
