"""Staff notifications of consultation cases, and the staff Telegram group relay.

Owns:
- ``notify_staff``: a new case, a resident's follow-up, a transfer or an SLA reminder is
  written to the outbox for the organisation's staff — a post in its staff Telegram group
  (always carrying the case number ``K-00042``) and, for new/transferred/overdue cases,
  an e-mail to the organisation's addresses and active staff accounts. Targets are
  deployment data (``consult_org_settings``, set with ``kurashi staff notify``); which
  kinds an organisation uses is ``notify`` in knowledge/partners.yaml.
- ``EmailSender``: the outbox's ``ChannelSender`` for channel "email" (aiosmtplib to
  ``SMTP_URL``: ``smtp://user:pass@host:port``, ``smtps://`` for implicit TLS).
- ``handle_staff_group_update``: a Telegram update from a configured staff group. A
  message that *replies to the bot's post about a case* is relayed to the resident as a
  staff reply (``cases.staff_reply``); the bot confirms in the group. Two commands work the
  same way, as a reply to a case post: ``/close`` (closes it with outcome "resolved"; the
  resident is asked for a rating) and ``/note TEXT`` (an internal note, not sent).

Who may answer from the group (the choice asked for in issue 4): **any member of the
organisation's configured staff group**. The group is the organisation's private staff
room, so posting there is treated as acting for the organisation. Replies are accepted
only for cases of the organisation(s) that configured that group, only as replies to the
bot's own post, and are audited as ``telegram:<user id> <first name>`` — attributed to a
staff account when its ``telegram_user_id`` is linked (``kurashi staff add --telegram-id``).
Bots in groups with privacy mode on still receive replies to their own messages, so no
BotFather change is needed.

Must not import the conversation engine, FastAPI or platform SDKs (the Telegram update is
read as the raw JSON the webhook stored).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.consult_models import Case, CaseMessage, OrgSettings, Staff
from bot.db.models import utcnow
from bot.timefmt import jst
from delivery.messages import Card, Reply
from delivery.senders import PermanentFailure, RetryLater
from knowledge.schema import LANGUAGE_NAMES

log = logging.getLogger("kurashi.consult.notify")

TOKYO = ZoneInfo("Asia/Tokyo")
CASE_NUMBER = re.compile(r"\bK-(\d{5,})\b")
#: Events that also go by e-mail (follow-up messages only to the Telegram group).
EMAIL_EVENTS = frozenset({"new", "transferred", "reminder"})
MAX_QUOTE = 1500


def _local(at: datetime | None) -> str:
    return jst(at)


def _staff_language(kb: Any, org: str) -> str:
    from bot.consult.cases import organisations

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
    from bot.consult.cases import partner_name
    from bot.consult.labels import segment_label, topic_label
    from bot.conversation.locale import Texts

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
    from bot.consult.cases import organisations

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
    from delivery.outbox import enqueue

    now = now or utcnow()
    if targets_cache is not None and case.org in targets_cache:
        chat_id, emails = targets_cache[case.org]
    else:
        chat_id, emails = await targets(session, case.org)
        if targets_cache is not None:
            targets_cache[case.org] = (chat_id, emails)
    lang = _staff_language(kb, case.org)
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
        from bot.conversation.locale import Texts

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


# --------------------------------------------------------------------------- e-mail sender

class EmailSender:
    """``ChannelSender`` for channel "email": one message per outbox row, through SMTP_URL."""

    channel = "email"
    max_recipients = 1

    def __init__(self, smtp_url: str, sender: str = "kurashi@localhost", *, timeout: float = 30.0) -> None:
        parts = urlsplit(smtp_url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("SMTP_URL must start with smtp:// or smtps://")
        self.hostname = parts.hostname or "localhost"
        self.use_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.use_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Any) -> EmailSender | None:
        url = getattr(settings, "smtp_url", None)
        return cls(url, getattr(settings, "smtp_from", "kurashi@localhost")) if url else None

    def build(self, recipients: Sequence[str], replies: Sequence[Reply], retry_key: str) -> EmailMessage:
        first = replies[0] if replies else Reply("")
        subject = first.card.title if first.card is not None else (first.text.splitlines() or ["kurashi"])[0]
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject[:200]
        message["Date"] = formatdate(localtime=False)
        # The outbox row's retry key: the same e-mail retried keeps its Message-ID.
        message["Message-ID"] = f"<{retry_key}@kurashi.local>"
        message.set_content("\n\n".join(r.text for r in replies if r.text))
        return message

    async def push(self, recipients: Sequence[str], replies: Sequence[Reply], *, retry_key: str) -> None:
        import aiosmtplib

        message = self.build(recipients, replies, retry_key)
        try:
            await aiosmtplib.send(message, hostname=self.hostname, port=self.port, username=self.username,
                                  password=self.password, use_tls=self.use_tls, timeout=self.timeout)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"recipients refused: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise PermanentFailure(f"SMTP {exc.code}") from exc
            raise RetryLater(f"SMTP {exc.code}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise RetryLater(f"SMTP unavailable: {type(exc).__name__}") from exc

    async def close(self) -> None:  # nothing kept open between messages
        return None


# --------------------------------------------------------------------------- staff group relay

def _group_message(event: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(message, chat id) of a Telegram update from a group, else (None, None)."""
    for key in ("message", "edited_message"):
        message = event.get(key)
        if isinstance(message, dict):
            chat = message.get("chat") or {}
            if chat.get("type") in ("group", "supergroup"):
                return (message if key == "message" else None), str(chat.get("id"))
            return None, None
    query = event.get("callback_query")
    if isinstance(query, dict):
        chat = ((query.get("message") or {}).get("chat")) or {}
        if chat.get("type") in ("group", "supergroup"):
            return None, str(chat.get("id"))
    member = event.get("my_chat_member")
    if isinstance(member, dict):
        chat = member.get("chat") or {}
        if chat.get("type") in ("group", "supergroup"):
            return None, str(chat.get("id"))
    return None, None


