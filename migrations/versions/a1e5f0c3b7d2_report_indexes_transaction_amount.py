"""reports: coins moved on each ledger transaction, and the indexes the reports read

Revision ID: a1e5f0c3b7d2
Revises: dc90429e9bed
Create Date: 2026-11-26 15:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'a1e5f0c3b7d2'
down_revision = 'dc90429e9bed'
branch_labels = None
depends_on = None

TX = "ledger_transactions"
# Existing two-column indexes widened so per-volunteer and per-project aggregates are index-only scans.
COVERING = {
    'ix_service_records_volunteer_time': ['volunteer_id', 'started_at', 'status', 'minutes'],
    'ix_service_records_project_status': ['project_id', 'status', 'volunteer_id', 'minutes'],
}


def _without_append_only_guard(statement: str) -> None:
    """Run one backfill UPDATE past the append-only triggers: the only time a ledger row is rewritten, adding a
    figure derived from its own entries."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {TX} DISABLE TRIGGER {TX}_append_only")
        op.execute(statement)
        op.execute(f"ALTER TABLE {TX} ENABLE TRIGGER {TX}_append_only")
    else:
        op.execute(f"DROP TRIGGER {TX}_no_update")
        op.execute(statement)
        _sqlite_triggers(("UPDATE",))


def _sqlite_triggers(verbs) -> None:
    for verb in verbs:
        op.execute(f"CREATE TRIGGER {TX}_no_{verb.lower()} BEFORE {verb} ON {TX} "
                   "BEGIN SELECT RAISE(ABORT, 'ledger rows are append-only'); END")


def _rebuilt_on_sqlite() -> None:
    """SQLite's batch mode copies the table into a new one, which loses its triggers: put them back."""
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers(("UPDATE", "DELETE"))


def upgrade():
    op.add_column(TX, sa.Column('amount', sa.Integer(), nullable=True))
    _without_append_only_guard(
        f"UPDATE {TX} SET amount = (SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e "
        f"WHERE e.transaction_id = {TX}.id AND e.amount > 0)")
    with op.batch_alter_table(TX) as batch_op:
        batch_op.alter_column('amount', existing_type=sa.Integer(), nullable=False)
        batch_op.create_check_constraint('amount', 'amount >= 1')
        batch_op.drop_index('ix_ledger_transactions_created_at')
        batch_op.create_index('ix_ledger_transactions_created_kind_amount', ['created_at', 'kind', 'amount'])
    _rebuilt_on_sqlite()
    op.create_index('ix_service_records_report', 'service_records',
                    ['started_at', 'status', 'project_id', 'volunteer_id', 'minutes'])
    for name, columns in COVERING.items():
        op.drop_index(name, table_name='service_records')
        op.create_index(name, 'service_records', columns)
    op.create_index('ix_projects_starts_at', 'projects', ['starts_at'])
    op.create_index('ix_users_created_at', 'users', ['created_at'])


def downgrade():
    op.drop_index('ix_users_created_at', table_name='users')
    op.drop_index('ix_projects_starts_at', table_name='projects')
    op.drop_index('ix_service_records_report', table_name='service_records')
    for name, columns in COVERING.items():
        op.drop_index(name, table_name='service_records')
        op.create_index(name, 'service_records', columns[:2])
    with op.batch_alter_table(TX) as batch_op:
        batch_op.drop_index('ix_ledger_transactions_created_kind_amount')
        batch_op.create_index('ix_ledger_transactions_created_at', ['created_at'])
        batch_op.drop_constraint('amount', type_='check')
        batch_op.drop_column('amount')
    _rebuilt_on_sqlite()
