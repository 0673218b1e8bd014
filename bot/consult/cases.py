"""Consultation cases: the service functions the resident flow, the staff console, the staff
Telegram group relay and the SLA job all use. The only code that writes the consultation
tables (bot/db/consult_models.py).

Conventions (same as bot/db/repo.py):
- Every function runs in the caller's transaction (``async with sessionmaker() as s,
  s.begin(): ...``) and never commits. Pushes to residents and staff notifications are
  written to the outbox (``delivery.outbox.enqueue``) in that same transaction, so they
  are sent if and only if the change commits.
- Staff-side functions take ``who`` — a ``Staff`` row (console) or an ``Actor`` (staff
  Telegram group, system) — and enforce organisation isolation on the server: a case of
  another organisation raises ``CaseNotFound`` exactly like a case that does not exist
  (the console answers 404 for both).
- ``kb`` is the loaded ``KnowledgeBase`` (``services.kb``): resident-facing texts come from
  knowledge/messages.yaml in the resident's language, organisation names from
  knowledge/partners.yaml.
- ``now`` is injectable everywhere (tests use a fixed clock); default: the current UTC time.

Errors: ``CaseNotFound`` (→ 404), ``CaseClosed`` (acting on a closed/anonymised case →
409 or a form message), ``InvalidAction`` (bad input: empty text, unknown organisation,
rating outside 1–5 → 400 / form message).

Must not import the conversation engine, FastAPI or platform SDKs.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from bot.cleaning import clean_text
from bot.consult import notify
from bot.consult.routing import due_at, organisations, partner_name, response_hours
from bot.conversation.locale import Texts  # texts only; not the engine
from bot.db.consult_models import (
    CASE_ANSWERED,
    CASE_CLOSED,
    CASE_DRAFT,
    CASE_OPEN,
    DIR_IN,
    DIR_NOTE,
    DIR_OUT,
    DIR_SYSTEM,
    STAFF_VISIBLE,
    AuditEntry,
    Case,
    CaseMedia,
    CaseMessage,
    Staff,
)
from bot.db.models import User, utcnow
from delivery.messages import Choice, Reply
from delivery.outbox import enqueue  # the outbox owns pushes (STYLE.md §5)

log = logging.getLogger("kurashi.consult")

#: Outcomes staff choose when closing a case (labels are the console's business).
OUTCOMES: tuple[str, ...] = ("resolved", "referred", "information_given", "no_response", "not_our_area", "other")
OUTCOME_FORGOTTEN = "forgotten"          # closed because the resident used forget-me
MAX_TEXT = 4000                          # one staff reply / note / reason
RATING_RANGE = range(1, 6)

# Audit actions
A_OPENED, A_RESIDENT_WROTE, A_REPLIED, A_NOTED = "opened", "resident_wrote", "replied", "noted"
A_ASSIGNED, A_TRANSFERRED, A_CLOSED, A_RATED = "assigned", "transferred", "closed", "rated"
A_REMINDED, A_ANONYMISED = "reminded", "anonymised"
A_EXPIRED = "content_expired"           # messages removed after CASE_RETENTION_DAYS


class CaseNotFound(LookupError):
    """No such case for this caller (it does not exist, or it belongs to another organisation)."""


class CaseClosed(ValueError):
    """The case is closed (or anonymised): no more replies, transfers or notes."""


class InvalidAction(ValueError):
    """Bad input for a case action (empty text, unknown organisation, rating outside 1–5…)."""


class AlreadyRated(InvalidAction):
    """The resident already rated this case: the first rating stays."""


@dataclass(frozen=True)
class Actor:
    """Who acts on a case. ``org`` limits what the actor may see (None = the system).

    Build with ``Actor.of_staff(staff)``, ``Actor.telegram(org, user_id, name)``, ``SYSTEM``.
    """

    label: str                     # audit "actor": "staff:3", "telegram:1234 Aiko", "system", "resident"
    org: str | None = None
    staff_id: int | None = None

    @classmethod
    def of_staff(cls, staff: Staff) -> Actor:
        return cls(label=f"staff:{staff.id}", org=staff.org, staff_id=staff.id)

    @classmethod
    def telegram(cls, org: str, user_id: int | str, name: str | None = None,
                 staff: Staff | None = None) -> Actor:
        """A member of ``org``'s staff Telegram group (linked to a staff account when known)."""
        label = f"telegram:{user_id}" + (f" {name}" if name else "")
        return cls(label=label[:128], org=org, staff_id=staff.id if staff else None)


