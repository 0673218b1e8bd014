"""ORM classes of event notices and garbage-day reminders (tables created by migration 0003_scheduler).

Owns: ``events`` (a city/partner event announced to opted-in residents: title and body per
language, targets, when it is published and whether a reminder goes out the day before;
``published_at`` / ``reminded_at`` are stamped in the same transaction as the outbox rows,
so a notice is queued at most once) and ``garbage_reminders_sent`` (one row per user and
collection date: the reminder for that date was queued; unique, so never twice).

The column list must match bot/db/migrations/versions/0003_scheduler.py (the scheduler
engineer's migration). Must not import the conversation core, channel adapters, platform
SDKs or Settings.
"""
from __future__ import annotations

import datetime as dt
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.models import Base, BigIntPK, UTCDateTime, utcnow

# events.status
EVENT_DRAFT = "draft"            # saved, never sent (no jobs scheduled)
EVENT_SCHEDULED = "scheduled"    # will be published at publish_at
EVENT_SENT = "sent"              # the notice was queued (published_at stamped)
EVENT_CANCELLED = "cancelled"    # nothing more is sent; pending notices were withdrawn
EVENT_STATUSES = (EVENT_DRAFT, EVENT_SCHEDULED, EVENT_SENT, EVENT_CANCELLED)


class Event(Base):
    """One event notice. ``title``/``body`` are ``{lang: text}``; empty target lists mean everyone."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_status_starts_at", "status", "starts_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[dict[str, Any]] = mapped_column(JSON())
    body: Mapped[dict[str, Any]] = mapped_column(JSON())
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    place: Mapped[str | None] = mapped_column(Text, default=None)
    map_url: Mapped[str | None] = mapped_column(String(1024), default=None)
    segments: Mapped[list[str]] = mapped_column(JSON(), default=list, server_default=sql_text("'[]'"))
    areas: Mapped[list[str]] = mapped_column(JSON(), default=list, server_default=sql_text("'[]'"))
    languages: Mapped[list[str]] = mapped_column(JSON(), default=list, server_default=sql_text("'[]'"))
    publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    remind_day_before: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(16), default=EVENT_DRAFT, server_default=EVENT_DRAFT)
    created_by: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.status}>"


class GarbageReminderSent(Base):
    """The garbage reminder for ``date`` (the collection day, Asia/Tokyo) was queued for ``user_id``."""

    __tablename__ = "garbage_reminders_sent"
    __table_args__ = (UniqueConstraint("user_id", "date"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    date: Mapped[dt.date] = mapped_column(Date)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
