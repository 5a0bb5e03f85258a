"""ledger_entries (transaction_id, account_id, amount): the participation report sums entries per account over a
period's transactions from the index alone (it replaces the index on transaction_id, its first column)

Revision ID: 8e4b2d6f1a37
Revises: 9b9c28b1af0f
Create Date: 2026-12-05 09:25:00.000000
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '8e4b2d6f1a37'
down_revision = '9b9c28b1af0f'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_ledger_entries_transaction_account_amount", "ledger_entries",
                    ["transaction_id", "account_id", "amount"])
    op.drop_index("ix_ledger_entries_transaction_id", table_name="ledger_entries")


def downgrade():
    op.create_index("ix_ledger_entries_transaction_id", "ledger_entries", ["transaction_id"])
    op.drop_index("ix_ledger_entries_transaction_account_amount", table_name="ledger_entries")