SYSTEM = Actor(label="system")
RESIDENT = Actor(label="resident")


@dataclass(frozen=True)
class MediaContent:
    """Content of an image/file the resident sent (``data`` None when it could not be fetched)."""

    data: bytes | None
    mime_type: str = "application/octet-stream"
    error: str | None = None


def _actor(who: Staff | Actor) -> Actor:
    return Actor.of_staff(who) if isinstance(who, Staff) else who


def _now(now: datetime | None) -> datetime:
    return now or utcnow()


def _clean(text: str | None, what: str) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidAction(f"{what} is empty")
    if len(text) > MAX_TEXT:
        raise InvalidAction(f"{what} is longer than {MAX_TEXT} characters")
    return text


def _texts(kb: Any) -> Any:
    return Texts(kb)


# --------------------------------------------------------------------------- resident side

async def create_case(
    session: AsyncSession,
    user: User,
    *,
    topic: str,
    org: str,
    language: str,
    segment: str | None = None,
    intent: str | None = None,
    display_name: str | None = None,
    now: datetime | None = None,
) -> Case:
    """A draft case for ``user`` (not visible to staff until ``submit_case``)."""
    now = _now(now)
    case = Case(user_id=user.id, channel=user.channel, status=CASE_DRAFT, topic=topic, org=org,
                language=language, segment=segment, intent=intent,
                display_name=(display_name or None) and display_name[:128],
                created_at=now, last_activity_at=now)
    session.add(case)
    await session.flush()
    return case


async def add_message(
    session: AsyncSession,
    case: Case,
    *,
    direction: str = DIR_IN,
    kind: str = "text",
    text: str | None = None,
    language: str | None = None,
    intent: str | None = None,
    who: Staff | Actor | None = None,
    extra: dict[str, Any] | None = None,
    media: MediaContent | None = None,
    now: datetime | None = None,
) -> CaseMessage:
    """Store one message of the case (no notification, no status change — see
    ``resident_message`` for the resident's messages to an open case)."""
    now = _now(now)
    actor = _actor(who) if who is not None else None
    if text is not None:
        text = clean_text(text)   # a NUL from a console form would fail the insert on PostgreSQL
    message = CaseMessage(
        case_id=case.id, user_id=case.user_id, direction=direction, kind=kind, text=text,
        language=language, intent=intent, staff_id=actor.staff_id if actor else None,
        author=actor.label if actor else None, extra=extra, created_at=now,
    )
    session.add(message)
    await session.flush()
    if media is not None:
        session.add(CaseMedia(
            message_id=message.id, case_id=case.id, user_id=case.user_id, mime_type=media.mime_type[:64],
            size=len(media.data or b""), data=media.data, error=(media.error or None) and media.error[:255],
            created_at=now,
        ))
        await session.flush()
    case.last_activity_at = now
    return message


def _due(kb: Any, case: Case, at: datetime) -> datetime | None:
    partner = organisations(kb).get(case.org)
    if partner is None:
        return None
    return due_at(partner, at, case.language, hours_to_answer=response_hours(case.org))


async def submit_case(session: AsyncSession, kb: Any, case: Case, *, now: datetime | None = None) -> Case:
    """The resident pressed Send: draft → open, the SLA clock starts, staff are notified
    (Telegram group post with the case number, e-mail), "opened" is audited."""
    if case.status != CASE_DRAFT:
        raise InvalidAction(f"case {case.number} was already sent")
    now = _now(now)
    case.status = CASE_OPEN
    case.opened_at = case.waiting_since = case.last_activity_at = now
    case.due_at = _due(kb, case, now)
    # The resident pressed "Yes, send" to the organisation named on screen, then Send: consent.
    await audit(session, case, A_OPENED, RESIDENT, detail={"org": case.org, "topic": case.topic, "consent": True},
                now=now)
    await notify.notify_staff(session, kb, case, "new", now=now)
    return case


