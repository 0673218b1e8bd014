"""Tables of the consultations feature (issue 4): staff, cases, their messages and media,
the audit log, per-organisation notification targets and login attempts.

Owns the table and column names of ``staff``, ``consult_cases``, ``consult_messages``,
``consult_media``, ``consult_audit``, ``consult_org_settings`` and ``staff_login_attempts``
(migration ``0002_consultations``). Service functions over them live in
``bot/consult/cases.py``; nothing else should write these tables.

Must not import the conversation core, channel adapters, platform SDKs or Settings.

Forget-me (privacy): every row that holds what a resident wrote or what staff wrote to
them carries ``user_id`` with ``ON DELETE CASCADE`` (messages, media), and the case keeps
only ``ON DELETE SET NULL`` — so deleting the ``users`` row removes the conversation but
keeps the statistics (topic, organisation, language, times, rating). ``cases.anonymise_for_user``
does the same explicitly through the ORM and records it in the audit log.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.db.models import Base, BigIntPK, UTCDateTime, utcnow

# consult_cases.status
CASE_DRAFT = "draft"          # the resident is still writing (not visible to staff)
CASE_OPEN = "open"            # waiting for staff
CASE_ANSWERED = "answered"    # staff replied last; waiting for the resident
CASE_CLOSED = "closed"
CASE_STATUSES = (CASE_DRAFT, CASE_OPEN, CASE_ANSWERED, CASE_CLOSED)
#: Statuses staff see in the console (drafts are the resident's own until sent).
STAFF_VISIBLE = (CASE_OPEN, CASE_ANSWERED, CASE_CLOSED)

# consult_messages.direction
DIR_IN = "in"          # from the resident
DIR_OUT = "out"        # a staff reply relayed to the resident
DIR_NOTE = "note"      # internal note, never sent to the resident
DIR_SYSTEM = "system"  # e.g. "transferred from …" (shown to staff)

# staff.role
ROLE_STAFF = "staff"
ROLE_OPERATOR = "operator"
ROLES = (ROLE_STAFF, ROLE_OPERATOR)


def case_number(case_id: int) -> str:
    """The number residents and staff quote: ``K-00042``."""
    return f"K-{case_id:05d}"


class Staff(Base):
    """A staff account of one partner organisation (``org`` = key in knowledge/partners.yaml)."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org: Mapped[str] = mapped_column(String(64), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)   # stored lower-case
    name: Mapped[str | None] = mapped_column(String(128), default=None)
    role: Mapped[str] = mapped_column(String(16), default=ROLE_STAFF, server_default=ROLE_STAFF)
    password_hash: Mapped[str] = mapped_column(String(255))        # argon2id
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    #: Optional link to a Telegram account (staff-group replies are then attributed to it).
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Console sessions carry this number; raising it (logout) ends every session of the account.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def __repr__(self) -> str:
        return f"<Staff {self.id} {self.org}>"


class Case(Base):
    """One consultation: a resident's problem handed to one organisation."""

    __tablename__ = "consult_cases"
    __table_args__ = (
        Index("ix_consult_cases_org_status", "org", "status"),
        Index("ix_consult_cases_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: NULL after forget-me (the statistics stay).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True,
                                                default=None)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=CASE_DRAFT, server_default=CASE_DRAFT)
    topic: Mapped[str] = mapped_column(String(32))
    org: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    segment: Mapped[str | None] = mapped_column(String(16), default=None)
    #: The knowledge intent the resident came from (e.g. work.unpaid_wages), if any.
    intent: Mapped[str | None] = mapped_column(String(128), default=None)
    #: The platform display name (LINE/Telegram); removed on forget-me.
    display_name: Mapped[str | None] = mapped_column(String(128), default=None)
    assigned_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"),
                                                          default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)     # sent by the resident
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Since when a resident message waits for staff (NULL = staff spoke last / closed).
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: When the organisation promised an answer to the waiting message (SLA).
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    staff_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    resident_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    outcome: Mapped[str | None] = mapped_column(String(64), default=None)
    rating: Mapped[int | None] = mapped_column(Integer, default=None)                  # 1..5
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    transfers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    messages: Mapped[list[CaseMessage]] = relationship(
        back_populates="case", cascade="all, delete-orphan", passive_deletes=True,
        order_by="CaseMessage.id",
    )

    @property
    def number(self) -> str:
        return case_number(self.id)

    def __repr__(self) -> str:
        return f"<Case {self.id} {self.org} {self.status}>"


