"""consultations

Revision ID: 0002_consultations
Revises: 0001
Create Date: 2026-11-25

Tables of the consultations feature (bot/db/consult_models.py): staff, consult_cases,
consult_messages, consult_media, consult_audit, consult_org_settings, staff_login_attempts.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002_consultations'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('consult_org_settings',
    sa.Column('org', sa.String(length=64), nullable=False),
    sa.Column('telegram_chat_id', sa.String(length=32), nullable=True),
    sa.Column('emails', sa.JSON(), nullable=False),
    sa.Column('email_staff', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('org', name=op.f('pk_consult_org_settings'))
    )
    op.create_table('staff',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=True),
    sa.Column('role', sa.String(length=16), server_default='staff', nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('telegram_user_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff')),
    sa.UniqueConstraint('email', name=op.f('uq_staff_email'))
    )
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_org'), ['org'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_telegram_user_id'), ['telegram_user_id'], unique=False)

    op.create_table('staff_login_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_login_attempts'))
    )
    with op.batch_alter_table('staff_login_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_staff_login_attempts_address_at', ['address', 'at'], unique=False)
        batch_op.create_index('ix_staff_login_attempts_email_at', ['email', 'at'], unique=False)

    op.create_table('consult_cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='draft', nullable=False),
    sa.Column('topic', sa.String(length=32), nullable=False),
    sa.Column('org', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('segment', sa.String(length=16), nullable=True),
    sa.Column('intent', sa.String(length=128), nullable=True),
    sa.Column('display_name', sa.String(length=128), nullable=True),
    sa.Column('assigned_staff_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_activity_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('waiting_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('staff_reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resident_reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=64), nullable=True),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('rated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('transfers', sa.Integer(), server_default='0', nullable=False),
    sa.Column('anonymised_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['assigned_staff_id'], ['staff.id'], name=op.f('fk_consult_cases_assigned_staff_id_staff'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_consult_cases_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consult_cases'))
    )
    with op.batch_alter_table('consult_cases', schema=None) as batch_op:
        batch_op.create_index('ix_consult_cases_org_status', ['org', 'status'], unique=False)
        batch_op.create_index('ix_consult_cases_status_due_at', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_consult_cases_user_id'), ['user_id'], unique=False)

    op.create_table('consult_audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('org', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['consult_cases.id'], name=op.f('fk_consult_audit_case_id_consult_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_consult_audit_staff_id_staff'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consult_audit'))
    )
    with op.batch_alter_table('consult_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consult_audit_case_id'), ['case_id'], unique=False)

    op.create_table('consult_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('intent', sa.String(length=128), nullable=True),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('author', sa.String(length=128), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['consult_cases.id'], name=op.f('fk_consult_messages_case_id_consult_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_consult_messages_staff_id_staff'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_consult_messages_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consult_messages'))
    )
    with op.batch_alter_table('consult_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consult_messages_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consult_messages_user_id'), ['user_id'], unique=False)

    op.create_table('consult_media',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('mime_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=True),
    sa.Column('error', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['consult_cases.id'], name=op.f('fk_consult_media_case_id_consult_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['consult_messages.id'], name=op.f('fk_consult_media_message_id_consult_messages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_consult_media_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consult_media'))
    )
    with op.batch_alter_table('consult_media', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consult_media_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consult_media_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consult_media_user_id'), ['user_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('consult_media', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consult_media_user_id'))
        batch_op.drop_index(batch_op.f('ix_consult_media_message_id'))
        batch_op.drop_index(batch_op.f('ix_consult_media_case_id'))

    op.drop_table('consult_media')
    with op.batch_alter_table('consult_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consult_messages_user_id'))
        batch_op.drop_index(batch_op.f('ix_consult_messages_case_id'))

    op.drop_table('consult_messages')
    with op.batch_alter_table('consult_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consult_audit_case_id'))

    op.drop_table('consult_audit')
    with op.batch_alter_table('consult_cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consult_cases_user_id'))
        batch_op.drop_index('ix_consult_cases_status_due_at')
        batch_op.drop_index('ix_consult_cases_org_status')

    op.drop_table('consult_cases')
    with op.batch_alter_table('staff_login_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_login_attempts_email_at')
        batch_op.drop_index('ix_staff_login_attempts_address_at')

    op.drop_table('staff_login_attempts')
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_telegram_user_id'))
        batch_op.drop_index(batch_op.f('ix_staff_org'))

    op.drop_table('staff')
    op.drop_table('consult_org_settings')

