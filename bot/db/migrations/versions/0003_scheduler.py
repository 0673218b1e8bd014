"""scheduler: JMA alerts, events, garbage reminders, APScheduler job store

Revision ID: 0003_scheduler
Revises: 0001
Create Date: 2026-11-25

Tables:
- jma_feeds, jma_entries, alerts, alert_recipients (ORM: bot/db/scheduler_models.py);
- events, garbage_reminders_sent (ORM: bot/db/events_models.py, the events engineer's;
  columns as specified in /work/team/EVENTS.md, plus nullable published_at/reminded_at);
- apscheduler_jobs: APScheduler 3's SQLAlchemyJobStore table (same columns as it would
  create itself), so that two processes never race on creating it. Used on PostgreSQL;
  on SQLite the job store is a sibling file (scheduler.runner.job_store_url: the store is
  synchronous and must not wait on the app's own write transactions).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_scheduler"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "jma_feeds",
        sa.Column("url", sa.String(length=512), nullable=False),
        sa.Column("etag", sa.String(length=256), nullable=True),
        sa.Column("last_modified", sa.String(length=64), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("url", name=op.f("pk_jma_feeds")),
    )
    op.create_table(
        "jma_entries",
        sa.Column("id", _ID, nullable=False),
        sa.Column("entry_id", sa.String(length=512), nullable=False),
        sa.Column("feed_url", sa.String(length=512), nullable=False),
        sa.Column("title", sa.String(length=256), nullable=False),
        sa.Column("link", sa.String(length=1024), nullable=False),
        sa.Column("updated", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("telegram_type", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("alert_id", sa.BigInteger(), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jma_entries")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_jma_entries_entry_id")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("hazard_key", sa.String(length=256), nullable=False),
        sa.Column("is_cancellation", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("cancels_alert_id", _ID, nullable=True),
        sa.Column("urgent", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("entry_id", sa.String(length=512), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("recipient_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["cancels_alert_id"], ["alerts.id"],
                                name=op.f("fk_alerts_cancels_alert_id_alerts"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_hazard_key", ["hazard_key"], unique=False)

    op.create_table(
        "alert_recipients",
        sa.Column("id", _ID, nullable=False),
        sa.Column("alert_id", _ID, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("send_after", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"],
                                name=op.f("fk_alert_recipients_alert_id_alerts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_alert_recipients_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_recipients")),
        sa.UniqueConstraint("alert_id", "user_id", name=op.f("uq_alert_recipients_alert_id_user_id")),
    )
    # (alert_id, user_id) is unique, which also serves look-ups by alert; user_id is indexed for
    # ON DELETE CASCADE ("forget me"). No more indexes: an alert inserts 100,000s of these rows.
    with op.batch_alter_table("alert_recipients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_recipients_user_id"), ["user_id"], unique=False)

    # --- events (issue 5 part B; columns from /work/team/EVENTS.md) ---------------------
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.JSON(), nullable=False),              # {lang: text}
        sa.Column("body", sa.JSON(), nullable=False),               # {lang: text}
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("place", sa.Text(), nullable=True),
        sa.Column("map_url", sa.String(length=1024), nullable=True),
        sa.Column("segments", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("areas", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("languages", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("publish_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remind_day_before", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="draft", nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_status_starts_at", ["status", "starts_at"], unique=False)

    op.create_table(
        "garbage_reminders_sent",
        sa.Column("id", _ID, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_garbage_reminders_sent_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_garbage_reminders_sent")),
        sa.UniqueConstraint("user_id", "date", name=op.f("uq_garbage_reminders_sent_user_id_date")),
    )

    # --- APScheduler 3 SQLAlchemyJobStore (apscheduler/jobstores/sqlalchemy.py) ---------
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apscheduler_jobs")),
    )
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_apscheduler_jobs_next_run_time", ["next_run_time"], unique=False)


def downgrade() -> None:
    op.drop_table("apscheduler_jobs")
    op.drop_table("garbage_reminders_sent")
    op.drop_table("events")
    op.drop_table("alert_recipients")
    op.drop_table("alerts")
    op.drop_table("jma_entries")
    op.drop_table("jma_feeds")
