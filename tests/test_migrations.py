"""Migrations are the only way the schema changes: they build an empty database up to exactly the models,
with the ledger's append-only triggers, and they go down to nothing and up again."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from credits import create_app
from credits.config import TestConfig
from credits.extensions import db

LEDGER_TABLES = {"ledger_transactions", "ledger_entries"}


def schema_differences() -> list:
    """What autogenerate would put in a new migration: nothing, when migrations and models agree."""
    with db.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)


def current_revision() -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    config = current_app.extensions["migrate"].migrate.get_config()
    return ScriptDirectory.from_config(config).get_current_head()


def tables() -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def triggers() -> set[str]:
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            rows = conn.execute(text("SELECT tgrelid::regclass::text || ':' || tgname FROM pg_trigger "
                                     "WHERE NOT tgisinternal"))
        else:
            rows = conn.execute(text("SELECT tbl_name || ':' || name FROM sqlite_master WHERE type = 'trigger'"))
        return set(rows.scalars())


def ledger_triggers() -> set[str]:
    return {t for t in triggers() if t.split(":")[0] in LEDGER_TABLES}


EXPECTED_TRIGGERS = {
    "postgresql": {"ledger_transactions:ledger_transactions_append_only",
                   "ledger_entries:ledger_entries_append_only"},
    "sqlite": {f"{table}:{table}_no_{verb}" for table in LEDGER_TABLES for verb in ("update", "delete")},
}


def check_constraints(table: str) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_check_constraints(table)}


def test_migrated_test_database_matches_the_models_and_is_at_head(app):
    assert schema_differences() == []
    assert current_revision() == head_revision()
    assert tables() == set(db.metadata.tables)
    assert ledger_triggers() == EXPECTED_TRIGGERS[db.engine.dialect.name]
    # autogenerate does not compare CHECK constraints; the ledger's guard against overdrafts must be there
    assert {"ck_accounts_not_negative", "ck_ledger_entries_amount_not_zero"} <= (
        check_constraints("accounts") | check_constraints("ledger_entries"))


def test_empty_sqlite_database_upgrades_to_the_models_then_downgrades_to_base_and_upgrades_again(tmp_path):
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'fresh.sqlite'}"})
    with app.app_context():
        try:
            assert tables() == set()

            upgrade()
            assert schema_differences() == []
            assert ledger_triggers() == EXPECTED_TRIGGERS["sqlite"]
            assert current_revision() == head_revision()

            downgrade(revision="base")
            assert tables() == set()
            assert triggers() == set()
            assert current_revision() is None

            upgrade()
            assert schema_differences() == []
            assert ledger_triggers() == EXPECTED_TRIGGERS["sqlite"]
            assert current_revision() == head_revision()
        finally:
            db.session.remove()
            db.engine.dispose()


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="needs the PostgreSQL test database")
def test_postgresql_database_downgrades_to_base_and_upgrades_again(app):
    db.session.remove()
    try:
        downgrade(revision="base")
        assert tables() == set()
        assert triggers() == set()
        with db.engine.connect() as conn:
            functions = conn.execute(text("SELECT proname FROM pg_proc WHERE proname = 'ledger_append_only'"))
            assert functions.all() == []
    finally:
        upgrade()  # the session's other tests share this database
    assert schema_differences() == []
    assert ledger_triggers() == EXPECTED_TRIGGERS["postgresql"]
    assert current_revision() == head_revision()


def test_the_issuance_integrity_migration_upgrades_a_database_holding_data(app, coordinator, volunteer):
    """Revision 38b13ffec645 on a database with coins in it: a clawback the old rule left as issued_net above what
    the minutes earn becomes the volunteer's debt (less what was already paid), and the ledger verifies."""
    from credits.hours import services as hours
    from credits.ledger.models import Account, SystemAccount, TxKind
    from credits.ledger.services import system_account, transfer, user_account
    from credits.ledger.verify import verify_ledger
    from tests.hours.helpers import approve, confirmed_claim, file, revoke, slot, started_project

    claim = confirmed_claim(started_project(coordinator, days_ago=5), volunteer)
    kept, revoked = file(claim, volunteer, slot(3, 120)), file(claim, volunteer, slot(2, 60))
    approve(kept, coordinator), approve(revoked, coordinator)
    transfer(TxKind.ADJUST, user_account(volunteer.id), system_account(SystemAccount.ISSUANCE), 3, memo="spent")
    db.session.commit()
    revoke(revoked, coordinator)  # nothing left to take: 1 coin owed
    later = file(claim, volunteer, slot(1, 60))
    hours.approve(later, reviewer=coordinator)  # issues 1, which pays the debt
    db.session.commit()
    second = confirmed_claim(started_project(coordinator, title="敬老院陪伴", days_ago=5), volunteer)
    on_second = file(second, volunteer, slot(1, 120, hour=14))
    approve(on_second, coordinator)
    transfer(TxKind.ADJUST, user_account(volunteer.id), system_account(SystemAccount.ISSUANCE), 2, memo="spent")
    db.session.commit()
    revoke(on_second, coordinator)  # 2 owed, unpaid
    account_id = user_account(volunteer.id).id
    db.session.commit()
    assert db.session.get(Account, account_id).debt == 2
    db.session.remove()

    downgrade(revision="a772346efc79")
    try:
        with db.engine.connect() as conn:
            assert "debt" not in {c["name"] for c in inspect(conn).get_columns("accounts")}
    finally:
        upgrade()
    assert db.session.get(Account, account_id).debt == 2
    assert verify_ledger() == []
    if db.engine.dialect.name == "postgresql":
        types = {c["name"]: str(c["type"]) for c in inspect(db.engine).get_columns("ledger_entries")}
        assert types["amount"] == types["balance_after"] == "BIGINT"


def test_the_join_request_migration_keeps_members_and_a_pending_request(app, make_org, make_user):
    """Revision 5b8e2f41c9a7 on a database holding users: members stay members when it is added, and going down
    drops a pending request (the requester was never a member), nothing else."""
    from credits.auth.models import User
    from credits.auth.services import register

    org = make_org("奉城镇党委", kind="government")
    member = make_user("volunteer", organization=org)
    requester = register(phone="13911112222", name="申请人", password="gongyi-test-2026", organization_id=org.id)
    db.session.commit()
    member_id, requester_id, org_id = member.id, requester.id, org.id
    db.session.remove()

    downgrade(revision="38b13ffec645")
    try:
        with db.engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("users")}
            assert not {"requested_organization_id", "organization_requested_at"} & columns
    finally:
        upgrade()
    assert schema_differences() == []
    assert db.session.get(User, member_id).organization_id == org_id
    requester = db.session.get(User, requester_id)
    assert requester.organization_id is None and requester.requested_organization_id is None


def test_the_large_mode_migration_keeps_users_and_starts_them_in_the_standard_mode(app, make_user):
    """Revision 7d3a9c1e5f20 (users.large_mode) down and up again on a database holding users: the column goes
    and comes back, every user still there, in the standard mode (the server default fills existing rows)."""
    from credits.auth.models import User

    user = make_user("volunteer")
    user.large_mode = True
    db.session.commit()
    user_id = user.id
    db.session.remove()

    downgrade(revision="04e1865ba675")
    try:
        with db.engine.connect() as conn:
            assert "large_mode" not in {c["name"] for c in inspect(conn).get_columns("users")}
    finally:
        upgrade()
    assert schema_differences() == []
    assert db.session.get(User, user_id).large_mode is False
