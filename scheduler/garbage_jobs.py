"""Garbage-day reminders and the live garbage answers (next collection days, where an item goes).

Owns: the recurring job ``send_garbage_reminders()`` (every few minutes: residents with
``opt_garbage`` whose ``garbage_time`` (Asia/Tokyo) has just come get one push listing the
categories collected on their area's next collection day — the evening before for evening
times, the same morning for morning times (before noon) — in their language with the
Japanese category name as printed on the bags; each (user, collection date) is recorded in
``garbage_reminders_sent`` in the same transaction as the outbox rows, so never twice), and
the dynamic answers of ``garbage.collection_day`` (the resident's area's next days per
category) and ``garbage.sorting`` (item look-up in target.csv → category + notice).

Calendars come from the knowledge base (``kb.garbage``, knowledge/garbage.py); when the
calendar in use is a SAMPLE (calendar.yaml ``sample: true``) its days are invented, so no
reminder is ever sent from it (the job logs that once per process; the settings screen
tells residents reminders start when the city's calendar is loaded), and the collection-day
answer leads with the disclaimer (message ``garbage.sample_note``) before any date. ``users.area`` (district key) maps to a calendar area
through calendar.yaml ``districts``; translations of category names beyond the calendar's
own languages come from calendar.yaml ``category_labels`` (label → {lang: name}).

The reminder goes out at the time the resident chose, also inside their quiet hours (they
picked that time themselves).

Must not import the conversation core, channel adapters, FastAPI or platform SDKs.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.events_models import GarbageReminderSent
from bot.db.models import STATUS_ACTIVE, User
from delivery.outbox import enqueue
from knowledge.garbage import GarbageSet, Item, city_calendar
from scheduler.events import format_when
from scheduler.runner import JobContext, need_context

log = logging.getLogger("kurashi.garbage")

TOKYO = ZoneInfo("Asia/Tokyo")
NO_PUSH_CHANNELS = frozenset({"cli"})
DEFAULT_TIME = time(19, 0)
#: A reminder is sent from the chosen time until this much later (a scheduler that was down
#: for longer does not wake people with yesterday's evening reminder at midnight).
SEND_WINDOW = timedelta(hours=3)
#: Times before noon remind on the collection day itself; later times the evening before.
MORNING_BEFORE = time(12, 0)
OUTBOX_KIND = "garbage_reminder"
#: Days listed per category in the garbage.collection_day answer.
NEXT_DAYS = 2
#: The garbage.sorting look-up shows an item only from this fuzzy score (0-100) up.
ITEM_MIN_SCORE = 85.0


#: Sample calendars already reported by the reminder job (log once per process, not every run).
_SAMPLE_LOGGED: set[str] = set()


def _texts_of(kb: Any) -> Any:
    from bot.conversation.locale import Texts  # message look-up only (no engine import)

    return Texts(kb)


def calendar_of(kb: Any) -> GarbageSet | None:
    """The calendar residents' answers use (a real one when installed, else the sample)."""
    return city_calendar(getattr(kb, "garbage", None) or {})


def _parse_time(value: str | None) -> time:
    try:
        hours, minutes = (value or "").split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        return DEFAULT_TIME


def reminder_date(garbage_time: str | None, now: datetime) -> tuple[date, bool] | None:
    """(collection date, is_today) when a reminder at ``garbage_time`` is due at ``now``, else None."""
    chosen = _parse_time(garbage_time)
    local = now.astimezone(TOKYO)
    due = datetime.combine(local.date(), chosen, tzinfo=TOKYO)
    if not (due <= local < due + SEND_WINDOW):
        return None
    if chosen < MORNING_BEFORE:
        return local.date(), True
    return local.date() + timedelta(days=1), False


def _bilingual(local: str | None, ja: str) -> str:
    """``local（ja）``; just ``ja`` when there is no other name (or it already contains ja)."""
    if not local or local == ja:
        return ja
    return local if ja in local else f"{local}（{ja}）"


