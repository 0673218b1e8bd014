"""Event notices: create/edit/cancel events, publish them to opted-in residents, remind the day before.

Owns: the life of an ``events`` row (draft → scheduled → sent, or cancelled), who an event
is for (``event_matches``: active users with ``opt_events`` whose segment/area/language
are in the event's target lists — an empty list means everyone), composing the notice in a
resident's language (their language, else en, else ja, else any), the jobs
``publish_event(event_id)``, ``remind_event(event_id)`` and the recurring safety net
``sweep_events()``, and the live answer of ``events.upcoming``.

Scheduling: an event's sends are APScheduler jobs ``event:<id>:publish`` and
``event:<id>:remind`` in the shared job store (scheduler.runner.schedule_job/cancel_job),
(re)written by ``sync_event_jobs`` after the change is committed. Jobs never trust their
own existence: each one claims the event with a conditional UPDATE (status/time checked
in the database) in the same transaction as its outbox rows, so a cancelled or edited
event never sends stale text, a job that fires twice sends once, and ``sweep_events``
(every few minutes) publishes whatever a missed or lost job left behind.

Quiet hours (users.quiet_start/quiet_end) defer a notice to their end (outbox send_after).

Must not import the conversation core, channel adapters, FastAPI or platform SDKs.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.events_models import (
    EVENT_CANCELLED,
    EVENT_DRAFT,
    EVENT_SCHEDULED,
    EVENT_SENT,
    Event,
)
from bot.db.models import OUTBOX_PENDING, STATUS_ACTIVE, OutboxMessage, User, utcnow
from delivery.outbox import enqueue
from knowledge.schema import LANGUAGES
from scheduler.runner import JobContext, cancel_job, need_context, schedule_job

log = logging.getLogger("kurashi.events")

TOKYO = ZoneInfo("Asia/Tokyo")
FALLBACK_LANGUAGES = ("en", "ja")
#: Channels nobody can be pushed to (the local CLI chat).
NO_PUSH_CHANNELS = frozenset({"cli"})
#: The day-before reminder goes out at this local (Asia/Tokyo) time.
REMIND_AT_LOCAL = time(18, 0)
#: How many events the ``events.upcoming`` answer lists.
UPCOMING_LIMIT = 5
OUTBOX_KIND_NOTICE = "event"
OUTBOX_KIND_REMINDER = "event_reminder"
SEGMENTS = ("trainee", "student", "other")


# --- input ---------------------------------------------------------------------------------


class EventError(ValueError):
    """An event definition or change that cannot be accepted (message for operators)."""


def _aware(value: Any, name: str) -> datetime | None:
    """A datetime from YAML/ISO text; naive times are Asia/Tokyo (operators write local time)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise EventError(f"{name}: {value!r} is not an ISO date-time (2026-12-05T10:00)") from None
    if not isinstance(value, datetime):
        raise EventError(f"{name}: expected a date-time, got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=TOKYO)
    return value.astimezone(UTC)


def _texts(value: Any, name: str, *, required: bool) -> dict[str, str]:
    if value is None:
        value = {}
    if isinstance(value, str):
        value = {"ja": value}
    if not isinstance(value, Mapping):
        raise EventError(f"{name}: expected a mapping language -> text")
    out = {str(k): str(v).strip() for k, v in value.items() if v is not None and str(v).strip()}
    unknown = sorted(set(out) - set(LANGUAGES))
    if unknown:
        raise EventError(f"{name}: unknown language code(s) {', '.join(unknown)} (use {', '.join(LANGUAGES)})")
    if required and not out:
        raise EventError(f"{name}: at least one language is required (ja and en recommended)")
    if out and not (set(out) & set(FALLBACK_LANGUAGES)):
        raise EventError(f"{name}: needs ja or en too (the fallback for residents of other languages)")
    return out


def _str_list(value: Any, name: str, allowed: Sequence[str] | None = None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise EventError(f"{name}: expected a list")
    out = [str(v).strip() for v in value if str(v).strip()]
    if allowed is not None:
        bad = sorted(set(out) - set(allowed))
        if bad:
            raise EventError(f"{name}: unknown value(s) {', '.join(bad)} (allowed: {', '.join(allowed)})")
    return list(dict.fromkeys(out))


@dataclass
class EventSpec:
    """A validated event definition (from YAML, the CLI or the console)."""

    title: dict[str, str]
    body: dict[str, str]
    starts_at: datetime
    place: str | None = None
    map_url: str | None = None
    segments: list[str] = field(default_factory=list)
    areas: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    publish_at: datetime | None = None     # None: publish now
    remind_day_before: bool = False
    draft: bool = False

    FIELDS = ("title", "body", "starts_at", "place", "map_url", "segments", "areas", "languages",
              "publish_at", "remind_day_before", "draft")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, districts: Sequence[str] | None = None) -> EventSpec:
        """Validate a mapping (YAML). ``districts``: the allowed area keys (knowledge district list)."""
        if not isinstance(data, Mapping):
            raise EventError("an event must be a mapping")
        unknown = sorted(set(data) - set(cls.FIELDS))
        if unknown:
            raise EventError(f"unknown field(s) {', '.join(unknown)} (allowed: {', '.join(cls.FIELDS)})")
        starts_at = _aware(data.get("starts_at"), "starts_at")
        if starts_at is None:
            raise EventError("starts_at is required")
        map_url = (str(data["map_url"]).strip() or None) if data.get("map_url") else None
        if map_url and not map_url.startswith(("https://", "http://")):
            raise EventError(f"map_url: {map_url!r} is not an http(s) URL")
        return cls(
            title=_texts(data.get("title"), "title", required=True),
            body=_texts(data.get("body"), "body", required=False),
            starts_at=starts_at,
            place=(str(data["place"]).strip() or None) if data.get("place") else None,
            map_url=map_url,
            segments=_str_list(data.get("segments"), "segments", SEGMENTS),
            areas=_str_list(data.get("areas"), "areas", list(districts) if districts else None),
            languages=_str_list(data.get("languages"), "languages", LANGUAGES),
            publish_at=_aware(data.get("publish_at"), "publish_at"),
            remind_day_before=bool(data.get("remind_day_before", False)),
            draft=bool(data.get("draft", False)),
        )


# --- targeting and composing ----------------------------------------------------------------


def event_matches(event: Event, *, segment: str | None, area: str | None, language: str | None) -> bool:
    """Whether a resident with these preferences is in the event's targets (empty list = all).

    A resident who did not tell their segment/area is not in an event aimed at particular
    segments/areas: the notice would likely not concern them.
    """
    if event.segments and segment not in event.segments:
        return False
    if event.areas and area not in event.areas:
        return False
    return not (event.languages and (language or FALLBACK_LANGUAGES[0]) not in event.languages)


def pick_language(texts: Mapping[str, str], lang: str | None) -> str:
    """The language of ``texts`` to show a resident of ``lang``: theirs, else en, else ja, else any."""
    for candidate in (lang, *FALLBACK_LANGUAGES):
        if candidate and texts.get(candidate):
            return candidate
    return next(iter(texts), FALLBACK_LANGUAGES[0])


def format_when(texts: Any, moment: datetime, lang: str, *, with_time: bool = True) -> str:
    """The day residents read, never a numeric day/month (``knowledge.dates``): weekday, day
    and month in words or the language's own order, and with the time "10:00 (Japan Time)"."""
    from knowledge.dates import format_date, format_datetime

    return format_datetime(moment, lang) if with_time else format_date(moment, lang)


def _texts_of(kb: Any) -> Any:
    from bot.conversation.locale import Texts  # message look-up only (no engine import)

    return Texts(kb)


def compose_event(texts: Any, event: Event, lang: str, *, reminder: bool = False, head: bool = True) -> str:
    """The notice (or reminder) of ``event`` for a resident whose language is ``lang``.

    System parts (headings, "When:") are in ``lang``; the event's title/body in the best
    language the event has (``pick_language``).
    """
    title_lang = pick_language(event.title, lang)
    lines: list[str] = []
    if head:
        lines.append(texts.t("events.reminder_head" if reminder else "events.notice_head", lang))
    lines.append(f"【{event.title.get(title_lang, '')}】")
    lines.append(texts.t("events.when", lang, when=format_when(texts, event.starts_at, lang)))
    if event.place:
        lines.append(texts.t("events.place", lang, place=event.place))
    if event.map_url:
        lines.append(texts.t("events.map", lang, url=event.map_url))
    body = event.body.get(pick_language(event.body, lang), "") if event.body else ""
    if body:
        lines += ["", body]
    return "\n".join(lines)


def _quiet_until(now: datetime, start: str | None, end: str | None) -> datetime | None:
    from scheduler.alerts import quiet_until  # one definition of quiet hours (alerts engineer's)

    return quiet_until(now, start, end)


async def _targets(session: AsyncSession, event: Event) -> list[Any]:
    query = (
        select(User.id, User.channel, User.platform_user_id, User.language, User.area, User.segment,
               User.quiet_start, User.quiet_end)
        .where(User.status == STATUS_ACTIVE, User.opt_events.is_(True), User.channel.not_in(NO_PUSH_CHANNELS))
        .order_by(User.id)
    )
    if event.areas:
        query = query.where(User.area.in_(list(event.areas)))
    if event.segments:
        query = query.where(User.segment.in_(list(event.segments)))
    rows = (await session.execute(query)).all()
    return [r for r in rows if event_matches(event, segment=r.segment, area=r.area, language=r.language)]


async def _queue(session: AsyncSession, kb: Any, event: Event, *, reminder: bool, now: datetime) -> int:
    """Outbox rows of the notice/reminder for every targeted user; returns how many users."""
    texts = _texts_of(kb)
    rows = await _targets(session, event)
    groups: dict[tuple[str, str, datetime], list[str]] = defaultdict(list)
    for row in rows:
        lang = row.language or FALLBACK_LANGUAGES[0]
        send_after = _quiet_until(now, row.quiet_start, row.quiet_end) or now
        groups[(row.channel, lang, send_after)].append(row.platform_user_id)
    kind = OUTBOX_KIND_REMINDER if reminder else OUTBOX_KIND_NOTICE
    composed: dict[str, str] = {}
    for (channel, lang, send_after), recipients in sorted(groups.items(), key=lambda g: (g[0][2], g[0][0], g[0][1])):
        if lang not in composed:
            composed[lang] = compose_event(texts, event, lang, reminder=reminder)
        await enqueue(session, channel=channel, recipients=recipients, replies=[{"text": composed[lang]}],
                      kind=kind, ref=f"event:{event.id}", send_after=send_after, now=now)
    return len(rows)


# --- times ---------------------------------------------------------------------------------


def remind_time(event: Event) -> datetime | None:
    """When the day-before reminder goes out (18:00 Asia/Tokyo the day before), or None."""
    if not event.remind_day_before:
        return None
    day_before = event.starts_at.astimezone(TOKYO).date() - timedelta(days=1)
    return datetime.combine(day_before, REMIND_AT_LOCAL, tzinfo=TOKYO).astimezone(UTC)


def publish_time(event: Event) -> datetime:
    return event.publish_at or event.created_at


# --- create / edit / cancel ---------------------------------------------------------------


async def create_event(session: AsyncSession, spec: EventSpec, *, created_by: str | None = None,
                       now: datetime | None = None) -> Event:
    """Insert an event (scheduled, or draft when ``spec.draft``); does not commit.

    After the commit call ``sync_event_jobs(event.id, …)`` so its jobs are written.
    """
    now = now or utcnow()
    if spec.starts_at <= now:
        raise EventError("starts_at is in the past")
    if spec.publish_at is not None and spec.publish_at >= spec.starts_at:
        raise EventError("publish_at must be before starts_at")
    event = Event(title=spec.title, body=spec.body, starts_at=spec.starts_at, place=spec.place,
                  map_url=spec.map_url, segments=spec.segments, areas=spec.areas, languages=spec.languages,
                  publish_at=spec.publish_at or now, remind_day_before=spec.remind_day_before,
                  status=EVENT_DRAFT if spec.draft else EVENT_SCHEDULED, created_by=created_by,
                  created_at=now, updated_at=now)
    session.add(event)
    await session.flush()
    return event


EDITABLE = ("title", "body", "starts_at", "place", "map_url", "segments", "areas", "languages",
            "publish_at", "remind_day_before")


async def update_event(session: AsyncSession, event_id: int, spec: EventSpec, *,
                       now: datetime | None = None) -> Event:
    """Replace an event's fields (before or after publishing); does not commit.

    Before the notice is sent the new text/targets/publish time are what will be sent
    (jobs read the row when they run); after it, the change affects the reminder and the
    ``events.upcoming`` answer. ``spec.draft`` moves a draft to scheduled (False) or back
    (True, only before publishing). Call ``sync_event_jobs`` after the commit.
    """
    now = now or utcnow()
    event = await session.get(Event, event_id, with_for_update=True)
    if event is None:
        raise EventError(f"no event {event_id}")
    if event.status == EVENT_CANCELLED:
        raise EventError(f"event {event_id} is cancelled")
    if spec.publish_at is not None and spec.publish_at >= spec.starts_at:
        raise EventError("publish_at must be before starts_at")
    for name in EDITABLE:
        value = getattr(spec, name)
        if name == "publish_at":
            if event.status == EVENT_SENT:
                continue       # already published: the time it was published stays
            value = value or now
        setattr(event, name, value)
    if event.status != EVENT_SENT:
        event.status = EVENT_DRAFT if spec.draft else EVENT_SCHEDULED
    # An event moved to a later day gets its reminder again for the new day.
    rt = remind_time(event)
    if event.reminded_at is not None and rt is not None and rt > event.reminded_at:
        event.reminded_at = None
    event.updated_at = now
    return event


async def cancel_event(session: AsyncSession, event_id: int, *, now: datetime | None = None) -> tuple[Event, int]:
    """Cancel an event; queued notices not yet sent are withdrawn. Returns (event, withdrawn rows).

    Does not commit; call ``sync_event_jobs`` after (it removes the jobs). Jobs that fire
    anyway find the event cancelled and send nothing.
    """
    now = now or utcnow()
    event = await session.get(Event, event_id, with_for_update=True)
    if event is None:
        raise EventError(f"no event {event_id}")
    event.status = EVENT_CANCELLED
    event.updated_at = now
    # Rows a relay has leased may already be on their way; only untouched rows are withdrawn.
    result = await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.ref == f"event:{event_id}", OutboxMessage.status == OUTBOX_PENDING,
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
            OutboxMessage.attempts == 0,
        )
    )
    return event, int(result.rowcount or 0)