async def handle_staff_group_update(services: Any, channel: str, event: dict[str, Any]) -> bool:
    """Handle a Telegram update coming from a configured staff group; True when it was one
    (then nothing else must handle it), False for every other update."""
    if channel != "telegram" or not isinstance(event, dict):
        return False
    message, chat_id = _group_message(event)
    if chat_id is None:
        return False
    from bot.consult import cases
    from bot.conversation.locale import Texts
    from delivery.outbox import enqueue

    adapter = services.channels.get("telegram")
    bot_id = getattr(adapter, "bot_id", None)
    answer_key: str | None = None
    case_no = ""
    async with services.sessionmaker() as session, session.begin():
        orgs = list((await session.execute(
            select(OrgSettings.org).where(OrgSettings.telegram_chat_id == chat_id))).scalars())
        if not orgs:
            if message is None and isinstance(event.get("my_chat_member"), dict):
                # Tell the operator how to make this group an organisation's staff group.
                log.info("telegram group is not a staff group; register it with "
                         "`kurashi staff notify --org ORG --telegram-chat %s`", chat_id)
            return False
        if message is None:
            return True                                   # edits, buttons, membership changes
        reply_to = message.get("reply_to_message") or {}
        text = message.get("text") or message.get("caption")
        sender = message.get("from") or {}
        if not reply_to or not text or sender.get("is_bot"):
            return True                                   # staff talking among themselves
        if bot_id is not None and (reply_to.get("from") or {}).get("id") != bot_id:
            return True                                   # a reply to a colleague, not to a case post
        match = CASE_NUMBER.search(reply_to.get("text") or "")
        lang = _staff_language(services.kb, orgs[0])
        case = await session.get(Case, int(match.group(1))) if match else None
        if case is None or case.org not in orgs:
            answer_key = "staff.relay_unknown"
        else:
            case_no = case.number
            lang = _staff_language(services.kb, case.org)
            staff = await session.scalar(select(Staff).where(
                Staff.telegram_user_id == sender.get("id"), Staff.org == case.org, Staff.active.is_(True)))
            actor = cases.Actor.telegram(case.org, sender.get("id", "?"), sender.get("first_name"), staff)
            command, _, rest = text.strip().partition(" ")
            command = command.split("@", 1)[0].lower()
            try:
                if command == "/close":
                    await cases.close(session, services.kb, actor, case.id, "resolved")
                    answer_key = "staff.closed_ok"
                elif command == "/note" and rest.strip():
                    await cases.add_note(session, actor, case.id, rest)
                    answer_key = "staff.noted_ok"
                else:
                    await cases.staff_reply(session, services.kb, actor, case.id, text)
                    answer_key = "staff.relay_ok"
            except (cases.CaseClosed, cases.CaseNotFound):
                answer_key = "staff.relay_closed"
            except cases.InvalidAction:
                answer_key = "staff.relay_unknown"
        note = Texts(services.kb).t(answer_key, lang, case_no=case_no or "-")
        await enqueue(session, channel="telegram", recipients=[chat_id], replies=[Reply(note)],
                      kind="staff_telegram", ref=f"case:{case.id}" if case is not None else None)
    notify = getattr(services.relay, "notify", None)
    if notify is not None:
        notify()
    return True