async def resident_message(
    session: AsyncSession,
    kb: Any,
    case: Case,
    *,
    kind: str = "text",
    text: str | None = None,
    language: str | None = None,
    intent: str | None = None,
    extra: dict[str, Any] | None = None,
    media: MediaContent | None = None,
    now: datetime | None = None,
) -> CaseMessage:
    """A message the resident wrote to their open case: stored, the case waits for staff
    again (SLA clock restarts if staff had answered), the staff group sees it."""
    if case.status == CASE_CLOSED:
        raise CaseClosed(f"case {case.number} is closed")
    now = _now(now)
    message = await add_message(session, case, direction=DIR_IN, kind=kind, text=text, language=language,
                                intent=intent, extra=extra, media=media, now=now)
    if case.status == CASE_DRAFT:
        return message
    if case.waiting_since is None:
        case.waiting_since = now
        case.due_at = _due(kb, case, now)
        case.staff_reminded_at = None
    case.status = CASE_OPEN
    await audit(session, case, A_RESIDENT_WROTE, RESIDENT, detail={"kind": kind}, now=now)
    await notify.notify_staff(session, kb, case, "message", message=message, now=now)
    return message


async def open_case_of(session: AsyncSession, user: User) -> Case | None:
    """The resident's newest case that is sent and not closed (open or answered), if any."""
    return await session.scalar(
        select(Case).where(Case.user_id == user.id, Case.status.in_((CASE_OPEN, CASE_ANSWERED)))
        .order_by(Case.id.desc()).limit(1)
    )


async def draft_of(session: AsyncSession, user: User) -> Case | None:
    """The resident's unsent draft, if any."""
    return await session.scalar(
        select(Case).where(Case.user_id == user.id, Case.status == CASE_DRAFT).order_by(Case.id.desc()).limit(1)
    )


async def discard_draft(session: AsyncSession, case: Case) -> None:
    """The resident cancelled before sending: the draft and its messages are deleted."""
    if case.status != CASE_DRAFT:
        raise InvalidAction(f"case {case.number} was already sent")
    await session.execute(delete(CaseMedia).where(CaseMedia.case_id == case.id))
    await session.execute(delete(CaseMessage).where(CaseMessage.case_id == case.id))
    await session.delete(case)
    await session.flush()