async def get_event(session: AsyncSession, event_id: int) -> Event | None:
    return await session.get(Event, event_id)


async def list_events(session: AsyncSession, *, include_past: bool = False,
                      now: datetime | None = None) -> list[Event]:
    query = select(Event).order_by(Event.starts_at, Event.id)
    if not include_past:
        query = query.where(Event.starts_at > (now or utcnow()))
    return list((await session.execute(query)).scalars())


# --- jobs ---------------------------------------------------------------------------------


def publish_job_id(event_id: int) -> str:
    return f"event:{event_id}:publish"


def remind_job_id(event_id: int) -> str:
    return f"event:{event_id}:remind"


async def sync_event_jobs(event_id: int, *, database_url: str, sessionmaker: Any) -> dict[str, datetime | None]:
    """Make the job store match the event row: publish/remind jobs added, moved or removed.

    Call after committing a change. If this fails (job store unreachable) nothing is lost:
    ``sweep_events`` publishes due events anyway.
    """
    async with sessionmaker() as session:
        event = await session.get(Event, event_id)
    wanted: dict[str, datetime | None] = {"publish": None, "remind": None}
    if event is not None and event.status == EVENT_SCHEDULED:
        wanted["publish"] = publish_time(event)
    if event is not None and event.status in (EVENT_SCHEDULED, EVENT_SENT) and event.reminded_at is None:
        wanted["remind"] = remind_time(event)
        if wanted["remind"] is not None and wanted["remind"] >= event.starts_at:
            wanted["remind"] = None
    for kind, job_id, func in (("publish", publish_job_id(event_id), "scheduler.events:publish_event"),
                               ("remind", remind_job_id(event_id), "scheduler.events:remind_event")):
        run_at = wanted[kind]
        if run_at is None:
            await cancel_job(job_id, database_url=database_url)
        else:
            await schedule_job(job_id, func, run_at, [event_id], database_url=database_url)
    return wanted


