"""The relational schema of kurashi (SQLAlchemy 2 declarative, typed ``Mapped[]``).

Owns the table and column names, which are a contract with the conversation core, the
channel adapters, the outbox relay and every Alembic migration. Tables are created only
by Alembic (bot/db/migrations); nothing calls ``metadata.create_all`` at runtime.

Must not import the conversation core, the channel adapters, platform SDKs or Settings:
it is imported by all of them.

Time: every timestamp column is ``UTCDateTime`` — timezone-aware UTC in Python on both
SQLite (which has no time zones and stores naive UTC text) and PostgreSQL
(``timestamp with time zone``). Local times of day (garbage reminder, quiet hours) are
plain "HH:MM" strings in Asia/Tokyo, because they are wall-clock preferences, not instants.

JSON columns: ``users.state`` is a ``MutableDict`` so ``user.state["k"] = v`` is saved, but
changes *nested inside* it are not tracked; assign a fresh dict (``user.state = {...}``)
when changing nested values.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy import text as sql_text  # a column is named ``text``
from sqlalchemy.ext.mutable import MutableDict, MutableList
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so later migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# User status values (users.status)
STATUS_ACTIVE = "active"
STATUS_UNFOLLOWED = "unfollowed"
STATUS_BLOCKED = "blocked"

# inbound_events.status / outbox.status values
EVENT_PENDING = "pending"
EVENT_PROCESSING = "processing"
EVENT_DONE = "done"
EVENT_FAILED = "failed"
OUTBOX_PENDING = "pending"
OUTBOX_SENT = "sent"
OUTBOX_FAILED = "failed"


def utcnow() -> datetime:
    """The current instant, timezone-aware UTC (the only clock default the models use)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite drops the offset (and returns naive values); naive values stored there are UTC
    by construction. A naive datetime passed in is refused: it is almost always a bug
    (local time mistaken for UTC).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # Keep one text format in SQLite so that string comparison = time comparison.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# BIGINT on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" auto-increments (and is 64-bit).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """One resident on one channel (the same person on LINE and Telegram is two users)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("channel", "platform_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    platform_user_id: Mapped[str] = mapped_column(String(128))
    language: Mapped[str | None] = mapped_column(String(16), default=None)
    area: Mapped[str | None] = mapped_column(String(64), default=None)        # district key
    segment: Mapped[str | None] = mapped_column(String(16), default=None)     # trainee/student/other
    opt_alerts: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    opt_events: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    opt_garbage: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    garbage_time: Mapped[str] = mapped_column(String(5), default="19:00", server_default="19:00")
    quiet_start: Mapped[str | None] = mapped_column(String(5), default=None)
    quiet_end: Mapped[str | None] = mapped_column(String(5), default=None)
    status: Mapped[str] = mapped_column(String(16), default=STATUS_ACTIVE, server_default=STATUS_ACTIVE)
    state: Mapped[dict[str, Any]] = mapped_column(
        MutableDict.as_mutable(JSON()), default=dict, server_default=sql_text("'{}'")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    feedback: Mapped[list[Feedback]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    unanswered: Mapped[list[Unanswered]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:  # no personal data in logs: ids only
        return f"<User {self.id} {self.channel}>"


class InboundEvent(Base):
    """A verified webhook event, stored before the webhook answers 200 (see DESIGN.md)."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("channel", "event_id"),
        Index("ix_inbound_events_status_received_at", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=EVENT_PENDING, server_default=EVENT_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Lease of a processor that claimed the row; an expired lease makes it claimable again.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Feedback(Base):
    """👍/👎 on one answered intent; ``question`` is kept only with 👎 (for operators)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    intent: Mapped[str] = mapped_column(String(128), index=True)
    vote: Mapped[int] = mapped_column(Integer)  # +1 / -1
    language: Mapped[str | None] = mapped_column(String(16), default=None)
    question: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user: Mapped[User] = relationship(back_populates="feedback")


class Unanswered(Base):
    """A question the bot declined, or clarified and the resident abandoned."""

    __tablename__ = "unanswered"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16), default=None)
    decision: Mapped[str] = mapped_column(String(32))  # "decline" | "clarify_abandoned"
    suggestions: Mapped[list[Any]] = mapped_column(
        MutableList.as_mutable(JSON()), default=list, server_default=sql_text("'[]'")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    user: Mapped[User] = relationship(back_populates="unanswered")


class OutboxMessage(Base):
    """One push waiting to be sent (or sent/failed): identical replies to 1..500 recipients.

    Written in the same transaction as the change that causes it (delivery.outbox.enqueue)
    and drained by delivery.outbox.OutboxRelay.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_send_after", "status", "send_after"),
        # The relay's claim (pending rows of a channel, due first): with a million sent rows
        # beside the pending ones, a scan and sort of all of them per claim without it.
        Index("ix_outbox_pending", "channel", "send_after", "id",
              postgresql_where=sql_text("status = 'pending'"), sqlite_where=sql_text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipients: Mapped[list[str]] = mapped_column(JSON())
    payload: Mapped[list[dict[str, Any]]] = mapped_column(JSON())  # list of Reply dicts
    kind: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    retry_key: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16), default=OUTBOX_PENDING, server_default=OUTBOX_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    send_after: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebMailboxMessage(Base):
    """One pushed reply (consultation answer, alert…) waiting for a web chat session to poll.

    Written by ``bot.channels.web.WebChannel.push`` (the outbox relay's sender for "web"),
    handed out once by ``GET /api/chat/updates`` (``delivered_at`` set in the same
    transaction), pruned some days after delivery; forget-me removes it with the user.
    ``(user_id, retry_key, position)`` is unique so a relay retry of the same outbox row
    stores nothing twice.
    """

    __tablename__ = "web_mailbox"
    __table_args__ = (
        UniqueConstraint("user_id", "retry_key", "position"),
        Index("ix_web_mailbox_delivered_at", "delivered_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    retry_key: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)            # index of the reply within its push
    payload: Mapped[dict[str, Any]] = mapped_column(JSON())   # one Reply dict (bot.channels.web.reply_to_json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class WebTurn(Base):
    """One line of a web chat session's recent conversation, so a reload shows it again.

    ``role`` is "user" (what the resident typed, or the label of the button pressed) or
    "bot" (one Reply dict, ``bot.channels.web.reply_to_json``). Written by bot/web/chat.py
    (bot.db.web_turns), at most WEB_TURNS_KEPT per session; forget-me and the web session
    retention remove them with the user (CASCADE).
    """

    __tablename__ = "web_turns"
    __table_args__ = (Index("ix_web_turns_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(8))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RateBudget(Base):
    """A send budget shared by every process (delivery/budget.py): a token bucket's level
    and when it was last updated (the database server's clock)."""

    __tablename__ = "rate_budget"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[float] = mapped_column(Float)
    stamp: Mapped[datetime] = mapped_column(UTCDateTime())
