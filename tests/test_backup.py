"""Backups taken while the app writes restore to a database whose ledger verifies, on SQLite (the online backup
API) and on PostgreSQL (pg_dump, then pg_restore as docs/operations.md says)."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from click.testing import Result
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from credits import create_app
from credits.backup import libpq_url
from credits.config import TestConfig
from credits.database import in_transaction
from credits.extensions import db
from credits.ledger.models import SystemAccount, Transaction, TxKind
from credits.ledger.services import system_account, transfer, user_account


def write_while(app, volunteers, stop: threading.Event, commits: list[int], errors: list) -> None:
    """Issue one coin after another, each its own committed transaction, until told to stop."""
    with app.app_context():
        try:
            while not stop.is_set():
                user_id = volunteers[len(commits) % len(volunteers)]
                in_transaction(lambda uid=user_id: transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE),
                                                            user_account(uid), 1, memo="backup test"))
                commits.append(1)
        except Exception as exc:  # reported by the test: a writer must never fail
            errors.append(exc)
        finally:
            db.session.remove()


def restored_ledger(url: str) -> tuple[Result, int]:
    """`flask credits verify-ledger` on the database at `url`, the command operations.md has operators run on a
    restored copy before serving from it, and the number of transactions in that database."""
    restored = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": url})
    with restored.app_context():
        try:
            result = restored.test_cli_runner().invoke(args=["credits", "verify-ledger"])
            return result, db.session.scalar(select(func.count()).select_from(Transaction))
        finally:
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def restore_target(database_url):
    """Where the backup is restored: a fresh PostgreSQL database next to the test one, dropped afterwards."""
    parsed = make_url(database_url)
    name = f"{parsed.database}_restore"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield parsed.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_backup_taken_under_concurrent_writes_restores_to_a_verified_ledger(app, runner, make_user, database_url,
                                                                            tmp_path, request):
    volunteers = [make_user(name=f"志愿者{i}").id for i in range(3)]
    db.session.rollback()  # the test body holds no transaction while the writers run
    stop, commits, errors = threading.Event(), [], []
    writers = [threading.Thread(target=write_while, args=(app, volunteers, stop, commits, errors))
               for _ in range(2)]
    for writer in writers:
        writer.start()
    try:
        while len(commits) < 20 and not errors:
            time.sleep(0.01)
        dest = tmp_path / "credits.backup"
        result = runner.invoke(args=["credits", "backup", str(dest)])
        during = len(commits)
        time.sleep(0.2)  # writers carry on after the backup
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    committed = db.session.scalar(select(func.count()).select_from(Transaction))
    db.session.rollback()

    assert errors == []
    assert committed == len(commits) > during  # every write landed, some of them after the backup
    assert result.exit_code == 0, result.output
    assert dest.stat().st_size > 0
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{dest}"
    else:
        url = request.getfixturevalue("restore_target")
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={libpq_url(url)}", str(dest)], check=True)
    verified, copied = restored_ledger(url)
    assert verified.exit_code == 0, verified.output
    assert "ledger ok" in verified.output
    assert 20 <= copied <= during + 2  # one moment's snapshot: what had committed by then (2 writers in flight)


def test_backup_refuses_to_overwrite_an_existing_file(runner, tmp_path):
    dest = tmp_path / "taken.backup"
    dest.write_bytes(b"an older backup")

    result = runner.invoke(args=["credits", "backup", str(dest)])

    assert result.exit_code == 2
    assert "exists" in result.output
    assert dest.read_bytes() == b"an older backup"