async def _publish(session: AsyncSession, kb: Any, event_id: int, now: datetime) -> int | None:
    """Claim and queue one event's notice; None when it is not due (cancelled, sent, draft, later, over)."""
    claimed = await session.execute(
        update(Event)
        .where(Event.id == event_id, Event.status == EVENT_SCHEDULED,
               or_(Event.publish_at.is_(None), Event.publish_at <= now), Event.starts_at > now)
        .values(status=EVENT_SENT, published_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return None
    event = await session.get(Event, event_id, populate_existing=True)
    assert event is not None
    return await _queue(session, kb, event, reminder=False, now=now)


async def _remind(session: AsyncSession, kb: Any, event_id: int, now: datetime) -> int | None:
    event = await session.get(Event, event_id)
    if event is None or event.status != EVENT_SENT or not event.remind_day_before or event.reminded_at is not None:
        return None
    due = remind_time(event)
    if due is None or due > now or event.starts_at <= now:
        return None
    claimed = await session.execute(
        update(Event).where(Event.id == event_id, Event.status == EVENT_SENT, Event.reminded_at.is_(None))
        .values(reminded_at=now).execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return None
    return await _queue(session, kb, event, reminder=True, now=now)


def _kb(ctx: JobContext) -> Any:
    if ctx.kb is None:
        from knowledge.loader import load_knowledge

        ctx.kb = load_knowledge(getattr(ctx.settings, "knowledge_dir", None))
    return ctx.kb


async def publish_event(event_id: int, *, ctx: JobContext | None = None) -> int | None:
    """Job ``event:<id>:publish``: queue the notice for every targeted resident (once).

    Returns the number of residents, or None when the event is not due (cancelled, draft,
    already sent, publish time moved later, or the event is over).
    """
    ctx = need_context(ctx)
    now = ctx.now()
    async with ctx.sessionmaker() as session, session.begin():
        count = await _publish(session, _kb(ctx), int(event_id), now)
    if count is not None:
        log.info("event published", extra={"event": event_id, "recipients": count})
        ctx.wake_sender()
    return count


async def remind_event(event_id: int, *, ctx: JobContext | None = None) -> int | None:
    """Job ``event:<id>:remind``: the day-before reminder (once; only for published events)."""
    ctx = need_context(ctx)
    now = ctx.now()
    async with ctx.sessionmaker() as session, session.begin():
        count = await _remind(session, _kb(ctx), int(event_id), now)
    if count is not None:
        log.info("event reminder queued", extra={"event": event_id, "recipients": count})
        ctx.wake_sender()
    return count


async def sweep_events(*, ctx: JobContext | None = None) -> dict[str, int]:
    """Recurring safety net: publish/remind every due event a lost or missed job left behind."""
    ctx = need_context(ctx)
    now = ctx.now()
    async with ctx.sessionmaker() as session:
        due_publish = list((await session.execute(
            select(Event.id).where(Event.status == EVENT_SCHEDULED, Event.publish_at <= now, Event.starts_at > now)
        )).scalars())
        due_remind = [e.id for e in (await session.execute(
            select(Event).where(Event.status == EVENT_SENT, Event.remind_day_before.is_(True),
                                Event.reminded_at.is_(None), Event.starts_at > now)
        )).scalars() if (remind_time(e) or now + timedelta(days=1)) <= now]
    stats = {"published": 0, "reminded": 0}
    for event_id in due_publish:
        if await publish_event(event_id, ctx=ctx) is not None:
            stats["published"] += 1
    for event_id in due_remind:
        if await remind_event(event_id, ctx=ctx) is not None:
            stats["reminded"] += 1
    return stats


# --- the events.upcoming answer --------------------------------------------------------------


async def upcoming_events(session: AsyncSession, user: Any, now: datetime, limit: int = UPCOMING_LIMIT) -> list[Event]:
    """Announced events still to come that concern ``user`` (targets), soonest first."""
    query = (
        select(Event)
        .where(Event.starts_at > now,
               or_(Event.status == EVENT_SENT,
                   and_(Event.status == EVENT_SCHEDULED, Event.publish_at <= now)))
        .order_by(Event.starts_at, Event.id)
    )
    events = (await session.execute(query)).scalars()
    out = [e for e in events if event_matches(e, segment=getattr(user, "segment", None),
                                              area=getattr(user, "area", None),
                                              language=getattr(user, "language", None))]
    return out[:limit]


def make_upcoming_answer(kb: Any, clock: Any) -> Any:
    """The ``events.upcoming`` dynamic answer: (session, user, lang) -> text."""
    texts = _texts_of(kb)

    async def answer_upcoming_events(session: AsyncSession, user: Any, lang: str) -> str:
        events = await upcoming_events(session, user, clock())
        if not events:
            return texts.t("events.none", lang)
        parts = [texts.t("events.upcoming_head", lang)]
        parts += [compose_event(texts, e, lang, head=False) for e in events]
        return "\n\n".join(parts)

    return answer_upcoming_events


def register_answers(engine: Any) -> None:
    """Plug ``events.upcoming`` into a ConversationEngine (its dynamic_answers registry)."""
    engine.dynamic_answers["events.upcoming"] = make_upcoming_answer(engine.kb, engine.clock)
