"""SMS verification codes (issue 15, SPEC 2.7): registration, password reset and change of phone, with the texts
read back from the file backend. Every refusal is a 4xx that changes nothing and says nothing about whether the
phone is registered."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from credits.auth import codes
from credits.auth.models import ApiToken, AuditEvent, PhoneCode, User
from credits.config import Config
from credits.extensions import db
from credits.notifications.channels import read_file_backend
from credits.notifications.models import Delivery
from credits.settings.services import policy
from credits.timeutil import utcnow
from tests.conftest import csrf_token, offset_clock
from tests.races import race

PASSWORD = "gongyi-test-2026"
NEW_PASSWORD = "fengcheng-new-2026"
FREE = "13912345678"
REJECTED = "验证码不正确或已失效，请重新获取。"


@pytest.fixture
def texts(app, tmp_path):
    """Codes required (the default outside tests), SMS into a file; texts() → what the file holds."""
    path = tmp_path / "sms.jsonl"
    app.config["SMS_BACKEND"] = f"file:{path}"
    app.config["PHONE_VERIFICATION_DEFAULT"] = "required"
    return lambda: read_file_backend(str(path))


def ask(client, phone: str, purpose: str = "register", address: str = "127.0.0.1", headers=None):
    return client.post("/api/v1/auth/sms-code", json={"phone": phone, "purpose": purpose},
                       environ_base={"REMOTE_ADDR": address}, headers=headers)


def last_code(texts, phone: str) -> str:
    sent = [t for t in texts() if t["to"] == phone]
    assert sent, f"no text to {phone}"
    return re.search(r"\d{6}", sent[-1]["text"]).group()


def register(client, phone: str = FREE, code: str | None = None):
    body = {"phone": phone, "password": PASSWORD, "name": "张小明"}
    if code is not None:
        body["code"] = code
    return client.post("/api/v1/auth/register", json=body)


def reset(client, phone: str, code: str, password: str = NEW_PASSWORD):
    return client.post("/api/v1/auth/password-reset", json={"phone": phone, "code": code, "password": password})


def users() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(User))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_the_default_policy_requires_a_code():
    assert Config.PHONE_VERIFICATION_DEFAULT == "required"


def test_registration_needs_the_code_sent_to_the_phone_and_marks_the_phone_verified(client, texts):
    assert policy("phone_verification") == "required"
    response = ask(client, FREE)
    assert response.status_code == 202
    [text] = texts()
    assert text["to"] == FREE and text["kind"] == "verification_code"
    code = last_code(texts, FREE)

    missing = register(client)
    assert missing.status_code == 422 and "code" in missing.json["error"]["fields"]
    refused = register(client, code=wrong(code))
    assert refused.status_code == 422 and refused.json["error"]["fields"]["code"] == [REJECTED]
    assert users() == 0

    created = register(client, code=code)
    assert created.status_code == 201, created.json
    assert created.json["phone_verified"] is True
    assert db.session.scalars(select(User).where(User.phone == FREE)).one().phone_verified_at is not None


def test_the_answer_is_the_same_whether_or_not_the_phone_is_registered(client, texts, make_user):
    taken, also_taken = make_user(phone="13911110000").phone, make_user(phone="13911119999").phone
    answers = {(phone, purpose): ask(client, phone, purpose, address=f"10.0.0.{i}")
               for i, (phone, purpose) in enumerate([(also_taken, "register"), (FREE, "register"),
                                                     (taken, "reset"), ("13922220000", "reset")])}
    assert {(r.status_code, r.get_data()) for r in answers.values()} == {(202, answers[(FREE, "register")].get_data())}
    # A text goes only where its code can be used: a free phone's registration, a registered phone's reset.
    assert sorted(t["to"] for t in texts()) == sorted([FREE, taken])
    assert reset(client, "13922220000", "123456").json == reset(client, taken, wrong(last_code(texts, taken))).json


def test_a_code_is_stored_only_as_a_keyed_hash_and_its_text_is_cleared_once_sent(client, texts):
    ask(client, FREE)
    code = last_code(texts, FREE)
    db.session.rollback()
    row = db.session.scalars(select(PhoneCode)).one()
    assert code not in row.code_hash and len(row.code_hash) == 64
    delivery = db.session.scalars(select(Delivery).where(Delivery.key == f"code:{row.id}")).one()
    assert delivery.status == "sent" and delivery.text is None


def test_a_code_is_single_use(client, texts, make_user):
    user = make_user(phone="13911110001")
    ask(client, user.phone, "reset")
    code = last_code(texts, user.phone)
    assert reset(client, user.phone, code).status_code == 204
    again = reset(client, user.phone, code, password="another-pass-2026")
    assert again.status_code == 422 and again.json["error"]["fields"]["code"] == [REJECTED]
    assert client.post("/api/v1/auth/token", json={"phone": user.phone, "password": NEW_PASSWORD}).status_code == 201


def test_an_expired_code_is_refused(client, texts):
    ask(client, FREE)
    code = last_code(texts, FREE)
    db.session.rollback()
    row = db.session.scalars(select(PhoneCode)).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert register(client, code=code).status_code == 422
    assert users() == 0


def test_five_wrong_tries_void_the_code_so_the_sixth_fails_even_when_right(client, texts):
    ask(client, FREE)
    code = last_code(texts, FREE)
    for _ in range(codes.MAX_WRONG_TRIES):
        assert register(client, code=wrong(code)).status_code == 422
    db.session.rollback()
    assert db.session.scalars(select(PhoneCode)).one().attempts == codes.MAX_WRONG_TRIES
    sixth = register(client, code=code)
    assert sixth.status_code == 422 and sixth.json["error"]["fields"]["code"] == [REJECTED]
    assert users() == 0


def test_four_wrong_tries_leave_the_code_usable(client, texts):
    ask(client, FREE)
    code = last_code(texts, FREE)
    for _ in range(codes.MAX_WRONG_TRIES - 1):
        register(client, code=wrong(code))
    assert register(client, code=code).status_code == 201


def test_a_code_for_another_phone_or_purpose_is_refused(client, texts, make_user):
    user = make_user(phone="13911110002")
    ask(client, FREE, "register", address="10.0.0.1")
    register_code = last_code(texts, FREE)
    ask(client, user.phone, "reset", address="10.0.0.2")
    reset_code = last_code(texts, user.phone)
    assert register(client, phone="13933330000", code=register_code).status_code == 422  # another phone
    assert reset(client, user.phone, register_code).status_code == 422  # another phone's, another purpose
    assert register(client, phone=user.phone, code=reset_code).status_code in (409, 422)  # taken, wrong purpose
    db.session.rollback()
    assert db.session.scalars(select(PhoneCode.used_at)).all() == [None, None]


@pytest.fixture
def clock(monkeypatch):
    import limits.storage.memory

    return offset_clock(monkeypatch, limits.storage.memory)


def test_one_code_a_minute_per_phone(client, texts, clock):
    assert ask(client, FREE, address="10.0.0.1").status_code == 202
    refused = ask(client, FREE, address="10.0.0.2")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) <= 60
    assert len(texts()) == 1
    clock.offset = 61
    assert ask(client, FREE, address="10.0.0.3").status_code == 202


def test_one_code_a_minute_per_address(client, texts, clock):
    assert ask(client, FREE).status_code == 202
    assert ask(client, "13933330000").status_code == 429
    assert len(texts()) == 1


def test_the_eleventh_code_of_the_day_is_refused(client, texts, clock):
    for minute in range(10):
        clock.offset = minute * 61
        assert ask(client, FREE, address=f"10.0.1.{minute}").status_code == 202
    clock.offset = 10 * 61
    assert ask(client, FREE, address="10.0.2.1").status_code == 429
    assert ask(client, "13933330000", address="10.0.1.9").status_code == 202  # another phone, a minute on
    assert len([t for t in texts() if t["to"] == FREE]) == 10
    clock.offset = 24 * 3600 + 1
    assert ask(client, FREE, address="10.0.2.1").status_code == 202


@pytest.mark.parametrize("phone", ["+86 139 1234 5678", "139-1234-5678", "００８６１３９１２３４５６７８"])
def test_a_phone_typed_in_another_format_gets_the_code_and_counts_as_the_same_phone(client, texts, phone):
    assert ask(client, phone).status_code == 202
    assert [text["to"] for text in texts()] == [FREE]
    assert ask(client, FREE, address="10.0.3.1").status_code == 429  # the same phone, within the minute


@pytest.mark.parametrize("phone", ["1391234567", "23912345678", "+1 415 555 0100", "abc"])
def test_what_is_not_a_mainland_mobile_is_refused_and_not_counted(client, texts, phone):
    response = ask(client, phone)
    assert response.status_code == 422 and "phone" in response.json["error"]["fields"]
    assert texts() == []
    assert ask(client, FREE).status_code == 202  # the address was not counted


def test_an_unknown_purpose_is_refused(client, texts):
    assert ask(client, FREE, purpose="login").status_code == 422
    assert texts() == []


def test_password_reset_sets_the_password_and_ends_every_session_and_token(client, texts, make_user, token_for,
                                                                            browser):
    user = make_user(phone="13911110003")
    headers = token_for(user)
    page = browser(user)
    assert ask(client, user.phone, "reset").status_code == 202
    assert reset(client, user.phone, last_code(texts, user.phone)).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert page.get("/account").status_code == 302
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_(None))) == 0
    assert client.post("/api/v1/auth/token", json={"phone": user.phone, "password": PASSWORD}).status_code == 401
    assert client.post("/api/v1/auth/token", json={"phone": user.phone, "password": NEW_PASSWORD}).status_code == 201
    assert db.session.get(User, user.id).phone_verified_at is not None


def test_a_refused_reset_changes_nothing(client, texts, make_user, token_for):
    user = make_user(phone="13911110004")
    headers = token_for(user)
    ask(client, user.phone, "reset")
    code = last_code(texts, user.phone)
    weak = reset(client, user.phone, code, password="123")
    assert weak.status_code == 422 and "password" in weak.json["error"]["fields"]
    assert reset(client, user.phone, wrong(code)).status_code == 422
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert client.post("/api/v1/auth/token", json={"phone": user.phone, "password": PASSWORD}).status_code == 201


def test_two_resets_racing_with_one_code_one_wins(app, client, texts, make_user):
    phone = make_user(phone="13911110005").phone
    ask(client, phone, "reset")
    code = last_code(texts, phone)
    results, _ = race(app, [lambda p=p: codes.reset_password(phone=phone, code=code, password=p)
                            for p in ("first-choice-2026", "second-choice-2026")])
    assert sorted(isinstance(r, User) for r in results) == [False, True], results
    assert [r for r in results if not isinstance(r, User)] == ["validation_error"]


def test_the_sign_in_page_links_to_the_forgotten_password_page_which_resets_it(client, texts, make_user):
    user = make_user(phone="13911110006")
    assert 'href="/password-reset"' in client.get("/login").get_data(as_text=True)
    sent = client.post("/sms-code", data={"phone": user.phone, "purpose": "reset",
                                           "csrf_token": csrf_token(client, "/password-reset")})
    assert sent.status_code == 202 and sent.json == {"sent": True}
    form = {"phone": user.phone, "password": NEW_PASSWORD, "csrf_token": csrf_token(client, "/password-reset")}
    refused = client.post("/password-reset", data={**form, "code": wrong(last_code(texts, user.phone))})
    assert refused.status_code == 422 and "验证码不正确或已失效" in refused.get_data(as_text=True)
    done = client.post("/password-reset", data={**form, "code": last_code(texts, user.phone)})
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")


def test_the_pages_code_button_needs_the_csrf_token_and_answers_json(client, texts):
    refused = client.post("/sms-code", data={"phone": FREE, "purpose": "register"})
    assert refused.status_code == 303  # the app's answer to an expired page: back to it, the form kept
    bad = client.post("/sms-code", data={"phone": "+86 139", "purpose": "register",
                                          "csrf_token": csrf_token(client, "/register")})
    assert bad.status_code == 422 and "phone" in bad.json["error"]["fields"]
    assert texts() == []


def test_the_register_page_has_the_code_button_and_registers_with_the_code(client, texts):
    html = client.get("/register").get_data(as_text=True)
    assert 'data-sms-code="register"' in html and "获取验证码" in html
    client.post("/sms-code", data={"phone": FREE, "purpose": "register", "csrf_token": csrf_token(client, "/register")})
    form = {"phone": FREE, "name": "张小明", "password": PASSWORD, "csrf_token": csrf_token(client, "/register")}
    assert client.post("/register", data=form).status_code == 422
    assert users() == 0
    assert client.post("/register", data={**form, "code": last_code(texts, FREE)}).status_code == 302
    assert users() == 1


def test_with_verification_off_registration_needs_no_code_and_the_admin_page_says_so(client, texts, set_policy,
                                                                                    browser, make_user):
    set_policy(phone_verification="off")
    assert register(client).status_code == 201
    assert 'data-sms-code' not in client.get("/register").get_data(as_text=True)
    admin = browser(make_user("admin", phone="13911110007"))
    assert "data-verification-off" in admin.get("/admin/policy").get_data(as_text=True)
    set_policy(phone_verification="required")
    assert "data-verification-off" not in admin.get("/admin/policy").get_data(as_text=True)


def test_changing_phone_on_the_account_page_needs_a_code_sent_to_the_new_phone(app, texts, make_user, browser):
    user = make_user(phone="13911110008")
    page = browser(user)
    assert "/account/phone" in page.get("/account").get_data(as_text=True)
    token = csrf_token(page, "/account/phone")
    assert page.post("/sms-code", data={"phone": FREE, "purpose": "change_phone", "csrf_token": token}
                     ).status_code == 202
    code = last_code(texts, FREE)
    refused = page.post("/account/phone", data={"phone": FREE, "code": wrong(code), "csrf_token": token})
    assert refused.status_code == 422
    assert page.post("/account/phone", data={"phone": FREE, "code": code, "csrf_token": token}).status_code == 302
    db.session.rollback()
    moved = db.session.get(User, user.id)
    assert moved.phone == FREE and moved.phone_verified_at is not None
    assert db.session.scalars(select(AuditEvent.action).where(AuditEvent.action == "user.phone_change")).one()


def test_a_change_of_phone_needs_the_code_its_own_user_asked_for(client, texts, make_user, token_for):
    asker, other = make_user(phone="13911110009"), make_user(phone="13911110010")
    assert ask(client, FREE, "change_phone").status_code == 401  # nobody signed in
    assert ask(client, FREE, "change_phone", headers=token_for(asker)).status_code == 202
    code = last_code(texts, FREE)
    stolen = client.post("/api/v1/me/phone", json={"phone": FREE, "code": code}, headers=token_for(other))
    assert stolen.status_code == 422
    mine = client.post("/api/v1/me/phone", json={"phone": FREE, "code": code}, headers=token_for(asker))
    assert mine.status_code == 200 and mine.json["phone"] == FREE


def test_no_code_is_sent_to_change_to_a_registered_phone(client, texts, make_user, token_for):
    asker, owner = make_user(phone="13911110011"), make_user(phone="13911110012")
    assert ask(client, owner.phone, "change_phone", headers=token_for(asker)).status_code == 202
    assert texts() == []
