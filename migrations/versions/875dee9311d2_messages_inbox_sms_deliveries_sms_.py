"""messages: inbox, sms deliveries, sms settings, user locale

Revision ID: 875dee9311d2
Revises: 5b8e2f41c9a7
Create Date: 2026-12-05 06:06:08.328423

Issue 15: the inbox, SMS deliveries with their idempotency key and retry state, per-kind SMS choices, and the
language a user's messages are written in.
"""
from alembic import op
import sqlalchemy as sa

import credits.timeutil


# revision identifiers, used by Alembic.
revision = '875dee9311d2'
down_revision = '5b8e2f41c9a7'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('link', sa.String(length=255), nullable=True),
    sa.Column('key', sa.String(length=120), nullable=True),
    sa.Column('created_at', credits.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('read_at', credits.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('key', name=op.f('uq_notifications_key'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_user_unread', ['user_id', 'read_at', 'id'], unique=False)

    op.create_table('sms_settings',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('sms', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sms_settings_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'kind', name=op.f('pk_sms_settings'))
    )
    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('to', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('notification_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('not_before', credits.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', credits.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.Column('enqueued_at', credits.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', credits.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', credits.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("channel IN ('sms')", name=op.f('ck_deliveries_channel')),
    sa.CheckConstraint("status IN ('queued', 'sending', 'sent', 'failed')", name=op.f('ck_deliveries_status')),
    sa.CheckConstraint("status IN ('sent', 'failed') OR text IS NOT NULL OR notification_id IS NOT NULL", name=op.f('ck_deliveries_has_content')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_deliveries_attempts')),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_deliveries_notification_id_notifications'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_deliveries_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    sa.UniqueConstraint('key', name=op.f('uq_deliveries_key'))
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deliveries_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_notification_id'), ['notification_id'], unique=False)
        batch_op.create_index('ix_deliveries_status_not_before', ['status', 'not_before'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_user_id'), ['user_id'], unique=False)

    # A plain ADD COLUMN on SQLite too: rebuilding users would mean rebuilding every table that references it.
    op.add_column('users', sa.Column('locale', sa.String(length=10), server_default='zh_CN', nullable=False))



def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE users DROP COLUMN locale")
    else:
        op.drop_column('users', 'locale')

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_user_id'))
        batch_op.drop_index('ix_deliveries_status_not_before')
        batch_op.drop_index(batch_op.f('ix_deliveries_notification_id'))
        batch_op.drop_index(batch_op.f('ix_deliveries_created_at'))

    op.drop_table('deliveries')
    op.drop_table('sms_settings')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_user_unread')

    op.drop_table('notifications')
