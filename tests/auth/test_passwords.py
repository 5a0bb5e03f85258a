"""The passwords people choose (credits/auth/passwords.py): common ones, the phone number and the name are
refused wherever a password is set; hashes made with replaced parameters are redone at sign-in; changing the
password is limited per user."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, extract_parameters
from sqlalchemy import select

from credits.auth import passwords
from credits.auth.models import User
from credits.extensions import db
from tests.conftest import csrf_token

STRONG = "gongyi-test-2026"


def count_users() -> int:
    return db.session.query(User).count()


@pytest.mark.parametrize(("password", "why"), [
    ("12345678", "常见"), ("password1", "常见"), ("Password123", "常见"), ("qq123456", "常见"),
    ("13912345678", "手机号"), ("x13912345678", "手机号"), ("wangxiaoming1", "姓名"),
])
def test_registration_refuses_guessable_passwords_on_the_api_and_the_page(client, password, why):
    body = {"phone": "13912345678", "password": password, "name": "wangxiaoming"}
    api = client.post("/api/v1/auth/register", json=body)
    assert api.status_code == 422 and why in api.json["error"]["fields"]["password"][0]
    page = client.post("/register", data={**body, "csrf_token": csrf_token(client, "/register")})
    assert page.status_code == 422 and why in page.get_data(as_text=True)
    assert count_users() == 0


def test_a_strong_password_is_accepted_and_english_readers_read_why_one_is_not(client):
    english = client.post("/api/v1/auth/register", json={"phone": "13912345678", "password": "12345678",
                                                         "name": "王小明"}, headers={"Accept-Language": "en"})
    assert "common" in english.json["error"]["fields"]["password"][0]
    assert client.post("/api/v1/auth/register", json={"phone": "13912345678", "password": STRONG,
                                                      "name": "王小明"}).status_code == 201


def test_changing_to_a_guessable_password_is_refused_and_the_old_one_kept(client, make_user, token_for):
    user = make_user(name="李四")
    auth = token_for(user)
    for new in ("password1", user.phone + "!", "李四李四1234"):
        response = client.post("/api/v1/me/password", headers=auth,
                               json={"current_password": STRONG, "new_password": new})
        assert response.status_code == 422 and "new_password" in response.json["error"]["fields"], new
    assert client.get("/api/v1/me", headers=auth).status_code == 200  # nothing changed, the session stands


def test_staff_and_users_made_by_others_get_no_guessable_password_either(app):
    from credits.admin.views import UserCreateIn
    from credits.merchants.schemas import StaffIn

    for schema in (StaffIn(), UserCreateIn()):
        errors = schema.validate({"phone": "13912345678", "name": "陈店员", "password": "abc12345",
                                  **({"roles": ["merchant"]} if isinstance(schema, UserCreateIn) else {})})
        assert "password" in errors, schema


def test_password_changes_are_limited_per_user(client, make_user, token_for):
    user = make_user()
    auth = token_for(user)
    statuses = [client.post("/api/v1/me/password", headers=auth,
                            json={"current_password": f"guess-{n}-xyz", "new_password": "a-new-pass-2026"}
                            ).status_code for n in range(6)]
    assert statuses == [422] * 5 + [429]


def test_a_hash_made_with_replaced_parameters_is_redone_at_the_next_sign_in(client, app, make_user):
    user = make_user()
    old = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=2).hash(STRONG)
    user.password_hash = old
    db.session.commit()
    assert client.post("/api/v1/auth/token", json={"phone": user.phone, "password": STRONG}).status_code == 201
    stored = db.session.scalar(select(User.password_hash).where(User.id == user.id))
    current = passwords.PROFILES["fast"]  # the tests' profile; production rehashes to "owasp" the same way
    assert stored != old and extract_parameters(stored).memory_cost == current.memory_cost
    assert client.post("/api/v1/auth/token", json={"phone": user.phone, "password": STRONG}).status_code == 201


def test_the_common_list_is_the_top_ten_thousand():
    common = passwords.common_passwords()
    assert len(common) == passwords.COMMON_COUNT
    assert {"123456", "password", "12345678", "qwerty"} <= common
    assert STRONG not in common
