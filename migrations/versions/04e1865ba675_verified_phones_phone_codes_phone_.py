"""verified phones: phone codes, phone_verified_at, calendar token

Revision ID: 04e1865ba675
Revises: 875dee9311d2
Create Date: 2026-12-05 06:19:07.946248

Issue 15: SMS verification codes (hashed, per phone and purpose), the time a user's phone was last verified, and
the hash of the secret token of their calendar feed.
"""
from alembic import op
import sqlalchemy as sa

import credits.timeutil


# revision identifiers, used by Alembic.
revision = '04e1865ba675'
down_revision = '875dee9311d2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('phone_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=11), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', credits.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', credits.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', credits.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("purpose IN ('register', 'reset', 'change_phone')", name=op.f('ck_phone_codes_purpose')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_phone_codes_attempts')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_phone_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_codes'))
    )
    with op.batch_alter_table('phone_codes', schema=None) as batch_op:
        batch_op.create_index('ix_phone_codes_phone_purpose', ['phone', 'purpose', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_phone_codes_user_id'), ['user_id'], unique=False)

    # Plain ALTERs, no batch: a batch would rebuild `users` on SQLite, and the rebuilt table's foreign keys would
    # stop the earlier migrations' downgrades from dropping their columns.
    op.add_column('users', sa.Column('phone_verified_at', credits.timeutil.UTCDateTime(timezone=True), nullable=True))
    op.add_column('users', sa.Column('calendar_token_hash', sa.String(length=64), nullable=True))
    op.create_index(op.f('ix_users_calendar_token_hash'), 'users', ['calendar_token_hash'], unique=True)



def downgrade():
    op.drop_index(op.f('ix_users_calendar_token_hash'), table_name='users')
    op.drop_column('users', 'calendar_token_hash')
    op.drop_column('users', 'phone_verified_at')

    with op.batch_alter_table('phone_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phone_codes_user_id'))
        batch_op.drop_index('ix_phone_codes_phone_purpose')

    op.drop_table('phone_codes')
