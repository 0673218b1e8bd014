"""Disaster alerts: JMA feed polling → alert → recipients → outbox rows, and delivery reports.

Owns:
- ``poll_feeds(ctx, urls)``: conditional GET of each Atom feed (ETag / If-Modified-Since,
  state in ``jma_feeds``); every entry id is remembered in ``jma_entries`` so a repeated
  feed never resends; each new relevant entry's XML is fetched once (retried on network
  errors, at most ``MAX_FETCH_ATTEMPTS`` times); entries older than ``max_age`` at first
  sight are recorded but not pushed (a fresh deployment must not replay old warnings).
- ``ingest_telegram(session, kb, xml, ...)``: parse (scheduler.jma), assess for the city,
  plan and — unless ``dry_run`` — queue, all in the caller's transaction. The alert row,
  its ``alert_recipients`` and the outbox rows (one message per language group, LINE
  multicast rows of ≤500 recipients via delivery.outbox.enqueue) commit together.
- ``plan_manual_alert`` / ``queue_alert`` for operators' manual alerts (console, CLI).
- ``delivery_report(session, alert_id)``: queued / deferred / sent / failed / blocked.

Who gets what:
- Active users (not blocked/unfollowed) with ``opt_alerts`` on. JMA alerts here are
  city-wide: JMA's warning area 3520300 is the whole of 山口市 (the city is not split,
  DATA.md §4) and districts are not mapped to finer JMA areas; so every user whose area is
  a district of the city (``district.<key>`` in messages.yaml) or unset is a recipient;
  a user whose area is something else (not a city district) is not.
- A cancellation (解除) goes only to those who got an alert it cancels (same hazard key,
  overlapping category, within ``CANCEL_LOOKBACK``), never to anyone else. Where that alert
  is still held back by someone's quiet hours, it is withdrawn instead (the outbox row is
  deleted; the report counts them as "withdrawn") and neither message is sent.
- Quiet hours (users.quiet_start/quiet_end, Asia/Tokyo) defer the push to the end of the
  user's quiet hours (outbox send_after) — except urgent alerts (特別警報, tsunami, strong
  earthquakes: AlertDecision.urgent), which go at once.
- Drills and tests (Status 訓練/試験) are never pushed (scheduler.jma.assess).
- Duplicates: the same warnings in two telegrams of one report (VPWW53 and VPWW54), a second
  report on the same earthquake that is not stronger, or a tsunami update that changes
  nothing are recorded but not pushed.

Messages come from knowledge/alerts.yaml (core languages; other languages fall back to en).
Must not import the conversation core, channel adapters or platform SDKs.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SENT,
    STATUS_ACTIVE,
    OutboxMessage,
    User,
    utcnow,
)
from bot.db.scheduler_models import (
    ENTRY_ALERTED,
    ENTRY_FAILED,
    ENTRY_IGNORED,
    ENTRY_PENDING,
    ENTRY_SKIPPED,
    SOURCE_JMA,
    SOURCE_MANUAL,
    Alert,
    AlertRecipient,
    JmaEntry,
    JmaFeed,
)
from delivery.messages import Choice, Reply
from delivery.outbox import CHANNEL_MAX_RECIPIENTS, enqueue, reply_to_dict
from knowledge.alerts import load_alerts
from knowledge.render import fill_placeholders
from knowledge.schema import CORE_LANGUAGES, EXTRA_LANGUAGES, AlertsFile
from scheduler.jma import (
    SEVERITY_RANK,
    AlertDecision,
    CityConfig,
    Telegram,
    intensity_rank,
    is_relevant_title,
    parse_feed,
    parse_telegram,
    parse_time,
)

log = logging.getLogger("kurashi.alerts")

TOKYO = ZoneInfo("Asia/Tokyo")
CITY = CityConfig()
#: Channels nobody can be pushed to (the local CLI chat).
NO_PUSH_CHANNELS = frozenset({"cli"})
FALLBACK_LANGUAGE = "en"
MAX_FETCH_ATTEMPTS = 5
CANCEL_LOOKBACK = timedelta(hours=72)
DEFAULT_MAX_AGE = timedelta(hours=3)
OUTBOX_KIND = "alert"
USER_AGENT = "kurashi/0.1 (Yamaguchi City foreign residents help desk)"


# --- composing -----------------------------------------------------------------------------


def _t(table: dict[str, dict[str, str]], key: Any, lang: str) -> str:
    values = table[key]
    return values.get(lang) or values.get(FALLBACK_LANGUAGE) or values["ja"]


def alert_languages(alerts: AlertsFile) -> tuple[str, ...]:
    """The languages alerts are written in: the core ones and every extra language the templates
    have (``kurashi kb check`` makes sure such a language is complete)."""
    return CORE_LANGUAGES + tuple(lang for lang in EXTRA_LANGUAGES if alerts.templates["weather.issued"].get(lang))


def message_language(user_language: str | None, alerts: AlertsFile) -> str:
    """The language an alert is written in for a user: theirs when the templates have it, else en."""
    if user_language and alerts.templates["weather.issued"].get(user_language):
        return user_language
    return FALLBACK_LANGUAGE


def _intensity_words(intensity: str, lang: str, alerts: AlertsFile) -> tuple[str, str]:
    """(localized, Japanese) forms of a JMA intensity: "5-" → ("5 lower", "5弱")."""
    value = intensity.strip()
    if value.endswith("-"):
        n = value[:-1]
        return alerts.templates["intensity.lower"][lang].format(n=n), f"{n}弱"
    if value.endswith("+"):
        n = value[:-1]
        return alerts.templates["intensity.upper"][lang].format(n=n), f"{n}強"
    return value, value


#: 警戒レベル相当 of JMA warnings in the pre-2026 system (Cabinet Office, 避難情報に関する
#: ガイドライン R3; JMA 「警戒レベル相当情報」): 高潮警報 is Level 4 相当 while 大雨・洪水警報
#: are Level 3 相当. scheduler.jma.SEVERITY_LEVEL maps severity only, so the level is taken
#: from here; level-based names (2026-, "レベル４大雨危険警報") state their level themselves.
LEVEL_BY_KIND: dict[tuple[str, str], int] = {
    ("heavy_rain", "warning"): 3, ("heavy_rain", "danger"): 4, ("heavy_rain", "special"): 5,
    ("flood", "warning"): 3, ("flood", "danger"): 4,
    ("storm_surge", "warning"): 4, ("storm_surge", "danger"): 4, ("storm_surge", "special"): 5,
    ("landslide", "warning"): 3, ("landslide", "danger"): 4, ("landslide", "special"): 5,
}
_NAMED_LEVEL = re.compile(r"^レベル([0-9])")


def alert_level(decision: AlertDecision) -> int | None:
    """The highest 警戒レベル相当 among the warnings ``decision`` issues (None when none applies)."""
    levels = []
    for category, severity, jma_name in decision.issued:
        named = _NAMED_LEVEL.match(unicodedata.normalize("NFKC", jma_name or ""))
        if named:
            levels.append(int(named.group(1)))
        elif (category, severity) in LEVEL_BY_KIND:
            levels.append(LEVEL_BY_KIND[(category, severity)])
    if decision.kind == "landslide" and decision.issued:
        levels.append(4)   # 土砂災害警戒情報 is Level 4 相当
    return max(levels, default=None)


def _sep(lang: str) -> str:
    return "、" if lang in ("ja", "zh") else ", "


def _what(alerts: AlertsFile, lang: str, entries: list[list[str]] | list[tuple[str, str, str]], *,
          tsunami: bool = False) -> str:
    parts = []
    for category, severity, jma_name in entries:
        if tsunami:
            name = _t(alerts.tsunami_kinds, severity, lang)
        else:
            cat = _t(alerts.categories, category if category in alerts.categories else "other", lang)
            name = _t(alerts.severities, severity, lang).format(category=cat)
        parts.append(_t(alerts.templates, "what", lang).format(name=name, jma=jma_name))
    return _sep(lang).join(parts)


def tsunami_areas(telegram: Telegram | None, city: CityConfig) -> dict[str, list[str]]:
    """JMA kind name → the city's coast areas it is issued for (e.g. 大津波警報 → [山口県瀬戸内海沿岸])."""
    out: dict[str, list[str]] = {}
    for item in telegram.tsunami if telegram is not None else ():
        if item.area_code in city.tsunami_area_codes:
            out.setdefault(item.kind_name, []).append(item.area_name)
    return out


