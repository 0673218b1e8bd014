"""staff.session_version: console sessions revocable server-side

Revision ID: 0006_staff_session_version
Revises: 0002_consultations
Create Date: 2026-12-06

A console session cookie carries the account's session version; logging out raises it, so
the (signed, 12-hour) cookie of that session and every other session of the account stop
working at once (bot/web/console/auth.py).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_staff_session_version"
down_revision: str | Sequence[str] | None = "0002_consultations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("session_version")
