"""Staff notifications of consultation cases.

Owns ``notify_staff``: a new case, a resident's follow-up, a transfer or an SLA reminder is
written to the outbox for the organisation's staff — a post in its staff Telegram group
(always carrying the case number ``K-00042``) and, for new/transferred/overdue cases, an
e-mail to the organisation's addresses and active staff accounts. Targets are deployment
data (``consult_org_settings``, set with ``kurashi staff notify``); which kinds an
organisation uses is ``notify`` in knowledge/partners.yaml. Also the reachability checks
routing and ``kurashi serve`` use (``reachable_orgs``, ``unreachable_orgs``).

The e-mail itself is sent by ``bot.channels.email.EmailSender`` (the outbox's "email"
channel); answers from a staff Telegram group are ``bot.consult.staff_group``.
Below ``bot.consult.cases`` (which calls ``notify_staff``); must not import cases, the
conversation engine, FastAPI or platform SDKs.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.consult.labels import segment_label, topic_label
from bot.consult.routing import organisations, partner_name
from bot.conversation.locale import Texts
from bot.db.consult_models import Case, CaseMessage, OrgSettings, Staff
from bot.db.models import utcnow
from bot.timefmt import jst
from delivery.messages import Card, Reply
from delivery.outbox import enqueue
from knowledge.schema import LANGUAGE_NAMES

log = logging.getLogger("kurashi.consult.notify")

TOKYO = ZoneInfo("Asia/Tokyo")
CASE_NUMBER = re.compile(r"\bK-(\d{5,})\b")
#: Events that also go by e-mail (follow-up messages only to the Telegram group).
EMAIL_EVENTS = frozenset({"new", "transferred", "reminder"})
MAX_QUOTE = 1500


def _local(at: datetime | None) -> str:
    return jst(at)


def staff_language(kb: Any, org: str) -> str:
    """The language ``org``'s staff read (knowledge/partners.yaml ``staff_language``, default ja)."""

    partner = organisations(kb).get(org)
    return partner.staff_language if partner is not None else "ja"


def _describe(kind: str, text: str | None, extra: dict[str, Any] | None) -> str:
    if kind in ("text", "edited"):
        return (text or "")[:MAX_QUOTE]
    if kind == "location" and extra:
        where = " ".join(str(extra.get(k)) for k in ("title", "address") if extra.get(k))
        return f"[location] {extra.get('latitude')},{extra.get('longitude')} {where}".strip()
    return f"[{kind}]"


async def _messages_text(session: AsyncSession, case: Case) -> str:
    rows = (await session.execute(
        select(CaseMessage).where(CaseMessage.case_id == case.id, CaseMessage.direction == "in")
        .order_by(CaseMessage.id))).scalars()
    parts = [_describe(m.kind, m.text, m.extra) for m in rows]
    body = "\n".join(p for p in parts if p)
    return body if len(body) <= MAX_QUOTE else body[:MAX_QUOTE] + "…"


def staff_text(kb: Any, case: Case, event: str, body: str, lang: str) -> str:
    """The staff notification text of ``event`` (new, message, transferred, reminder)."""

    texts = Texts(kb)
    # Staff read labels in their language ("仕事 Work", "技能実習生 …"), not the residents' easy
    # Japanese ("しごと") or keys ("trainee").
    return texts.t(
        f"staff.case_{event}", lang,
        case_no=case.number, org=partner_name(kb, case.org, lang), topic=topic_label(case.topic, lang),
        language=LANGUAGE_NAMES.get(case.language, case.language),
        segment=segment_label(case.segment, lang) if case.segment else "-",
        due=_local(case.due_at), body=body or "-",
    )


async def targets(session: AsyncSession, org: str) -> tuple[str | None, list[str]]:
    """(Telegram chat id, e-mail addresses) configured for ``org``."""
    settings = await session.get(OrgSettings, org)
    emails: list[str] = list(settings.emails or []) if settings is not None else []
    if settings is None or settings.email_staff:
        staff_emails = (await session.execute(
            select(Staff.email).where(Staff.org == org, Staff.active.is_(True)).order_by(Staff.id))).scalars()
        emails += list(staff_emails)
    return (settings.telegram_chat_id if settings is not None else None), list(dict.fromkeys(emails))