def _tsunami_entries(entries: list[tuple[str, str, str]], areas: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    # "大津波警報：発表" → "大津波警報：山口県瀬戸内海沿岸": the kind as JMA names it, and where.
    out = []
    for category, meaning, jma_name in entries:
        short = jma_name.split("：", 1)[0]
        where = "・".join(areas.get(jma_name, []))
        out.append((category, meaning, f"{short}：{where}" if where else short))
    return out


def compose_jma(kb: Any, alerts: AlertsFile, decision: AlertDecision, lang: str, *,
                areas: dict[str, list[str]] | None = None) -> Reply:
    """The message for ``decision`` in ``lang`` (a core language of the templates).

    ``areas`` (tsunami only): JMA kind name → coast areas, from ``tsunami_areas``.
    """
    tpl = alerts.templates

    def t(key: str, **fields: Any) -> str:
        text, _ = fill_placeholders(kb, _t(tpl, key, lang), lang)
        return text.format(**fields)

    lines: list[str] = []
    issued, cancelled = list(decision.issued), list(decision.cancelled)
    top = max((SEVERITY_RANK.get(s, 0) for _, s, _ in issued), default=0)
    top_severity = next((s for s, r in SEVERITY_RANK.items() if r == top), "warning")
    if decision.kind == "weather":
        if issued:
            lines.append(t("weather.issued", what=_what(alerts, lang, issued)))
        if cancelled:
            lines.append(t("weather.cancelled", what=_what(alerts, lang, cancelled)))
        action = f"action.weather.{top_severity}" if issued else "action.cancelled"
    elif decision.kind == "landslide":
        lines.append(t("landslide.issued" if issued else "landslide.cancelled"))
        action = "action.landslide" if issued else "action.cancelled"
    elif decision.kind == "earthquake":
        local, japanese = _intensity_words(decision.intensity or "", lang, alerts)
        lines.append(t("earthquake.issued", intensity=local, intensity_ja=japanese))
        if decision.hypocentre and decision.magnitude:
            lines.append(t("earthquake.detail", hypocentre=decision.hypocentre, magnitude=decision.magnitude))
        if decision.no_tsunami:
            lines.append(t("earthquake.no_tsunami"))
        action = "action.earthquake.strong" if decision.urgent else "action.earthquake"
    elif decision.kind == "tsunami":
        if issued:
            what = _what(alerts, lang, _tsunami_entries(issued, areas or {}), tsunami=True)
            lines.append(t("tsunami.issued", what=what))
        if cancelled:
            what = _what(alerts, lang, _tsunami_entries(cancelled, areas or {}), tsunami=True)
            lines.append(t("tsunami.cancelled", what=what))
        advisory_only = issued and all(s == "advisory" for _, s, _ in issued)
        action = ("action.tsunami.advisory" if advisory_only else "action.tsunami") if issued else "action.cancelled"
    else:
        raise ValueError(f"unknown alert kind {decision.kind!r}")
    lines.append(t(action))
    level = alert_level(decision)
    if level in alerts.levels and any(c in alerts.level_categories for c, _, _ in issued):
        lines.append(fill_placeholders(kb, _t(alerts.levels, level, lang), lang)[0])
    lines.append(t("source"))
    buttons = [Choice(t("button.shelter"), f"i:{alerts.shelter_intent}")] if issued else []
    return Reply(text="\n".join(lines), buttons=buttons)


def compose_manual(kb: Any, alerts: AlertsFile, texts: dict[str, str], lang: str) -> Reply:
    """An operator's alert in ``lang``: their text in that language (else en, else ja) under the header."""
    body = texts.get(lang) or texts.get(FALLBACK_LANGUAGE) or texts.get("ja") or next(iter(texts.values()))
    header, _ = fill_placeholders(kb, _t(alerts.templates, "manual", lang), lang)
    label, _ = fill_placeholders(kb, _t(alerts.templates, "button.shelter", lang), lang)
    return Reply(text=header.format(text=body.strip()), buttons=[Choice(label, f"i:{alerts.shelter_intent}")])


# --- recipients ------------------------------------------------------------------------------


def city_areas(kb: Any) -> frozenset[str]:
    """District keys of the city (``district.<key>`` system messages)."""
    return frozenset(k.split(".", 1)[1] for k in (kb.messages if kb is not None else {}) if k.startswith("district."))


def _parse_hhmm(value: str | None) -> time | None:
    if not value:
        return None
    try:
        hours, minutes = value.split(":")
        return time(int(hours) % 24, int(minutes))
    except ValueError:
        return None


def quiet_until(now: datetime, start: str | None, end: str | None) -> datetime | None:
    """End (UTC) of the user's quiet hours when ``now`` falls inside them, else None."""
    qs, qe = _parse_hhmm(start), _parse_hhmm(end)
    if qs is None or qe is None or qs == qe:
        return None
    local = now.astimezone(TOKYO)
    t = local.time().replace(second=0, microsecond=0)
    inside = (qs <= t < qe) if qs < qe else (t >= qs or t < qe)
    if not inside:
        return None
    end_local = local.replace(hour=qe.hour, minute=qe.minute, second=0, microsecond=0)
    if end_local <= local:
        end_local += timedelta(days=1)
    return end_local.astimezone(UTC)


@dataclass(frozen=True)
class Recipient:
    user_id: int
    channel: str
    platform_user_id: str
    language: str               # the language the message is written in
    send_after: datetime


@dataclass
class AlertPlan:
    """What an alert would send: texts per language and every recipient (nothing written yet)."""

    source: str
    kind: str
    hazard_key: str
    is_cancellation: bool
    urgent: bool
    level: int | None
    decision: dict[str, Any]
    replies: dict[str, Reply]                      # language → message
    recipients: list[Recipient] = field(default_factory=list)
    cancels_alert_id: int | None = None
    #: cancellations: outbox rows of the cancelled alert still held back by quiet hours; they
    #: are withdrawn (deleted) instead of delivering "warning" and "lifted" together later
    withdraw_outbox_ids: list[int] = field(default_factory=list)
    withdrawn_users: int = 0
    duplicate_of: int | None = None
    entry_id: str | None = None

    def summary(self, now: datetime | None = None) -> dict[str, Any]:
        """Counts for dry runs and previews: total, by language, by channel, deferred by quiet hours."""
        now = now or utcnow()
        return {
            "kind": self.kind, "cancellation": self.is_cancellation, "urgent": self.urgent, "level": self.level,
            "duplicate_of": self.duplicate_of, "recipients": len(self.recipients),
            "withdrawn": self.withdrawn_users,
            "by_language": dict(Counter(r.language for r in self.recipients)),
            "by_channel": dict(Counter(r.channel for r in self.recipients)),
            "deferred": sum(1 for r in self.recipients if r.send_after > now),
            "messages": len({(r.channel, r.language, r.send_after) for r in self.recipients}),
        }


async def _select_users(session: AsyncSession, *, areas: frozenset[str] | None, include_no_area: bool,
                        languages: list[str] | None = None, user_ids: set[int] | None = None) -> list[Any]:
    query = (
        select(User.id, User.channel, User.platform_user_id, User.language, User.area,
               User.quiet_start, User.quiet_end)
        .where(User.status == STATUS_ACTIVE, User.opt_alerts.is_(True), User.channel.not_in(NO_PUSH_CHANNELS))
        .order_by(User.id)
    )
    rows = list((await session.execute(query)).all())
    out = []
    for row in rows:
        if user_ids is not None and row.id not in user_ids:
            continue
        if areas is not None:
            if row.area is None:
                if not include_no_area:
                    continue
            elif row.area not in areas:
                continue
        if languages and (row.language or FALLBACK_LANGUAGE) not in languages:
            continue
        out.append(row)
    return out


def _recipients(rows: list[Any], alerts: AlertsFile, *, urgent: bool, now: datetime) -> list[Recipient]:
    out = []
    for row in rows:
        defer = None if urgent else quiet_until(now, row.quiet_start, row.quiet_end)
        out.append(Recipient(row.id, row.channel, row.platform_user_id,
                             message_language(row.language, alerts), defer or now))
    return out


# --- planning --------------------------------------------------------------------------------


def _decision_dict(decision: AlertDecision, telegram: Telegram | None) -> dict[str, Any]:
    data = dataclasses.asdict(decision)
    data["report_time"] = telegram.report_time if telegram else None
    data["title"] = telegram.title if telegram else None
    data["status"] = telegram.status if telegram else None
    return data


def _entries(data: dict[str, Any], name: str) -> set[tuple[str, str, str]]:
    return {tuple(e) for e in data.get(name) or []}  # type: ignore[misc]


def _is_duplicate(decision: AlertDecision, report_time: str | None, prior: Alert) -> bool:
    old = prior.decision or {}
    if decision.kind == "earthquake":
        return intensity_rank(old.get("intensity")) >= intensity_rank(decision.intensity)
    same = (_entries(old, "issued") == set(decision.issued)
            and _entries(old, "cancelled") == set(decision.cancelled))
    if decision.kind == "tsunami":
        return same
    return same and old.get("report_time") == report_time


async def plan_jma_alert(
    session: AsyncSession, kb: Any, decision: AlertDecision, *, telegram: Telegram | None = None,
    now: datetime | None = None, entry_id: str | None = None, city_area_keys: frozenset[str] | None = None,
    city: CityConfig = CITY,
) -> AlertPlan:
    """Texts and recipients of a JMA decision (reads the database, writes nothing)."""
    now = now or utcnow()
    alerts = load_alerts(kb.root)
    data = _decision_dict(decision, telegram)
    areas = tsunami_areas(telegram, city)
    data["areas"] = areas
    replies = {lang: compose_jma(kb, alerts, decision, lang, areas=areas) for lang in alert_languages(alerts)}
    plan = AlertPlan(source=SOURCE_JMA, kind=decision.kind, hazard_key=decision.key,
                     is_cancellation=decision.is_cancellation, urgent=decision.urgent,
                     level=alert_level(decision), decision=data, replies=replies,
                     entry_id=entry_id)
    prior = list((await session.execute(
        select(Alert).where(Alert.hazard_key == decision.key, Alert.source == SOURCE_JMA).order_by(Alert.id.desc())
    )).scalars())
    for old in prior:
        if _is_duplicate(decision, data["report_time"], old):
            plan.duplicate_of = old.id
            return plan
    districts = city_area_keys if city_area_keys is not None else city_areas(kb)
    if decision.is_cancellation:
        cancelled_categories = {c for c, _, _ in decision.cancelled}
        targets = [
            a for a in prior
            if not a.is_cancellation and a.created_at >= now - CANCEL_LOOKBACK
            and ({e[0] for e in (a.decision or {}).get("issued") or []} & cancelled_categories)
        ]
        if not targets:
            return plan
        plan.cancels_alert_id = targets[0].id
        target_ids = [a.id for a in targets]
        held = list((await session.execute(
            select(OutboxMessage.id).where(
                OutboxMessage.ref.in_([f"alert:{i}" for i in target_ids]), OutboxMessage.status == OUTBOX_PENDING,
                OutboxMessage.send_after > now, OutboxMessage.claimed_until.is_(None))
        )).scalars())
        got: dict[int, bool] = {}
        for user_id, outbox_id in (await session.execute(
            select(AlertRecipient.user_id, AlertRecipient.outbox_id).where(
                AlertRecipient.alert_id.in_(target_ids), AlertRecipient.outbox_id.is_not(None))
        )).all():
            # a user counts as alerted if any of the cancelled alerts reached (or will reach) them
            got[user_id] = got.get(user_id, False) or outbox_id not in held
        plan.withdraw_outbox_ids = held
        plan.withdrawn_users = sum(1 for alerted in got.values() if not alerted)
        rows = await _select_users(session, areas=None, include_no_area=True,
                                   user_ids={u for u, alerted in got.items() if alerted})
    else:
        rows = await _select_users(session, areas=districts, include_no_area=True)
    plan.recipients = _recipients(rows, alerts, urgent=decision.urgent, now=now)
    return plan


async def plan_manual_alert(
    session: AsyncSession, kb: Any, texts: dict[str, str], *, now: datetime | None = None,
    areas: list[str] | None = None, languages: list[str] | None = None, urgent: bool = False,
    key: str | None = None,
) -> AlertPlan:
    """An operator's alert: ``texts`` per language (at least one); ``areas`` limits it to
    districts (users with no area are then left out), ``languages`` to users' languages.
    ``key`` (e.g. the preview's one-time id) becomes the hazard key "manual:<key>", so a
    confirmation sent twice is recognised (``find_manual_alert``)."""
    texts = {k: v for k, v in texts.items() if v and v.strip()}
    if not texts:
        raise ValueError("a manual alert needs a text in at least one language")
    now = now or utcnow()
    alerts = load_alerts(kb.root)
    replies = {lang: compose_manual(kb, alerts, texts, lang) for lang in alert_languages(alerts)}
    area_set = frozenset(areas) if areas else city_areas(kb)
    rows = await _select_users(session, areas=area_set, include_no_area=not areas, languages=languages)
    decision = {"texts": texts, "areas": areas or [], "languages": languages or [], "urgent": urgent}
    plan = AlertPlan(source=SOURCE_MANUAL, kind="manual", hazard_key=f"manual:{key or now.isoformat()}",
                     is_cancellation=False, urgent=urgent, level=None, decision=decision, replies=replies)
    plan.recipients = _recipients(rows, alerts, urgent=urgent, now=now)
    return plan


async def find_manual_alert(session: AsyncSession, key: str) -> Alert | None:
    """The manual alert queued with ``key`` (see plan_manual_alert), if any."""
    return (await session.execute(
        select(Alert).where(Alert.hazard_key == f"manual:{key}", Alert.source == SOURCE_MANUAL)
    )).scalars().first()


# --- queueing ---------------------------------------------------------------------------------


async def _withdraw(session: AsyncSession, outbox_ids: list[int], now: datetime) -> None:
    """Delete not-yet-due, unclaimed outbox rows of a cancelled alert; their recipients keep
    their ``alert_recipients`` row with ``outbox_id`` NULL ("withdrawn" in the report)."""
    deleted = list((await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.id.in_(outbox_ids), OutboxMessage.status == OUTBOX_PENDING,
            OutboxMessage.send_after > now, OutboxMessage.claimed_until.is_(None))
        .returning(OutboxMessage.id)
    )).scalars())
    if deleted:
        await session.execute(update(AlertRecipient).where(AlertRecipient.outbox_id.in_(deleted))
                              .values(outbox_id=None).execution_options(synchronize_session=False))