def _extra_label(garbage: GarbageSet, ja: str, lang: str) -> str | None:
    return ((garbage.meta.get("category_labels") or {}).get(ja) or {}).get(lang)


def _due_times(now: datetime) -> Any:
    """SQL filter: garbage_time ("HH:MM", zero-padded) within today's send window up to ``now``
    (string order = time order), so the job reads only the users it may remind now."""
    local = now.astimezone(TOKYO)
    hi = local.strftime("%H:%M")
    start = local - SEND_WINDOW
    if start.date() != local.date():
        return User.garbage_time <= hi       # the window began yesterday: only today's part counts
    return User.garbage_time.between(start.strftime("%H:%M"), hi)


def category_label(garbage: GarbageSet, label: str, lang: str) -> str:
    """A category's name for a resident of ``lang`` with the Japanese name as printed on the bags.

    ``label`` is any language's label of a description.csv category.
    """
    ja = garbage.category_in(label, "ja")
    if lang == "ja":
        return ja
    local = garbage.category_in(label, lang) if lang in garbage.calendars else None
    return _bilingual(local or _extra_label(garbage, ja, lang) or _english_label(garbage, ja), ja)


def _english_label(garbage: GarbageSet, ja: str) -> str | None:
    """The English name (the residents' fallback language), when the calendar has English data."""
    if "en" not in garbage.calendars:
        return None
    label = garbage.category_in(ja, "en")
    return None if label == ja else label


def collected_on(garbage: GarbageSet, area: str, day: date) -> list[str]:
    """Japanese labels of the categories collected in ``area`` on ``day`` (description order)."""
    calendar = garbage.primary
    out = []
    for label, schedule in calendar.area(area).schedules.items():
        if schedule.empty:
            continue
        if calendar.next_collections(area, label, day, 1) == [day]:
            out.append(label)
    return out


def compose_reminder(texts: Any, garbage: GarbageSet, categories: list[str], day: date, lang: str, *,
                     today: bool) -> str:
    lines = "\n".join(f"• {category_label(garbage, c, lang)}" for c in categories)
    when = format_when(texts, datetime.combine(day, time(12), tzinfo=TOKYO), lang, with_time=False)
    parts = [texts.t("garbage.reminder_today" if today else "garbage.reminder_tomorrow", lang,
                     date=when, categories=lines),
             texts.t("garbage.reminder_tip", lang)]
    if garbage.sample:
        parts.append(texts.t("garbage.sample_note", lang))
    return "\n\n".join(parts)


# --- the reminder job --------------------------------------------------------------------------


