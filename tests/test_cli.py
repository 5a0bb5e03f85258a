"""The `flask credits` commands: create-user, seed-demo and verify-ledger, run as an operator would."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from credits.auth.models import AuditEvent, User
from credits.auth.services import InvalidCredentials, authenticate
from credits.demo import DEMO_PASSWORD, DEMO_USERS
from credits.extensions import db

PASSWORD = "secret-pass-123"


def create_user(runner, *options: str, password: str = PASSWORD):
    return runner.invoke(args=["credits", "create-user", *options, "--password-stdin"], input=f"{password}\n")


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


def test_create_user_reads_the_password_from_stdin_and_the_user_can_sign_in(runner):
    result = create_user(runner, "--phone", "13712345678", "--name", "王协调", "--role", "coordinator",
                         "--role", "volunteer")

    assert result.exit_code == 0, result.output
    user = db.session.scalars(select(User).where(User.phone == "13712345678")).one()
    assert user.name == "王协调"
    assert user.roles == ["coordinator", "volunteer"]
    assert f"created user {user.id} 13712345678" in result.output
    assert user.volunteer_no in result.output
    assert PASSWORD not in result.output
    assert authenticate("13712345678", PASSWORD).id == user.id
    with pytest.raises(InvalidCredentials):
        authenticate("13712345678", PASSWORD + "x")


def test_create_user_records_an_audit_event_from_the_cli(runner):
    create_user(runner, "--phone", "13712345678", "--name", "管理员", "--role", "admin")

    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.create")).one()
    assert (event.address, event.details) == ("cli", {"roles": ["admin"]})


def test_create_user_assigns_merchant_staff_to_their_shop(runner, make_merchant):
    shop = make_merchant()
    result = create_user(runner, "--phone", "13712345678", "--name", "陈店员", "--role", "merchant",
                         "--merchant", str(shop.id))

    assert result.exit_code == 0, result.output
    user = db.session.scalars(select(User).where(User.phone == "13712345678")).one()
    assert (user.roles, user.merchant_id) == (["merchant"], shop.id)


def test_create_user_for_an_unknown_shop_fails_and_creates_nothing(runner):
    result = create_user(runner, "--phone", "13712345678", "--name", "陈店员", "--role", "merchant",
                         "--merchant", "424242")

    assert result.exit_code != 0 and "merchant" in result.output
    assert user_count() == 0


def test_create_user_prompts_twice_for_the_password_without_password_stdin(runner):
    result = runner.invoke(args=["credits", "create-user", "--phone", "13712345678", "--name", "李志愿",
                                 "--role", "volunteer"], input=f"{PASSWORD}\n{PASSWORD}\n")

    assert result.exit_code == 0, result.output
    assert authenticate("13712345678", PASSWORD).name == "李志愿"


@pytest.mark.parametrize(("phone", "password"), [
    ("13712345678", "short"),
    ("12345", PASSWORD),
    ("23712345678", PASSWORD),
    ("1371234567a", PASSWORD),
])
def test_create_user_with_a_short_password_or_bad_phone_fails_and_creates_nothing(runner, phone, password):
    result = create_user(runner, "--phone", phone, "--name", "测试", "--role", "volunteer", password=password)

    assert result.exit_code != 0
    assert "invalid input" in result.output
    assert ("password" if password == "short" else "phone") in result.output
    assert user_count() == 0


def test_create_user_with_an_unknown_role_fails_and_creates_nothing(runner):
    result = create_user(runner, "--phone", "13712345678", "--name", "测试", "--role", "superuser")

    assert result.exit_code != 0
    assert user_count() == 0


def test_create_user_with_an_unknown_organization_fails_and_creates_nothing(runner):
    result = create_user(runner, "--phone", "13712345678", "--name", "测试", "--role", "volunteer",
                         "--organization", "999")

    assert result.exit_code != 0
    assert "validation_error" in result.output and "organization_id" in result.output
    assert user_count() == 0


def test_create_user_with_a_phone_already_registered_fails_and_keeps_the_first_user(runner, make_user):
    first = make_user(phone="13712345678", name="原用户", password="original-pass")

    result = create_user(runner, "--phone", "13712345678", "--name", "冒名", "--role", "admin")

    assert result.exit_code != 0
    assert "phone_taken" in result.output
    assert user_count() == 1
    db.session.refresh(first)
    assert (first.name, first.roles) == ("原用户", ["volunteer"])
    assert authenticate("13712345678", "original-pass").id == first.id


def test_seed_demo_loads_once_and_says_so_the_second_time(runner):
    first = runner.invoke(args=["credits", "seed-demo"])
    assert first.exit_code == 0, first.output
    assert "demo data loaded" in first.output
    loaded = user_count()
    for phone, _name, _roles, _org in DEMO_USERS:
        assert phone in first.output
        assert db.session.scalar(select(User.id).where(User.phone == phone)) is not None
    assert DEMO_PASSWORD in first.output

    second = runner.invoke(args=["credits", "seed-demo"])

    assert second.exit_code == 0, second.output
    assert "already present" in second.output
    assert "demo data loaded" not in second.output
    assert user_count() == loaded


def test_seeded_demo_users_sign_in_with_the_demo_password(runner):
    runner.invoke(args=["credits", "seed-demo"])

    for phone, name, roles, _org in DEMO_USERS:
        user = authenticate(phone, DEMO_PASSWORD)
        assert (user.name, user.roles) == (name, sorted(roles))


def test_verify_ledger_exits_0_after_seed_demo(runner):
    assert runner.invoke(args=["credits", "seed-demo"]).exit_code == 0

    result = runner.invoke(args=["credits", "verify-ledger"])

    assert result.exit_code == 0, result.output
    assert "ledger ok" in result.output


def test_make_run_serves_on_the_port_it_is_given():
    """`make run` on a busy port 5000 failed with "Port 5000 is in use": PORT picks another."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    dry = subprocess.run(["make", "-n", "run", "PORT=5123"], cwd=root, capture_output=True,
                         text=True, check=True).stdout
    default = subprocess.run(["make", "-n", "run"], cwd=root, capture_output=True, text=True, check=True).stdout
    assert "flask run --host 127.0.0.1 --port 5123" in dry
    assert "--port 5000" in default
