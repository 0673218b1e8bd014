"""web mailbox: durable pushes for web chat sessions

Revision ID: 0005_web_mailbox
Revises: 0001
Create Date: 2026-11-25

Table web_mailbox (ORM: bot.db.models.WebMailboxMessage): replies pushed to a web chat
session (consultation answers, alerts…) until the page polls GET /api/chat/updates. Its
own branch from the initial schema (upgrades run to "heads").
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_web_mailbox"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_mailbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("retry_key", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_web_mailbox_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_mailbox")),
        sa.UniqueConstraint("user_id", "retry_key", "position",
                            name=op.f("uq_web_mailbox_user_id_retry_key_position")),
    )
    op.create_index("ix_web_mailbox_delivered_at", "web_mailbox", ["delivered_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_web_mailbox_delivered_at", table_name="web_mailbox")
    op.drop_table("web_mailbox")