async def queue_alert(session: AsyncSession, plan: AlertPlan, *, now: datetime | None = None,
                      created_by: str | None = None) -> Alert:
    """Write the alert, its recipients and its outbox rows in the caller's transaction.

    One message per (channel, language, send_after) group; LINE groups become multicast rows
    of ≤500 recipients. Does not commit.
    """
    if plan.duplicate_of is not None:
        raise ValueError(f"duplicate of alert {plan.duplicate_of}: nothing to queue")
    now = now or utcnow()
    if plan.withdraw_outbox_ids:
        await _withdraw(session, plan.withdraw_outbox_ids, now)
    alert = Alert(
        source=plan.source, kind=plan.kind, hazard_key=plan.hazard_key, is_cancellation=plan.is_cancellation,
        cancels_alert_id=plan.cancels_alert_id, urgent=plan.urgent, level=plan.level, entry_id=plan.entry_id,
        decision=plan.decision, texts={lang: reply.text for lang, reply in plan.replies.items()},
        recipient_count=len(plan.recipients), created_by=created_by, created_at=now,
    )
    session.add(alert)
    await session.flush()
    groups: dict[tuple[str, str, datetime], list[Recipient]] = defaultdict(list)
    for r in plan.recipients:
        groups[(r.channel, r.language, r.send_after)].append(r)
    rows: list[dict[str, Any]] = []
    for (channel, lang, send_after), members in sorted(groups.items(), key=lambda g: (g[0][2], g[0][0], g[0][1])):
        members = list({m.platform_user_id: m for m in members}.values())
        payload = [reply_to_dict(plan.replies[lang])]
        ids = await enqueue(session, channel=channel, recipients=[m.platform_user_id for m in members],
                            replies=payload, kind=OUTBOX_KIND, ref=f"alert:{alert.id}",
                            send_after=send_after, now=now)
        per_row = CHANNEL_MAX_RECIPIENTS.get(channel, 1)
        for index, member in enumerate(members):
            rows.append({"alert_id": alert.id, "user_id": member.user_id, "channel": channel, "language": lang,
                         "outbox_id": ids[index // per_row], "send_after": send_after})
    if rows:
        await session.execute(AlertRecipient.__table__.insert(), rows)
    alert.recipient_count = len(rows)
    return alert


# --- ingesting a telegram ---------------------------------------------------------------------


@dataclass
class IngestResult:
    telegram: Telegram | None
    decision: AlertDecision | None
    plan: AlertPlan | None
    alert_id: int | None = None
    reason: str = ""                 # why nothing was queued ("drill", "not for the city", "duplicate"…)
    #: Set when the telegram's report time is older than the feed poller's push window
    #: (DEFAULT_MAX_AGE): "stale: reported … JST, … ago; the feed poller would ignore it".
    stale: str | None = None

    @property
    def queued(self) -> bool:
        return self.alert_id is not None


async def ingest_telegram(
    session: AsyncSession, kb: Any, xml: bytes | str, *, now: datetime | None = None,
    entry_id: str | None = None, dry_run: bool = False, city: CityConfig = CITY,
) -> IngestResult:
    """Parse, assess and (unless ``dry_run``) queue one telegram in the caller's transaction.

    Raises ValueError for a document that is not a JMA telegram.
    """
    now = now or utcnow()
    telegram = parse_telegram(xml)
    stale = stale_note(telegram, now)
    decision = _assess(telegram, city)
    if decision is None:
        if telegram.is_drill:
            reason = "drill or test (never pushed)"
        elif not mentions_city(telegram, city):
            reason = f"not for Yamaguchi City ({_areas_named(telegram) or 'no area the city is in'})"
        else:
            reason = "nothing new for the city"
        return IngestResult(telegram, None, None, reason=reason, stale=stale)
    plan = await plan_jma_alert(session, kb, decision, telegram=telegram, now=now, entry_id=entry_id, city=city)
    if plan.duplicate_of is not None:
        return IngestResult(telegram, decision, plan, reason=f"already alerted (alert {plan.duplicate_of})", stale=stale)
    if decision.is_cancellation and plan.cancels_alert_id is None:
        return IngestResult(telegram, decision, plan, reason="cancellation of nothing residents were sent", stale=stale)
    if dry_run:
        return IngestResult(telegram, decision, plan, reason="dry run", stale=stale)
    alert = await queue_alert(session, plan, now=now)
    return IngestResult(telegram, decision, plan, alert_id=alert.id, stale=stale)


def stale_note(telegram: Telegram, now: datetime, max_age: timedelta = DEFAULT_MAX_AGE) -> str | None:
    """"stale: …" when the telegram was reported longer ago than the poller's push window, else None."""
    from scheduler.jma import parse_time

    reported = parse_time(telegram.report_time)
    if reported is None or reported.tzinfo is None or reported >= now - max_age:
        return None
    age = now - reported
    ago = f"{age.days} days" if age.days >= 2 else f"{int(age.total_seconds() // 3600)} hours"
    window = f"{int(max_age.total_seconds() // 3600)} h" if max_age >= timedelta(hours=1) else str(max_age)
    return (f"stale: reported {reported.astimezone(TOKYO):%Y-%m-%d %H:%M} JST, {ago} ago — older than the "
            f"feed poller's {window} push window (the poller would ignore it)")


def mentions_city(telegram: Telegram, city: CityConfig = CITY) -> bool:
    """Whether the telegram names an area Yamaguchi City is in (its warning area, earthquake
    city or area, or one of the prefecture's coasts for tsunamis)."""
    if telegram.type in ("weather", "landslide"):
        return any(area.area_code in city.warning_city_codes for area in telegram.warnings)
    if telegram.type in ("intensity", "quake"):
        quake = telegram.quake
        return quake is not None and bool(set(quake.city_intensity) & city.quake_city_codes
                                          or set(quake.area_intensity) & city.quake_area_codes)
    if telegram.type == "tsunami":
        return any(item.area_code in city.tsunami_area_codes for item in telegram.tsunami)
    return False


def _areas_named(telegram: Telegram, limit: int = 3) -> str:
    """A few area names the telegram is about, for the operator ("島根県, 浜田地区 …")."""
    names = [a.area_name for a in telegram.warnings] + [t.area_name for t in telegram.tsunami]
    if telegram.quake is not None and telegram.quake.hypocentre:
        names.append(f"hypocentre {telegram.quake.hypocentre}")
    names = list(dict.fromkeys(n for n in names if n))
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else (telegram.office or "")


def _assess(telegram: Telegram, city: CityConfig) -> AlertDecision | None:
    from scheduler.jma import assess

    return assess(telegram, city)


# --- polling -----------------------------------------------------------------------------------


async def poll_feeds(ctx: Any, urls: list[str], *, city: CityConfig = CITY,
                     max_age: timedelta | None = DEFAULT_MAX_AGE) -> dict[str, int]:
    """Poll each feed once and process pending entries; returns counters (for logs and tests)."""
    stats: Counter[str] = Counter()
    client = ctx.http
    own_client = client is None
    if own_client:
        client = httpx.AsyncClient(timeout=httpx.Timeout(10.0), headers={"User-Agent": USER_AGENT},
                                   follow_redirects=True)
    try:
        for url in urls:
            try:
                await _poll_feed(ctx, client, url, stats, max_age=max_age)
            except (httpx.HTTPError, ValueError, SyntaxError) as exc:  # SyntaxError: xml ParseError
                stats["feed_errors"] += 1
                log.warning("jma: feed poll failed", extra={"url": url, "error": repr(exc)[:200]})
                await _record_feed_error(ctx, url, exc)
        await process_pending_entries(ctx, client, stats, city=city)
    finally:
        if own_client:
            await client.aclose()
    return dict(stats)


async def _record_feed_error(ctx: Any, url: str, exc: BaseException) -> None:
    """Remember the last failed poll of ``url`` (the console shows it, also when no poll ever worked)."""
    text = (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:500]
    try:
        async with ctx.sessionmaker() as session, session.begin():
            row = await session.get(JmaFeed, url)
            if row is None:
                session.add(JmaFeed(url=url, last_error=text, error_at=ctx.now()))
            else:
                row.last_error, row.error_at = text, ctx.now()
    except Exception:  # a database problem must not hide the feed error
        log.exception("jma: could not record the feed error")


async def _poll_feed(ctx: Any, client: httpx.AsyncClient, url: str, stats: Counter[str], *,
                     max_age: timedelta | None) -> None:
    async with ctx.sessionmaker() as session:
        state = await session.get(JmaFeed, url)
        etag, modified = (state.etag, state.last_modified) if state else (None, None)
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    response = await client.get(url, headers=headers)
    now = ctx.now()
    if response.status_code == 304:
        stats["not_modified"] += 1
        async with ctx.sessionmaker() as session, session.begin():
            await session.execute(update(JmaFeed).where(JmaFeed.url == url).values(checked_at=now))
        return
    response.raise_for_status()
    entries = parse_feed(response.content)
    stats["feed_fetched"] += 1
    async with ctx.sessionmaker() as session, session.begin():
        known = set((await session.execute(
            select(JmaEntry.entry_id).where(JmaEntry.entry_id.in_([e.id for e in entries if e.id]))
        )).scalars()) if entries else set()
        for entry in entries:
            if not entry.id or entry.id in known:
                continue
            known.add(entry.id)
            status, note = ENTRY_PENDING, None
            if not is_relevant_title(entry.title):
                status = ENTRY_SKIPPED
            elif max_age is not None:
                updated = parse_time(entry.updated)
                if updated is not None and updated < now - max_age:
                    status, note = ENTRY_IGNORED, "older than the push window at first sight"
            session.add(JmaEntry(entry_id=entry.id, feed_url=url, title=entry.title[:256], link=entry.link[:1024],
                                 updated=entry.updated[:64] or None, status=status, note=note, seen_at=now))
            stats[f"new_{status}"] += 1
        # Saved with the entries: a crash before this commit re-reads the feed next time.
        if state_row := await session.get(JmaFeed, url):
            state_row.etag = response.headers.get("ETag")
            state_row.last_modified = response.headers.get("Last-Modified")
            state_row.checked_at = state_row.changed_at = now
        else:
            session.add(JmaFeed(url=url, etag=response.headers.get("ETag"),
                                last_modified=response.headers.get("Last-Modified"), checked_at=now, changed_at=now))


async def process_pending_entries(ctx: Any, client: httpx.AsyncClient, stats: Counter[str] | None = None, *,
                                  city: CityConfig = CITY) -> Counter[str]:
    """Fetch, assess and queue every pending entry, oldest first (each in its own transaction)."""
    stats = stats if stats is not None else Counter()
    async with ctx.sessionmaker() as session:
        pending = list((await session.execute(
            select(JmaEntry.id, JmaEntry.link).where(JmaEntry.status == ENTRY_PENDING)
            .order_by(JmaEntry.updated, JmaEntry.id)
        )).all())
    # Oldest first (by the feed's <updated>), so an issue is queued before its cancellation.
    for row in pending:
        await _process_entry(ctx, client, row.id, row.link, stats, city=city)
    return stats


async def _process_entry(ctx: Any, client: httpx.AsyncClient, row_id: int, link: str, stats: Counter[str], *,
                         city: CityConfig) -> None:
    xml: bytes | None = None
    error: str | None = None
    try:
        response = await client.get(link)
        response.raise_for_status()
        xml = response.content
    except httpx.HTTPError as exc:
        error = f"fetch failed: {exc!r}"[:500]
    now = ctx.now()
    async with ctx.sessionmaker() as session, session.begin():
        entry = (await session.execute(
            select(JmaEntry).where(JmaEntry.id == row_id).with_for_update()
        )).scalar_one_or_none()
        if entry is None or entry.status != ENTRY_PENDING:
            return  # someone else handled it
        entry.attempts = (entry.attempts or 0) + 1
        if xml is None:
            stats["fetch_errors"] += 1
            entry.note = error
            if entry.attempts >= MAX_FETCH_ATTEMPTS:
                entry.status = ENTRY_FAILED
            return
        entry.fetched_at = now
        try:
            result = await ingest_telegram(session, ctx.kb, xml, now=now, entry_id=entry.entry_id, city=city)
        except ValueError as exc:
            entry.status, entry.note = ENTRY_FAILED, f"unreadable telegram: {exc}"[:500]
            stats["unreadable"] += 1
            return
        entry.telegram_type = result.telegram.type if result.telegram else None
        if result.queued:
            entry.status, entry.alert_id = ENTRY_ALERTED, result.alert_id
            stats["alerts"] += 1
            stats["recipients"] += len(result.plan.recipients) if result.plan else 0
        else:
            entry.status, entry.note = ENTRY_IGNORED, result.reason[:500]
            stats["ignored"] += 1


# --- reports -----------------------------------------------------------------------------------


async def delivery_report(session: AsyncSession, alert_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Per-recipient delivery state of one alert.

    queued = waiting in the outbox (``deferred`` of them held back by quiet hours);
    sent = accepted by the platform; blocked = not delivered and the user has blocked the
    bot / unfollowed; failed = given up for another reason.
    """
    now = now or utcnow()
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise LookupError(f"no alert {alert_id}")
    query = (
        select(OutboxMessage.status, User.status, AlertRecipient.language, AlertRecipient.channel,
               (AlertRecipient.send_after > now).label("deferred"), func.count())
        .select_from(AlertRecipient)
        .join(User, User.id == AlertRecipient.user_id)
        .outerjoin(OutboxMessage, OutboxMessage.id == AlertRecipient.outbox_id)
        .where(AlertRecipient.alert_id == alert_id)
        .group_by(OutboxMessage.status, User.status, AlertRecipient.language, AlertRecipient.channel, "deferred")
    )
    counts: Counter[str] = Counter()
    by_language: dict[str, Counter[str]] = defaultdict(Counter)
    by_channel: dict[str, Counter[str]] = defaultdict(Counter)
    for outbox_status, user_status, lang, channel, deferred, n in (await session.execute(query)).all():
        if outbox_status is None:
            state = "withdrawn"       # held by quiet hours, then lifted before it was due
        elif outbox_status == OUTBOX_SENT:
            state = "sent"
        elif user_status != STATUS_ACTIVE:
            state = "blocked"
        elif outbox_status == OUTBOX_FAILED:
            state = "failed"
        else:
            state = "queued"
            if deferred and outbox_status == OUTBOX_PENDING:
                counts["deferred"] += n
        counts[state] += n
        by_language[lang][state] += n
        by_channel[channel][state] += n
    return {
        "alert_id": alert.id, "kind": alert.kind, "source": alert.source, "cancellation": alert.is_cancellation,
        "created_at": alert.created_at.isoformat(), "recipients": alert.recipient_count,
        "queued": counts["queued"], "deferred": counts["deferred"], "sent": counts["sent"],
        "failed": counts["failed"], "blocked": counts["blocked"], "withdrawn": counts["withdrawn"],
        "by_language": {k: dict(v) for k, v in sorted(by_language.items())},
        "by_channel": {k: dict(v) for k, v in sorted(by_channel.items())},
    }
