"""issuance integrity: four eyes, who vouched for a check-in, volunteer debt, 64-bit coins

Revision ID: 38b13ffec645
Revises: a772346efc79
Create Date: 2026-12-04 01:31:50.369590

Coin columns become BIGINT on PostgreSQL (SQLite's INTEGER holds 64 bits already). A (volunteer, project) pair whose
issued_net was above what its minutes earn (the debt that used to wait for later hours on the same project) moves
that excess to the pair's shortfall and the volunteer account's debt, which any coins the volunteer receives pay.
"""
import sqlalchemy as sa
from alembic import op

import credits.timeutil

# revision identifiers, used by Alembic.
revision = '38b13ffec645'
down_revision = 'a772346efc79'
branch_labels = None
depends_on = None

COIN_COLUMNS = [("accounts", "balance"), ("credit_states", "issued_net"), ("ledger_entries", "amount"),
                ("ledger_entries", "balance_after"), ("ledger_transactions", "amount"), ("merchant_services", "price"),
                ("settlements", "coins"), ("vouchers", "coins")]
RECORD_STATUSES = ("open", "pending", "approved", "rejected", "revoked", "lapsed")
DEBT_CHECK = "debt >= 0 AND (debt = 0 OR kind = 'volunteer')"


def _status_check(statuses):
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade():
    if _sqlite():
        # ADD COLUMN may carry a CHECK on SQLite; a table constraint would need the table rebuilt, and the
        # accounts table is referenced by the ledger's entries.
        op.execute(f"ALTER TABLE accounts ADD COLUMN debt INTEGER NOT NULL DEFAULT 0 "
                   f"CONSTRAINT ck_accounts_debt CHECK ({DEBT_CHECK})")
        op.execute("ALTER TABLE credit_states ADD COLUMN shortfall INTEGER NOT NULL DEFAULT 0 "
                   "CONSTRAINT ck_credit_states_shortfall CHECK (shortfall >= 0)")
    else:
        for table, column in COIN_COLUMNS:
            op.alter_column(table, column, existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)
        op.add_column("accounts", sa.Column("debt", sa.BigInteger(), nullable=False, server_default="0"))
        op.create_check_constraint(op.f("ck_accounts_debt"), "accounts", DEBT_CHECK)
        op.add_column("credit_states", sa.Column("shortfall", sa.BigInteger(), nullable=False, server_default="0"))
        op.create_check_constraint(op.f("ck_credit_states_shortfall"), "credit_states", "shortfall >= 0")

    # Nothing references service_records, so SQLite may rebuild it for the wider status and its CHECK.
    with op.batch_alter_table("service_records", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_service_records_status"), type_="check")
        batch_op.alter_column("status", existing_type=sa.VARCHAR(length=10), type_=sa.String(length=30),
                              existing_nullable=False)
        batch_op.create_check_constraint(
            "status", _status_check((*RECORD_STATUSES, "awaiting_second_approval")))
        batch_op.add_column(sa.Column("checkin_code_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("checkout_code_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("first_approved_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("first_approved_at", credits.timeutil.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_service_records_checkin_code_by_id_users"), "users",
                                    ["checkin_code_by_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_service_records_checkout_code_by_id_users"), "users",
                                    ["checkout_code_by_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_service_records_first_approved_by_id_users"), "users",
                                    ["first_approved_by_id"], ["id"])

    # The old rule kept a pair's unpaid clawback as issued_net above what its minutes earn; it is now the
    # volunteer's debt. Integer division on integer columns, in both databases.
    earned = ("(credit_states.approved_minutes / p.block_minutes) * p.coins_per_block")
    op.execute(f"UPDATE credit_states SET shortfall = issued_net - (SELECT {earned} FROM projects p "
               f"WHERE p.id = credit_states.project_id) "
               f"WHERE issued_net > (SELECT {earned} FROM projects p WHERE p.id = credit_states.project_id)")
    # Less any debt payments already posted (a database that went down this revision and up again has them).
    op.execute("UPDATE accounts SET debt = (SELECT COALESCE(SUM(cs.shortfall), 0) FROM credit_states cs "
               "WHERE cs.volunteer_id = accounts.user_id) + (SELECT COALESCE(SUM(e.amount), 0) "
               "FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id "
               "WHERE e.account_id = accounts.id AND t.kind = 'clawback' AND t.ref_type = 'debt') "
               "WHERE kind = 'volunteer'")
    if not _sqlite():
        op.alter_column("accounts", "debt", server_default=None)
        op.alter_column("credit_states", "shortfall", server_default=None)


def downgrade():
    # A record halfway through four eyes goes back to waiting for review; debts fold back into issued_net above
    # earned (payments already posted stay in the ledger, as everything does).
    op.execute("UPDATE service_records SET status = 'pending' WHERE status = 'awaiting_second_approval'")
    with op.batch_alter_table("service_records", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_service_records_first_approved_by_id_users"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_service_records_checkout_code_by_id_users"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_service_records_checkin_code_by_id_users"), type_="foreignkey")
        batch_op.drop_column("first_approved_at")
        batch_op.drop_column("first_approved_by_id")
        batch_op.drop_column("checkout_code_by_id")
        batch_op.drop_column("checkin_code_by_id")
        batch_op.drop_constraint(batch_op.f("ck_service_records_status"), type_="check")
        batch_op.alter_column("status", existing_type=sa.String(length=30), type_=sa.VARCHAR(length=10),
                              existing_nullable=False)
        batch_op.create_check_constraint("status", _status_check(RECORD_STATUSES))
    if _sqlite():
        op.execute("ALTER TABLE accounts DROP COLUMN debt")
        op.execute("ALTER TABLE credit_states DROP COLUMN shortfall")
    else:
        op.drop_constraint(op.f("ck_credit_states_shortfall"), "credit_states", type_="check")
        op.drop_column("credit_states", "shortfall")
        op.drop_constraint(op.f("ck_accounts_debt"), "accounts", type_="check")
        op.drop_column("accounts", "debt")
        for table, column in COIN_COLUMNS:
            op.alter_column(table, column, existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)
