"""Activation of imported accounts: the SMS link sets the password once, within 7 days; expired, used, voided and
made-up links get the same page; the endpoint is rate-limited; a pending account's sign-in says what to do."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from credits.auth.models import AuditEvent, User
from credits.extensions import db
from credits.organizations.models import ActivationToken
from credits.timeutil import utcnow
from tests.conftest import csrf_token
from tests.organizations.conftest import roster, xlsx

PASSWORD = "fengcheng-river-2026"
INVALID = "这个激活链接已失效"


@pytest.fixture
def imported(upload, confirm, coordinator, org, sms):
    """Three people imported into the coordinator's organisation; returns their phones."""
    confirm(coordinator, org, upload(coordinator, org, xlsx(roster(3))).json["id"])
    return [row[1] for row in roster(3)]


def activate(client, token: str, password: str = PASSWORD):
    return client.post(f"/activate/{token}", data={"password": password,
                                                   "csrf_token": csrf_token(client, f"/activate/{token}")})


def person(phone: str) -> User:
    db.session.rollback()
    return db.session.scalars(select(User).where(User.phone == phone)).one()


def test_the_link_sets_the_password_verifies_the_phone_and_signs_in(client, imported, sms):
    phone = imported[0]
    page = client.get(f"/activate/{sms.token(phone)}")
    assert page.status_code == 200 and "成员0000" in page.get_data(as_text=True)
    response = activate(client, sms.token(phone))
    assert response.status_code == 302 and response.headers["Location"].endswith("/account")
    user = person(phone)
    assert not user.pending_activation and user.phone_verified_at is not None
    assert client.get("/account").status_code == 200  # signed in
    assert db.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "user.activate",
                                                         AuditEvent.object_id == str(user.id)))
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    signed_in = client.post("/login", data={"phone": phone, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert signed_in.status_code == 302


def test_a_link_works_once(client, imported, sms):
    token = sms.token(imported[0])
    assert activate(client, token).status_code == 302
    again = client.get(f"/activate/{token}")
    assert again.status_code == 410 and INVALID in again.get_data(as_text=True)
    assert activate(client, token, "another-password-2026").status_code == 410


def test_an_expired_link_asks_for_a_new_one(client, imported, sms):
    db.session.execute(update(ActivationToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    response = client.get(f"/activate/{sms.token(imported[0])}")
    assert response.status_code == 410 and "请联系您所在组织的协调员" in response.get_data(as_text=True)
    assert person(imported[0]).pending_activation


def test_a_link_lasts_seven_days(imported):
    token = db.session.scalars(select(ActivationToken)).first()
    assert timedelta(days=7) - timedelta(minutes=1) < token.expires_at - token.created_at <= timedelta(days=7)


def test_a_made_up_link_gets_the_same_page(client, imported):
    response = client.get("/activate/not-a-real-token-at-all")
    assert response.status_code == 410 and INVALID in response.get_data(as_text=True)


def test_only_the_tokens_hash_is_stored(imported, sms):
    raw = sms.token(imported[0])
    assert len(raw) >= 43  # 32 random bytes
    stored = db.session.scalars(select(ActivationToken.token_hash)).all()
    assert raw not in stored and all(len(h) == 64 for h in stored)


def test_a_guessable_password_is_refused_and_the_link_still_works(client, imported, sms):
    token = sms.token(imported[0])
    refused = activate(client, token, "password")
    assert refused.status_code == 422 and "太常见" in refused.get_data(as_text=True)
    assert activate(client, token, imported[0] + "x").status_code == 422  # contains the phone
    assert person(imported[0]).pending_activation
    assert activate(client, token).status_code == 302


def test_the_activation_page_is_rate_limited(app, client, imported, sms):
    app.config["ACTIVATION_RATE_LIMIT"] = "3 per minute"
    for _ in range(3):
        assert client.get("/activate/guess").status_code == 410
    assert client.get("/activate/guess").status_code == 429


def test_a_pending_account_is_told_to_open_its_link_not_wrong_password(client, imported):
    response = client.post("/login", data={"phone": imported[0], "password": "whatever-2026",
                                           "csrf_token": csrf_token(client)})
    assert response.status_code == 422
    assert "账号未激活，请打开邀请短信中的链接" in response.get_data(as_text=True)
    api = client.post("/api/v1/auth/token", json={"phone": imported[0], "password": "whatever-2026"})
    assert api.status_code == 401 and api.json["error"]["code"] == "not_activated"


def test_resending_voids_the_earlier_link(client, imported, sms, coordinator, org, token_for):
    old = sms.token(imported[1])
    user = person(imported[1])
    response = client.post(f"/api/v1/organizations/{org.id}/members/{user.id}/invitation",
                           headers=token_for(coordinator))
    assert response.status_code == 204
    new = sms.token(imported[1])
    assert new != old
    assert client.get(f"/activate/{old}").status_code == 410
    assert activate(client, new).status_code == 302
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("activation.%"))).all()
    assert actions.count("activation.resend") == 1 and actions.count("activation.send") == 2  # the import, the resend


def test_resending_from_the_members_page_form(client, login, imported, sms, coordinator, org):
    user = person(imported[2])
    login(coordinator)
    response = client.post(f"/organizations/{org.id}/members/{user.id}/invitation",
                           data={"csrf_token": csrf_token(client, "/account")})
    assert response.status_code == 302
    assert len([t for t in sms() if t["to"] == imported[2]]) == 2


def test_an_activated_member_or_another_organisations_member_gets_no_resend(client, imported, sms, coordinator,
                                                                             org, token_for, make_user, make_org):
    activate(client, sms.token(imported[0]))
    url = f"/api/v1/organizations/{org.id}/members/{person(imported[0]).id}/invitation"
    assert client.post(url, headers=token_for(coordinator)).status_code == 404
    stranger = make_user("volunteer", organization=make_org("别的组织"))
    url = f"/api/v1/organizations/{org.id}/members/{stranger.id}/invitation"
    assert client.post(url, headers=token_for(coordinator)).status_code == 404
    outsider = make_user("coordinator", organization=make_org("另一组织"))
    url = f"/api/v1/organizations/{org.id}/members/{person(imported[1]).id}/invitation"
    assert client.post(url, headers=token_for(outsider)).status_code == 403


def test_a_reset_by_sms_code_also_activates(client, imported, sms):
    """The code proves the phone as the activation link would: the account is no longer pending."""
    assert client.post("/api/v1/auth/sms-code", json={"phone": imported[0], "purpose": "reset"}).status_code == 202
    code = re.search(r"\d{6}", [t for t in sms() if t["kind"] == "verification_code"][-1]["text"]).group()
    response = client.post("/api/v1/auth/password-reset", json={"phone": imported[0], "code": code,
                                                                "password": PASSWORD})
    assert response.status_code == 204
    assert not person(imported[0]).pending_activation
