"""experience: web chat recent turns, canned replies in the DB, JMA poll errors

Revision ID: 0006_experience
Revises: 0002_consultations, 0003_scheduler, 0005_web_mailbox
Create Date: 2026-12-06

- web_turns (bot.db.models.WebTurn): the recent conversation of a web chat session, so a
  page reload shows it again (CASCADE with the user: forget-me and retention remove it).
- consult_canned_replies (bot.db.consult_models.CannedReply): canned staff replies per
  key, language and topic, edited by operators in the console.
- jma_feeds.last_error / error_at: the last failed poll of a feed, shown in the console.

Merges the three branches that existed (consultations, scheduler, web mailbox).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_experience"
down_revision: str | Sequence[str] | None = ("0002_consultations", "0003_scheduler", "0005_web_mailbox")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_turns",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_web_turns_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_turns")),
    )
    op.create_index("ix_web_turns_user_id_id", "web_turns", ["user_id", "id"], unique=False)
    op.create_table(
        "consult_canned_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=32), server_default="", nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["updated_by"], ["staff.id"], name=op.f("fk_consult_canned_replies_updated_by_staff"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consult_canned_replies")),
        sa.UniqueConstraint("key", "language", name=op.f("uq_consult_canned_replies_key_language")),
    )
    with op.batch_alter_table("jma_feeds") as batch:
        batch.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("error_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jma_feeds") as batch:
        batch.drop_column("error_at")
        batch.drop_column("last_error")
    op.drop_table("consult_canned_replies")
    op.drop_index("ix_web_turns_user_id_id", table_name="web_turns")
    op.drop_table("web_turns")