async def send_garbage_reminders(*, ctx: JobContext | None = None) -> dict[str, int]:
    """Recurring job: queue the garbage reminders that are due now (each user/date once)."""
    ctx = need_context(ctx)
    now = ctx.now()
    kb = ctx.kb
    if kb is None:
        from knowledge.loader import load_knowledge

        kb = ctx.kb = load_knowledge(getattr(ctx.settings, "knowledge_dir", None))
    garbage = calendar_of(kb)
    stats = {"due": 0, "queued": 0, "no_collection": 0, "no_area": 0, "sample": 0}
    if garbage is None:
        return stats
    if garbage.sample:
        # Invented days must never wake a resident up to put garbage out on the wrong day.
        stats["sample"] = 1
        if garbage.name not in _SAMPLE_LOGGED:
            _SAMPLE_LOGGED.add(garbage.name)
            log.warning("garbage reminders not sent: the calendar %r is a sample; install the city's "
                        "calendar (sample: false) to start them", garbage.name)
        return stats
    texts = _texts_of(kb)
    async with ctx.sessionmaker() as session, session.begin():
        rows = (await session.execute(
            select(User.id, User.channel, User.platform_user_id, User.language, User.area, User.garbage_time)
            .where(User.status == STATUS_ACTIVE, User.opt_garbage.is_(True),
                   User.channel.not_in(NO_PUSH_CHANNELS), _due_times(now))
            .order_by(User.id)
        )).all()
        collected: dict[tuple[str, date], list[str]] = {}
        due: list[tuple[Any, str, date, bool]] = []
        for row in rows:
            when = reminder_date(row.garbage_time, now)
            if when is None:
                continue
            stats["due"] += 1
            area = garbage.area_for(row.area)
            if area is None:
                stats["no_area"] += 1
                continue
            day, today = when
            if (area, day) not in collected:
                collected[(area, day)] = collected_on(garbage, area, day)
            if not collected[(area, day)]:
                stats["no_collection"] += 1
                continue
            due.append((row, area, day, today))
        if not due:
            return stats
        already = {(user_id, day) for user_id, day in (await session.execute(
            select(GarbageReminderSent.user_id, GarbageReminderSent.date)
            .where(GarbageReminderSent.user_id.in_([r.id for r, *_ in due]),
                   GarbageReminderSent.date.in_(sorted({d for _, _, d, _ in due})))
        )).all()}
        groups: dict[tuple[str, str, str, date, bool], list[Any]] = defaultdict(list)
        for row, area, day, today in due:
            if (row.id, day) in already:
                continue
            groups[(row.channel, row.language or "en", area, day, today)].append(row)
        records = []
        for (channel, lang, area, day, today), members in sorted(groups.items(), key=lambda g: g[0][:3]):
            text = compose_reminder(texts, garbage, collected[(area, day)], day, lang, today=today)
            await enqueue(session, channel=channel, recipients=[m.platform_user_id for m in members],
                          replies=[{"text": text}], kind=OUTBOX_KIND, ref=f"garbage:{day.isoformat()}", now=now)
            records += [{"user_id": m.id, "date": day, "sent_at": now} for m in members]
        if records:
            await session.execute(GarbageReminderSent.__table__.insert(), records)
        stats["queued"] = len(records)
    if stats["queued"]:
        log.info("garbage reminders queued", extra={"count": stats["queued"]})
        ctx.wake_sender()
    return stats


# --- dynamic answers ---------------------------------------------------------------------------


def make_collection_day_answer(kb: Any, clock: Any) -> Any:
    """The ``garbage.collection_day`` dynamic answer: the user's area's next days per category."""
    texts = _texts_of(kb)

    async def answer_collection_days(session: AsyncSession, user: Any, lang: str) -> str | None:
        garbage = calendar_of(kb)
        if garbage is None:
            return None
        area = garbage.area_for(getattr(user, "area", None))
        if area is None:
            return texts.t("garbage.area_unknown", lang)
        today = clock().astimezone(TOKYO).date()
        lines = []
        for label, days in garbage.primary.upcoming(area, today, NEXT_DAYS).items():
            if not days:
                continue
            # "; " between days: a day in words has commas of its own (Thursday, December 3, 2026)
            when = "; ".join(format_when(texts, datetime.combine(d, time(12), tzinfo=TOKYO), lang, with_time=False)
                             for d in days)
            lines.append(f"• {category_label(garbage, label, lang)}: {when}")
        if not lines:
            return None
        area_name = texts.district_name(user.area, lang) if user.area and texts.has(f"district.{user.area}") else None
        if not area_name:
            try:
                area_name = garbage.area_in(area, lang)
            except KeyError:
                area_name = area
        parts = [texts.t("garbage.next_head", lang, area=area_name) + "\n" + "\n".join(lines)]
        if garbage.sample:
            # The disclaimer comes first: a resident must read "sample" before any date.
            parts.insert(0, texts.t("garbage.sample_note", lang))
        return "\n\n".join(parts)

    return answer_collection_days