class CaseMessage(Base):
    """One message of a case: from the resident (in), staff reply (out), internal note, system line."""

    __tablename__ = "consult_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("consult_cases.id", ondelete="CASCADE"), index=True)
    #: The case's resident, so that forget-me removes the text with the user row (CASCADE).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True,
                                                default=None)
    direction: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16), default="text")   # text/image/sticker/location/…
    text: Mapped[str | None] = mapped_column(Text, default=None)
    #: Detected language of an incoming text and the knowledge intent the matcher saw in it.
    language: Mapped[str | None] = mapped_column(String(16), default=None)
    intent: Mapped[str | None] = mapped_column(String(128), default=None)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"), default=None)
    #: Who wrote it when not a staff account (e.g. "telegram:123 Aiko").
    author: Mapped[str | None] = mapped_column(String(128), default=None)
    #: Kind-specific data: location {latitude, longitude, address, title}, media {platform_id, mime_type}.
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    case: Mapped[Case] = relationship(back_populates="messages")
    media: Mapped[list[CaseMedia]] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )


class CaseMedia(Base):
    """Bytes of an image (or other file) the resident sent during a case, fetched from the platform."""

    __tablename__ = "consult_media"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("consult_messages.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("consult_cases.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True,
                                                default=None)
    mime_type: Mapped[str] = mapped_column(String(64), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)
    #: NULL when the platform did not give the content (``error`` says why).
    data: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)
    error: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    message: Mapped[CaseMessage] = relationship(back_populates="media")


class AuditEntry(Base):
    """Who opened, replied to, transferred, closed (… ) a case, and when. Never holds message text."""

    __tablename__ = "consult_audit"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("consult_cases.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: opened, replied, noted, assigned, transferred, closed, rated, reminded, anonymised, resident_wrote
    action: Mapped[str] = mapped_column(String(32))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"), default=None)
    #: "staff:<id>", "telegram:<user id>", "resident", "system"
    actor: Mapped[str] = mapped_column(String(128))
    org: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON(), default=None)


class OrgSettings(Base):
    """Where one organisation's staff are notified (deployment data, not public facts).

    ``kurashi staff notify --org ORG --telegram-chat ID --email E`` writes it; e-mails also
    go to every active staff account of the organisation.
    """

    __tablename__ = "consult_org_settings"

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    telegram_chat_id: Mapped[str | None] = mapped_column(String(32), default=None)
    emails: Mapped[list[str]] = mapped_column(JSON(), default=list)
    email_staff: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LoginAttempt(Base):
    """Staff console login attempts, for rate limiting (by e-mail and by client address)."""

    __tablename__ = "staff_login_attempts"
    __table_args__ = (
        Index("ix_staff_login_attempts_email_at", "email", "at"),
        Index("ix_staff_login_attempts_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str | None] = mapped_column(String(64), default=None)
    ok: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CannedReply(Base):
    """A canned staff reply in one language, kept by operators in the console (``/console/canned``).

    Rows with the same ``key`` are one reply in several languages; ``topic`` (a consultation
    topic of knowledge.schema.CONSULT_TOPICS, or "" for every topic) decides on which cases it
    is offered. The case page inserts the text in the case's language and shows the Japanese
    text beside it for the staff member. While the table is empty, the case page offers
    ``canned_replies`` of knowledge/partners.yaml (an operator can import them here).
    """

    __tablename__ = "consult_canned_replies"
    __table_args__ = (UniqueConstraint("key", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(32), default="", server_default="")
    language: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"), default=None)
