"""users.large_mode: 长辈模式 kept on the account, so it follows the person to another phone

Revision ID: 7d3a9c1e5f20
Revises: 04e1865ba675
Create Date: 2026-12-05 06:20:00.000000
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7d3a9c1e5f20'
down_revision = '04e1865ba675'
branch_labels = None
depends_on = None


def upgrade():
    # A server default fills the existing rows (everyone starts in the standard mode) on both SQLite and PostgreSQL.
    op.add_column("users", sa.Column("large_mode", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        # In place, as SQLite 3.35 can: rebuilding users would mean rebuilding every table that references it.
        op.execute("ALTER TABLE users DROP COLUMN large_mode")
    else:
        op.drop_column("users", "large_mode")