async def reachable_orgs(session: AsyncSession) -> set[str]:
    """Organisations whose staff can learn about a case: a staff Telegram group or an e-mail
    address registered (``kurashi staff notify``), or at least one active staff account
    (console login, and its e-mail). Routing skips the others (``unreachable_orgs``)."""
    found: set[str] = set()
    for org, chat, emails in (await session.execute(
            select(OrgSettings.org, OrgSettings.telegram_chat_id, OrgSettings.emails))).all():
        if chat or emails:
            found.add(org)
    found.update((await session.execute(
        select(Staff.org).where(Staff.active.is_(True)).distinct())).scalars())
    return found


async def unreachable_orgs(session: AsyncSession, kb: Any) -> frozenset[str]:
    """Partner organisations (knowledge/partners.yaml) nobody would hear a case for: no
    notification target and no active staff account."""

    return frozenset(set(organisations(kb)) - await reachable_orgs(session))


async def log_unreachable_orgs(session: AsyncSession, kb: Any) -> frozenset[str]:
    """The startup check. Organisations without staff are not an error — residents get their
    phone number and hours instead of a consultation (no case is created) — but the operator
    is told how to change that: a WARNING when no organisation can take consultations at
    all (a fresh installation), an INFO naming the ones routing skips otherwise."""
    missing = await unreachable_orgs(session, kb)
    partners = getattr(kb, "partners", None)
    if partners is None or not missing:
        return missing
    if partners.default in missing:
        log.warning(
            "consultations are not offered yet: no organisation has a staff account or a notification "
            "target, so residents who ask for a person get the organisation's phone number and opening "
            "hours instead (no case is created). To take consultations in the chat, add staff: "
            "`kurashi staff add --org %s --email ADDRESS` and/or `kurashi staff notify --org %s "
            "--telegram-chat CHAT_ID --email ADDRESS`; set CONSULT_RESPONSE_HOURS to the answer time "
            "agreed with the organisation (README, Consultations)",
            partners.default, partners.default, extra={"orgs": sorted(missing)})
    else:
        log.info("organisations without a staff account or notification target are skipped by routing "
                 "(kurashi staff add / kurashi staff notify)", extra={"orgs": sorted(missing)})
    return missing


async def log_startup_reachability(settings: Any) -> frozenset[str]:
    """``kurashi serve`` calls this once before starting: the ``log_unreachable_orgs`` lines."""
    from bot.db.session import create_engine_and_sessionmaker, upgrade_database
    from knowledge.loader import load_knowledge

    kb = load_knowledge(settings.knowledge_dir)
    await upgrade_database(settings.database_url)
    engine, maker = create_engine_and_sessionmaker(settings.database_url)
    try:
        async with maker() as session:
            return await log_unreachable_orgs(session, kb)
    finally:
        await engine.dispose()


async def notify_staff(session: AsyncSession, kb: Any, case: Case, event: str, *,
                       message: CaseMessage | None = None, now: datetime | None = None,
                       targets_cache: dict[str, tuple[str | None, list[str]]] | None = None) -> list[int]:
    """Queue the notifications of ``event`` for the case's organisation; returns outbox ids.

    Runs in the caller's transaction (the outbox row commits with the case change).
    ``targets_cache`` (org → targets) lets a job notifying many cases look targets up once.
    """
    now = now or utcnow()
    if targets_cache is not None and case.org in targets_cache:
        chat_id, emails = targets_cache[case.org]
    else:
        chat_id, emails = await targets(session, case.org)
        if targets_cache is not None:
            targets_cache[case.org] = (chat_id, emails)
    lang = staff_language(kb, case.org)
    if message is not None:
        body = _describe(message.kind, message.text, message.extra)
    else:
        body = await _messages_text(session, case)
    text = staff_text(kb, case, event, body, lang)
    ids: list[int] = []
    if chat_id:
        ids += await enqueue(session, channel="telegram", recipients=[chat_id], replies=[Reply(text)],
                             kind="staff_telegram", ref=f"case:{case.id}", now=now)
    if emails and event in EMAIL_EVENTS:
        subject = Texts(kb).t("staff.email_subject", lang, case_no=case.number,
                              event=Texts(kb).t(f"staff.event.{event}", lang))
        ids += await enqueue(session, channel="email", recipients=emails,
                             replies=[Reply(text, card=Card(title=subject, text=""))],
                             kind="staff_email", ref=f"case:{case.id}", now=now)
    if not ids:
        # The flow offers consultations only for organisations with staff; this still happens
        # for a case transferred, or sent after its organisation's staff were removed.
        log.error("no staff notification target for organisation: the case waits unseen",
                  extra={"org": case.org, "event": event, "case": case.number})
    return ids