def _aligned(garbage: GarbageSet, item: Item, from_lang: str, to_lang: str) -> Item | None:
    """The same target.csv row in another language (rows of translations are in the same order)."""
    if from_lang == to_lang:
        return item
    source = garbage.calendars[from_lang].items if from_lang in garbage.calendars else []
    target = garbage.calendars[to_lang].items if to_lang in garbage.calendars else []
    if not source or len(source) != len(target):
        return None
    index = next((i for i, it in enumerate(source) if it is item), None)
    return target[index] if index is not None else None


def lookup_item(garbage: GarbageSet, query: str, lang: str) -> tuple[str, str, str] | None:
    """(item name, category name for ``lang`` with the Japanese name, notice) of the best
    match of ``query`` in target.csv, or None.

    Name and notice are in ``lang`` when the calendar has that language, else as found.
    """
    matches = [m for m in garbage.find_items(query, lang, limit=1) if m.score >= ITEM_MIN_SCORE]
    if not matches:
        return None
    match = matches[0]
    ja_item = _aligned(garbage, match.item, match.lang, "ja")
    local_item = _aligned(garbage, match.item, match.lang, lang)
    # Other languages read English (the residents' fallback) before Japanese.
    shown = local_item or ((ja_item or match.item) if lang == "ja"
                           else _aligned(garbage, match.item, match.lang, "en") or match.item)
    # The Japanese category: by description.csv order, else from the same row in the Japanese data.
    ja_category = garbage.category_in(match.item.category, "ja")
    if ja_category == match.item.category and match.lang != "ja" and ja_item is not None:
        ja_category = ja_item.category
    if lang == "ja":
        category = ja_category
    else:
        if local_item is not None:
            local = local_item.category
        elif lang in garbage.calendars:
            local = garbage.category_in(ja_category, lang)
        else:
            local = _extra_label(garbage, ja_category, lang) or _english_label(garbage, ja_category)
        category = _bilingual(local, ja_category)
    # A word the resident used ("frying pan", "pin") names the item better than a row title it
    # is not part of ("Metal items and small appliances"); "cooking oil" keeps "Cooking oil".
    name = shown.name
    if match.alias and match.alias not in name.casefold():
        name = match.alias
    return name, category, shown.notice


def make_sorting_answer(kb: Any) -> Any:
    """The ``garbage.sorting`` dynamic answer: the item the resident asked about, if found."""
    texts = _texts_of(kb)

    async def answer_item_category(session: AsyncSession, user: Any, lang: str, text: str | None = None) -> str | None:
        garbage = calendar_of(kb)
        if garbage is None or not text:
            return None
        found = lookup_item(garbage, text, lang)
        if found is None:
            return None
        name, category, notice = found
        parts = [texts.t("garbage.item_found", lang, item=name, category=category)]
        if notice:
            parts.append(texts.t("garbage.item_notice", lang, notice=notice))
        # No sample note here: item → category rows are sourced (calendar.yaml); only the days are invented.
        return "\n".join(parts)

    answer_item_category.wants_text = True  # type: ignore[attr-defined]  (the engine passes the question)
    return answer_item_category


def register_answers(engine: Any) -> None:
    """Plug ``garbage.collection_day`` and ``garbage.sorting`` into a ConversationEngine."""
    engine.dynamic_answers["garbage.collection_day"] = make_collection_day_answer(engine.kb, engine.clock)
    engine.dynamic_answers["garbage.sorting"] = make_sorting_answer(engine.kb)
    detectors = getattr(engine, "item_detectors", None)
    if detectors is not None:
        detectors.append(make_item_detector(engine.kb))


def make_item_detector(kb: Any) -> Any:
    """text -> "garbage.sorting" when the text names an item of the city data by one of its
    calendar.yaml aliases ("chảo rán", "batteries", "电池"), else None. Aliases only (no fuzzy
    match): the engine uses it to answer the item's category instead of "Did you mean…"."""

    def detect_garbage_item(text: str) -> str | None:
        garbage = calendar_of(kb)
        return "garbage.sorting" if garbage is not None and garbage.find_by_alias(text) else None

    return detect_garbage_item