async def rate(session: AsyncSession, user: User, case_id: int, score: int, *,
               now: datetime | None = None) -> Case:
    """The resident rates their closed case 1–5. Only the first rating counts: a later press
    raises ``AlreadyRated`` (the statistics must not be rewritten by a second tap). A case
    that is not the resident's → ``CaseNotFound``; not closed → ``InvalidAction``."""
    if score not in RATING_RANGE:
        raise InvalidAction("rating must be 1–5")
    case = await session.get(Case, case_id)
    if case is None or case.user_id != user.id:
        raise CaseNotFound(case_id)
    if case.status != CASE_CLOSED:
        raise InvalidAction(f"case {case.number} is not closed yet")
    if case.rating is not None:
        raise AlreadyRated(f"case {case.number} is already rated")
    now = _now(now)
    # Conditional UPDATE: two presses racing in two transactions still keep only the first.
    result = await session.execute(
        update(Case).where(Case.id == case.id, Case.rating.is_(None))
        .values(rating=score, rated_at=now).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise AlreadyRated(f"case {case.number} is already rated")
    await session.refresh(case, ["rating", "rated_at"])
    await audit(session, case, A_RATED, RESIDENT, detail={"rating": score}, now=now)
    return case


# --------------------------------------------------------------------------- staff side: reading

async def get_case(session: AsyncSession, who: Staff | Actor, case_id: int) -> Case:
    """The case if ``who`` may see it (same organisation, not a draft), else ``CaseNotFound``."""
    actor = _actor(who)
    case = await session.get(Case, case_id)
    if case is None or case.status not in STAFF_VISIBLE or (actor.org is not None and case.org != actor.org):
        raise CaseNotFound(case_id)
    return case


async def list_cases(
    session: AsyncSession,
    who: Staff | Actor,
    *,
    status: str | Sequence[str] | None = None,
    topic: str | None = None,
    language: str | None = None,
    min_wait: timedelta | None = None,
    assigned_to: int | None = None,
    now: datetime | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[Case]:
    """The inbox of ``who``'s organisation, longest-waiting first, then newest.

    ``status``: "open" | "answered" | "closed" or several (default: open and answered);
    ``min_wait``: only cases whose resident has waited at least that long for staff.
    """
    actor = _actor(who)
    statuses = [status] if isinstance(status, str) else list(status or (CASE_OPEN, CASE_ANSWERED))
    statuses = [s for s in statuses if s in STAFF_VISIBLE]
    query = select(Case).where(Case.status.in_(statuses))
    if actor.org is not None:
        query = query.where(Case.org == actor.org)
    if topic:
        query = query.where(Case.topic == topic)
    if language:
        query = query.where(Case.language == language)
    if assigned_to is not None:
        query = query.where(Case.assigned_staff_id == assigned_to)
    if min_wait is not None:
        query = query.where(Case.waiting_since.is_not(None), Case.waiting_since <= _now(now) - min_wait)
    query = query.order_by(Case.waiting_since.is_(None), Case.waiting_since, Case.id.desc())
    return list((await session.execute(query.limit(limit).offset(offset))).scalars())


async def list_messages(session: AsyncSession, who: Staff | Actor, case_id: int, *,
                        include_notes: bool = True) -> list[CaseMessage]:
    """Every message of the case, oldest first (media rows loaded, bytes not)."""
    await get_case(session, who, case_id)
    query = select(CaseMessage).where(CaseMessage.case_id == case_id).order_by(CaseMessage.id)
    if not include_notes:
        query = query.where(CaseMessage.direction != DIR_NOTE)
    return list((await session.execute(query)).scalars())


async def get_media(session: AsyncSession, who: Staff | Actor, media_id: int) -> CaseMedia:
    """One stored image/file with its bytes (``data``), if ``who`` may see its case."""
    media = await session.scalar(select(CaseMedia).where(CaseMedia.id == media_id).options(undefer(CaseMedia.data)))
    if media is None:
        raise CaseNotFound(media_id)
    await get_case(session, who, media.case_id)
    return media


async def audit_log(session: AsyncSession, who: Staff | Actor, case_id: int) -> list[AuditEntry]:
    """The case's audit entries, oldest first."""
    await get_case(session, who, case_id)
    return list((await session.execute(
        select(AuditEntry).where(AuditEntry.case_id == case_id).order_by(AuditEntry.id))).scalars())


def transfer_targets(kb: Any, case: Case) -> list[str]:
    """Organisations a case can be transferred to (every partner but its current one)."""
    return [key for key in organisations(kb) if key != case.org]


# --------------------------------------------------------------------------- staff side: acting

async def _resident(session: AsyncSession, case: Case) -> User | None:
    return await session.get(User, case.user_id) if case.user_id is not None else None


def _write_button(kb: Any, case: Case) -> Choice:
    return Choice(_texts(kb).t("consult.btn.write", case.language, case_no=case.number), f"k:w:{case.id}")


def set_resident_mode(user: User, case_id: int | None, mode: str = "case") -> None:
    """Where the resident's next messages go (``users.state["consult"]``, read by flow.py):
    "case" = to the case, "bot" = to the matcher; ``case_id`` None forgets it."""
    state = dict(user.state or {})
    if case_id is None:
        state.pop("consult", None)
    else:
        state["consult"] = {"mode": mode, "case": case_id}
    user.state = state          # a fresh dict: nested changes are not tracked


async def _push(session: AsyncSession, case: Case, replies: list[Reply], kind: str,
                now: datetime) -> list[int]:
    user = await _resident(session, case)
    if user is None:
        return []
    return await enqueue(session, channel=user.channel, recipients=[user.platform_user_id], replies=replies,
                         kind=kind, ref=f"case:{case.id}", now=now)


async def staff_reply(session: AsyncSession, kb: Any, who: Staff | Actor, case_id: int, text: str, *,
                      now: datetime | None = None) -> CaseMessage:
    """Staff answer the resident: stored, pushed to the resident's chat through the outbox
    (in the same transaction), the SLA clock stops, "replied" is audited."""
    text = _clean(text, "reply")
    case = await get_case(session, who, case_id)
    if case.status == CASE_CLOSED or case.user_id is None:
        raise CaseClosed(f"case {case.number} is closed")
    now = _now(now)
    actor = _actor(who)
    message = await add_message(session, case, direction=DIR_OUT, text=text, who=actor, now=now)
    case.status = CASE_ANSWERED
    case.waiting_since = None
    case.due_at = None
    if case.first_response_at is None:
        case.first_response_at = now
    texts = _texts(kb)
    body = texts.t("consult.staff_reply", case.language, org=partner_name(kb, case.org, case.language),
                   case_no=case.number, text=text)
    await _push(session, case, [Reply(body, quick_replies=[_write_button(kb, case)])], "consult_reply", now)
    resident = await _resident(session, case)
    if resident is not None:
        # The resident will most likely just type their answer: it goes to the case, even
        # if they had gone back to the bot (the "Back to the bot" button is on every ack).
        set_resident_mode(resident, case.id)
    await audit(session, case, A_REPLIED, actor, now=now)
    return message


async def add_note(session: AsyncSession, who: Staff | Actor, case_id: int, text: str, *,
                   now: datetime | None = None) -> CaseMessage:
    """An internal note (never sent to the resident)."""
    text = _clean(text, "note")
    case = await get_case(session, who, case_id)
    now = _now(now)
    message = await add_message(session, case, direction=DIR_NOTE, text=text, who=who, now=now)
    await audit(session, case, A_NOTED, _actor(who), now=now)
    return message


async def assign(session: AsyncSession, who: Staff | Actor, case_id: int, staff_id: int | None = None, *,
                 now: datetime | None = None) -> Case:
    """Assign the case to ``staff_id`` (default: ``who`` — "assign to me"); the assignee must
    belong to the case's organisation."""
    case = await get_case(session, who, case_id)
    actor = _actor(who)
    target_id = staff_id if staff_id is not None else actor.staff_id
    if target_id is None:
        raise InvalidAction("no staff account to assign to")
    target = await session.get(Staff, target_id)
    if target is None or target.org != case.org or not target.active:
        raise InvalidAction("the assignee is not an active staff member of this organisation")
    case.assigned_staff_id = target.id
    await audit(session, case, A_ASSIGNED, actor, detail={"staff_id": target.id}, now=_now(now))
    return case


async def transfer(session: AsyncSession, kb: Any, who: Staff | Actor, case_id: int, to_org: str,
                   reason: str, *, now: datetime | None = None) -> Case:
    """Hand the case to another organisation with a reason: the resident is told (outbox
    push), the new organisation is notified, the SLA clock restarts, "transferred" is audited.
    After this the case is no longer visible to ``who``'s organisation."""
    reason = _clean(reason, "reason")
    case = await get_case(session, who, case_id)
    if case.status == CASE_CLOSED or case.user_id is None:
        raise CaseClosed(f"case {case.number} is closed")
    if to_org == case.org or to_org not in organisations(kb):
        raise InvalidAction(f"cannot transfer to {to_org!r}")
    now = _now(now)
    actor = _actor(who)
    from_org = case.org
    await add_message(session, case, direction=DIR_SYSTEM, kind="transfer", text=reason, who=actor,
                      extra={"from": from_org, "to": to_org}, now=now)
    case.org = to_org
    case.transfers = (case.transfers or 0) + 1
    case.assigned_staff_id = None
    case.status = CASE_OPEN
    case.waiting_since = now
    case.due_at = _due(kb, case, now)
    case.staff_reminded_at = None
    body = _texts(kb).t("consult.transferred", case.language, case_no=case.number,
                        org=partner_name(kb, to_org, case.language), reason=reason)
    await _push(session, case, [Reply(body, quick_replies=[_write_button(kb, case)])], "consult_transfer", now)
    await audit(session, case, A_TRANSFERRED, actor, detail={"from": from_org, "to": to_org}, now=now)
    await notify.notify_staff(session, kb, case, "transferred", now=now)
    return case


async def close(session: AsyncSession, kb: Any, who: Staff | Actor, case_id: int, outcome: str, *,
                now: datetime | None = None) -> Case:
    """Close the case with an outcome (one of ``OUTCOMES``); the resident is asked to rate it
    1–5 (outbox push with five buttons); "closed" is audited."""
    if outcome not in OUTCOMES:
        raise InvalidAction(f"unknown outcome {outcome!r} (one of {', '.join(OUTCOMES)})")
    case = await get_case(session, who, case_id)
    if case.status == CASE_CLOSED:
        raise CaseClosed(f"case {case.number} is already closed")
    now = _now(now)
    case.status = CASE_CLOSED
    case.closed_at = now
    case.outcome = outcome
    case.waiting_since = case.due_at = None
    texts = _texts(kb)
    body = texts.t("consult.closed", case.language, case_no=case.number,
                   org=partner_name(kb, case.org, case.language))
    buttons = [Choice(str(n), f"k:r:{case.id}:{n}") for n in RATING_RANGE]
    await _push(session, case, [Reply(body, quick_replies=buttons)], "consult_closed", now)
    await audit(session, case, A_CLOSED, _actor(who), detail={"outcome": outcome}, now=now)
    return case


# --------------------------------------------------------------------------- audit, privacy, stats

async def audit(session: AsyncSession, case: Case, action: str, who: Staff | Actor, *,
                detail: dict[str, Any] | None = None, now: datetime | None = None) -> AuditEntry:
    """Append one audit entry (never put message text in ``detail``)."""
    actor = _actor(who)
    entry = AuditEntry(case_id=case.id, at=_now(now), action=action, staff_id=actor.staff_id,
                       actor=actor.label, org=case.org, detail=detail)
    session.add(entry)
    await session.flush()
    return entry


def has_open_case(user_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """SQL condition: the user ``user_id`` (a column, e.g. ``User.id``) has a case that staff
    still work on (sent and not closed). Retention keeps such residents (bot/privacy.py)."""
    return exists().where(and_(Case.user_id == user_id, Case.status.not_in((CASE_CLOSED, CASE_DRAFT))))


async def anonymise_for_user(session: AsyncSession, user: User, *, now: datetime | None = None) -> int:
    """Forget-me: remove every message and image of the resident's cases and the link to
    them; drafts are deleted; sent cases stay as statistics (topic, organisation, language,
    times, rating) and open ones are closed with outcome "forgotten". Returns how many cases
    were anonymised. Called by ``bot.privacy.forget_user`` before the user row goes."""
    now = _now(now)
    cases = list((await session.execute(select(Case).where(Case.user_id == user.id))).scalars())
    count = 0
    for case in cases:
        if case.status == CASE_DRAFT:
            await discard_draft(session, case)
            continue
        await session.execute(delete(CaseMedia).where(CaseMedia.case_id == case.id))
        await session.execute(delete(CaseMessage).where(CaseMessage.case_id == case.id))
        if case.status != CASE_CLOSED:
            case.status, case.closed_at, case.outcome = CASE_CLOSED, now, OUTCOME_FORGOTTEN
            case.waiting_since = case.due_at = None
        case.user_id = None
        case.display_name = None
        case.anonymised_at = now
        await audit(session, case, A_ANONYMISED, SYSTEM, now=now)
        count += 1
    await session.flush()
    return count


async def prune_closed_cases(session: AsyncSession, *, older_than: timedelta,
                             now: datetime | None = None, limit: int = 500) -> int:
    """Retention (CASE_RETENTION_DAYS): cases closed before ``now - older_than`` lose their
    messages, images, the resident's display name and the link to the resident — like
    forget-me, statistics (topic, organisation, language, times, outcome, rating) stay.
    Each case is handled once (audited ``content_expired``); at most ``limit`` per call.
    Returns how many cases were pruned."""
    now = _now(now)
    cutoff = now - older_than
    has_content = or_(
        select(CaseMessage.id).where(CaseMessage.case_id == Case.id).exists(),
        Case.user_id.is_not(None), Case.display_name.is_not(None))
    stale = list((await session.execute(
        select(Case).where(Case.status == CASE_CLOSED, Case.closed_at < cutoff, has_content)
        .order_by(Case.id).limit(limit))).scalars())
    for case in stale:
        await session.execute(delete(CaseMedia).where(CaseMedia.case_id == case.id))
        await session.execute(delete(CaseMessage).where(CaseMessage.case_id == case.id))
        case.user_id = None
        case.display_name = None
        await audit(session, case, A_EXPIRED, SYSTEM, now=now)
    await session.flush()
    return len(stale)


async def rating_distribution(session: AsyncSession, *, org: str | None = None,
                              since: datetime | None = None) -> dict[int, int]:
    """How many closed cases got each rating 1–5 (0 = closed without a rating)."""
    query = select(Case.rating, func.count()).where(Case.status == CASE_CLOSED)
    if org:
        query = query.where(Case.org == org)
    if since:
        query = query.where(Case.closed_at >= since)
    counts: Counter[int] = Counter()
    for rating, n in (await session.execute(query.group_by(Case.rating))).all():
        counts[int(rating or 0)] += int(n)
    return {score: counts.get(score, 0) for score in (0, *RATING_RANGE)}
