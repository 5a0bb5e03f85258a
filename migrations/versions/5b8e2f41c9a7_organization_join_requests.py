"""organisation join requests: registration asks to join, the organisation's coordinators confirm

Revision ID: 5b8e2f41c9a7
Revises: 38b13ffec645
Create Date: 2026-12-10 09:00:00.000000

Existing members stay members: only new registrations go through a request.
"""
import sqlalchemy as sa
from alembic import op

import credits.timeutil

# revision identifiers, used by Alembic.
revision = '5b8e2f41c9a7'
down_revision = '38b13ffec645'
branch_labels = None
depends_on = None


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade():
    if _sqlite():
        # SQLite adds a nullable column with its REFERENCES in place; rebuilding users would mean rebuilding every
        # table that references it.
        op.execute("ALTER TABLE users ADD COLUMN requested_organization_id INTEGER "
                   "CONSTRAINT fk_users_requested_organization_id_organizations REFERENCES organizations (id)")
        op.add_column("users", sa.Column("organization_requested_at", credits.timeutil.UTCDateTime(timezone=True),
                                         nullable=True))
    else:
        op.add_column("users", sa.Column("requested_organization_id", sa.Integer(), nullable=True))
        op.add_column("users", sa.Column("organization_requested_at", credits.timeutil.UTCDateTime(timezone=True),
                                         nullable=True))
        op.create_foreign_key(op.f("fk_users_requested_organization_id_organizations"), "users", "organizations",
                              ["requested_organization_id"], ["id"])
    op.create_index(op.f("ix_users_requested_organization_id"), "users", ["requested_organization_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_users_requested_organization_id"), table_name="users")
    if _sqlite():
        op.execute("ALTER TABLE users DROP COLUMN organization_requested_at")
        op.execute("ALTER TABLE users DROP COLUMN requested_organization_id")
    else:
        op.drop_constraint(op.f("fk_users_requested_organization_id_organizations"), "users", type_="foreignkey")
        op.drop_column("users", "organization_requested_at")
        op.drop_column("users", "requested_organization_id")
