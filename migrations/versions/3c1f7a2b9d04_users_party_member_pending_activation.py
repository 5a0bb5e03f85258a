"""users.party_member and users.pending_activation: organisations' rosters (SPEC 2.8)

Revision ID: 3c1f7a2b9d04
Revises: 7d3a9c1e5f20
Create Date: 2026-12-05 09:10:00.000000
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '3c1f7a2b9d04'
down_revision = '7d3a9c1e5f20'
branch_labels = None
depends_on = None

COLUMNS = ("party_member", "pending_activation")


def upgrade():
    # Server defaults fill the existing rows: nobody is known to be a party member, everybody has a password.
    for name in COLUMNS:
        op.add_column("users", sa.Column(name, sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    for name in reversed(COLUMNS):
        if op.get_bind().dialect.name == "sqlite":
            # In place, as SQLite 3.35 can: rebuilding users would mean rebuilding every table that references it.
            op.execute(f"ALTER TABLE users DROP COLUMN {name}")
        else:
            op.drop_column("users", name)
