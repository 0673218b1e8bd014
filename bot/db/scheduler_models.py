"""ORM classes of the disaster-alert pipeline (tables created by migration 0003_scheduler).

Owns: ``jma_feeds`` (conditional-request state per polled feed: ETag / Last-Modified),
``jma_entries`` (every feed entry id ever seen, so a repeated feed never resends),
``alerts`` (one pushed or dry-run alert, from JMA or an operator) and ``alert_recipients``
(who was sent an alert, through which outbox row — the basis of cancellations and of the
delivery report).

The same migration also creates ``events``, ``garbage_reminders_sent`` (their ORM classes
are the events engineer's, in bot/db/events_models.py) and ``apscheduler_jobs``
(APScheduler's job store on PostgreSQL; on SQLite the store is a sibling file, see
scheduler.runner.job_store_url).

Must not import the conversation core, channel adapters, platform SDKs or Settings.
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
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.models import Base, BigIntPK, UTCDateTime, utcnow

# jma_entries.status
ENTRY_SKIPPED = "skipped"        # title not relevant: never fetched
ENTRY_PENDING = "pending"        # relevant, not fetched yet (or the fetch failed: retried)
ENTRY_IGNORED = "ignored"        # fetched and assessed: nothing for the city (drill, other area…)
ENTRY_ALERTED = "alerted"        # fetched and an alert was created
ENTRY_FAILED = "failed"          # unreadable telegram after retries

# alerts.source
SOURCE_JMA = "jma"
SOURCE_MANUAL = "manual"


class JmaFeed(Base):
    """Conditional-request state of one polled Atom feed."""

    __tablename__ = "jma_feeds"

    url: Mapped[str] = mapped_column(String(512), primary_key=True)
    etag: Mapped[str | None] = mapped_column(String(256), default=None)
    last_modified: Mapped[str | None] = mapped_column(String(64), default=None)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: The last failed poll (network error, HTTP error, unreadable feed) and when it happened;
    #: shown in the console when it is newer than ``checked_at``.
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    error_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class JmaEntry(Base):
    """One feed entry (by its Atom id), remembered so it is fetched and pushed at most once."""

    __tablename__ = "jma_entries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(512), unique=True)
    feed_url: Mapped[str] = mapped_column(String(512))
    title: Mapped[str] = mapped_column(String(256))
    link: Mapped[str] = mapped_column(String(1024))
    updated: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(16), default=ENTRY_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    telegram_type: Mapped[str | None] = mapped_column(String(32), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    alert_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Alert(Base):
    """One alert sent to residents (or a cancellation of an earlier one).

    ``decision`` is the JSON of scheduler.jma.AlertDecision (or the operator's manual alert);
    ``texts`` the rendered message per language, kept for the report and audits.
    """

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_hazard_key", "hazard_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))                  # jma | manual
    kind: Mapped[str] = mapped_column(String(32))                    # weather, landslide, earthquake, tsunami, manual
    hazard_key: Mapped[str] = mapped_column(String(256))             # AlertDecision.key
    is_cancellation: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    cancels_alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="SET NULL"), default=None)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    level: Mapped[int | None] = mapped_column(Integer, default=None)
    entry_id: Mapped[str | None] = mapped_column(String(512), default=None)
    decision: Mapped[dict[str, Any]] = mapped_column(JSON())
    texts: Mapped[dict[str, Any]] = mapped_column(JSON())
    recipient_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AlertRecipient(Base):
    """A user an alert was queued for, and the outbox row (multicast batch) that carries it."""

    __tablename__ = "alert_recipients"
    __table_args__ = (UniqueConstraint("alert_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(16))
    outbox_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    send_after: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
