"""delivery: partial index of pending outbox rows; rate_budget for a send budget shared by processes

Revision ID: 0007_delivery_budget
Revises: 0001
Create Date: 2026-12-06

- ix_outbox_pending (channel, send_after, id) WHERE status = 'pending': the relay's claim
  reads due pending rows of one channel in order; with a million sent rows beside them it
  was a full scan and a sort per claim (690 ms), with the index an index range (≈0.4 ms).
- rate_budget: one row per budget shared by every process (delivery/budget.py: Telegram's
  ~30 messages/s is per bot, not per relay).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_delivery_budget"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_pending", "outbox", ["channel", "send_after", "id"], unique=False,
                    postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
    op.create_table(
        "rate_budget",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("level", sa.Float(), nullable=False),
        sa.Column("stamp", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rate_budget")),
    )


def downgrade() -> None:
    op.drop_table("rate_budget")
    op.drop_index("ix_outbox_pending", table_name="outbox")
