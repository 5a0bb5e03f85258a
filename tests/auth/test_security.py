"""CSRF on every form, an API that trusts bearer tokens only, cookie flags, the secret key, password hashing
strength and redirects that stay on the site."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from credits import create_app
from credits.auth import passwords
from credits.auth.models import Organization, User
from credits.config import ProductionConfig
from credits.extensions import db
from tests.conftest import IsolatedClient, csrf_token

PASSWORD = "gongyi-test-2026"
HTTPS = "https://localhost"
REGISTRATION = {"phone": "13912345678", "password": "correct horse", "name": "王小明"}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def cookie_header(response, name: str) -> str:
    """The Set-Cookie header for `name`, its attributes lower-cased."""
    found = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.getlist("Set-Cookie")
    return found[0]


def attributes(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")[1:]]
    return {k.lower(): v for k, _, v in (p.partition("=") for p in parts)}


# CSRF


def test_registration_form_without_a_csrf_token_is_refused_and_creates_nothing(client):
    client.get("/register")
    response = client.post("/register", data=REGISTRATION)
    assert response.status_code == 303
    assert count(User) == 0


def test_a_forged_csrf_token_is_refused(client):
    csrf_token(client, "/register")
    response = client.post("/register", data={**REGISTRATION, "csrf_token": "forged"})
    assert response.status_code == 303
    assert count(User) == 0


def test_a_csrf_token_from_another_browser_is_refused(client, app):
    stolen = csrf_token(app.test_client(), "/register")
    client.get("/register")
    assert client.post("/register", data={**REGISTRATION, "csrf_token": stolen}).status_code == 303
    assert count(User) == 0


def test_sign_in_form_without_a_csrf_token_does_not_sign_in(client, make_user):
    user = make_user()
    response = client.post("/login", data={"phone": user.phone, "password": PASSWORD})
    assert response.status_code == 303
    assert client.get("/account").status_code == 302


def test_sign_out_form_without_a_csrf_token_keeps_the_session(client, make_user, login):
    login(make_user())
    assert client.post("/logout").status_code == 303
    assert client.get("/account").status_code == 200


def test_password_form_without_a_csrf_token_keeps_the_password(client, make_user, login):
    user = make_user()
    login(user)
    response = client.post("/account/password", data={"current_password": PASSWORD,
                                                       "new_password": "a-new-password-456"})
    assert response.status_code == 303
    assert client.get("/account").status_code == 200
    assert client.post("/api/v1/auth/token", json={"phone": user.phone, "password": PASSWORD}).status_code == 201


def test_admin_form_without_a_csrf_token_changes_nothing(client, make_user, login):
    login(make_user("admin"))
    response = client.post("/admin/organizations", data={"name": "奉城镇商会", "kind": "enterprise"})
    assert response.status_code == 303
    assert count(Organization) == 0


def test_csrf_refusal_leads_back_to_the_form_with_the_reason(client):
    """Refused (303: nothing done), and back to the page it came from rather than a bare 400 page."""
    response = client.post("/register", data=REGISTRATION, headers={"Referer": "http://localhost/register"})
    assert response.status_code == 303 and response.headers["Location"] == "/register"
    page = client.get("/register").get_data(as_text=True)
    assert "页面已过期" in page and "data-restore-form" in page


# The API: bearer tokens only


def test_the_api_needs_no_csrf_token_even_with_a_session_cookie(client, make_user, login):
    login(make_user())
    response = client.post("/api/v1/auth/register", json=REGISTRATION)
    assert response.status_code == 201


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/v1/me", None),
    ("DELETE", "/api/v1/auth/token", None),
    ("POST", "/api/v1/me/password", {"current_password": PASSWORD, "new_password": "a-new-password-456"}),
])
def test_the_api_ignores_the_session_cookie_of_a_signed_in_browser(client, make_user, login, method, path,
                                                                   body):
    user = make_user()
    login(user)
    response = client.open(path, method=method, json=body)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert client.post("/api/v1/auth/token", json={"phone": user.phone, "password": PASSWORD}).status_code == 201
    assert client.get("/account").status_code == 200


def test_the_api_sets_no_cookies(client, make_user, login):
    user = make_user()
    login(user)
    responses = [client.post("/api/v1/auth/register", json=REGISTRATION),
                 client.post("/api/v1/auth/token", json={"phone": user.phone, "password": PASSWORD}),
                 client.post("/api/v1/auth/token", json={"phone": user.phone, "password": "wrong-password"}),
                 client.get("/api/v1/me")]
    for response in responses:
        assert response.headers.getlist("Set-Cookie") == [], response.request.path


def test_a_bearer_token_does_not_open_the_pages(client, make_user, token_for):
    headers = token_for(make_user())
    response = client.get("/account", headers=headers)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


# Cookies


@pytest.fixture
def production_app(app, database_url):
    app = create_app(ProductionConfig, {"SECRET_KEY": "a-production-secret-" + "x" * 32,
                                        "SQLALCHEMY_DATABASE_URI": database_url})
    app.test_client_class = IsolatedClient
    yield app
    with app.app_context():
        db.engine.dispose()


def production_sign_in(app, user, remember: bool):
    browser = app.test_client()
    page = browser.get("/login", base_url=HTTPS).get_data(as_text=True)
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    data = {"phone": user.phone, "password": PASSWORD, "csrf_token": page[start:page.index('"', start)]}
    if remember:
        data["remember"] = "on"
    # Flask-WTF checks the Referer on HTTPS; browsers send it for same-origin posts (Referrer-Policy same-origin).
    response = browser.post("/login", data=data, base_url=HTTPS, headers={"Referer": f"{HTTPS}/login"})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return response


@pytest.mark.parametrize("name", ["__Host-session", "__Host-remember"])
def test_production_cookies_are_host_prefixed_secure_httponly_and_samesite_lax(production_app, make_user,
                                                                             name):
    response = production_sign_in(production_app, make_user(), remember=True)
    attrs = attributes(cookie_header(response, name))
    assert "secure" in attrs and "httponly" in attrs
    assert attrs["samesite"].lower() == "lax"
    assert attrs["path"] == "/" and "domain" not in attrs  # what the __Host- prefix demands


def test_production_sends_hsts(production_app):
    response = production_app.test_client().get("/", base_url=HTTPS)
    assert "max-age=" in response.headers["Strict-Transport-Security"]


def test_remember_me_sets_a_remember_cookie_and_plain_sign_in_does_not(client, make_user, login, browser):
    user = make_user()
    remembered = login(user, remember=True)
    attrs = attributes(cookie_header(remembered, "remember_token"))
    assert "httponly" in attrs and attrs["samesite"].lower() == "lax"
    plain = browser().post("/login", data={"phone": user.phone, "password": PASSWORD,
                                           "csrf_token": csrf_token(client)})
    assert not [h for h in plain.headers.getlist("Set-Cookie") if h.startswith("remember_token=")]


def test_the_remember_cookie_signs_in_a_browser_whose_session_ended(client, make_user, login):
    login(make_user(), remember=True)
    client.delete_cookie("session")
    assert client.get("/account").status_code == 200


def test_signing_out_elsewhere_ends_the_remember_cookie_too(client, make_user, login, browser):
    user = make_user()
    login(user, remember=True)
    elsewhere = browser(user)
    elsewhere.post("/logout", data={"csrf_token": csrf_token(elsewhere, "/account")})
    client.delete_cookie("session")
    assert client.get("/account").status_code == 302


@pytest.mark.parametrize("secret", [None, ""])
def test_production_refuses_to_start_without_a_secret_key(database_url, monkeypatch, secret):
    monkeypatch.setattr(ProductionConfig, "SECRET_KEY", secret)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(ProductionConfig, {"SQLALCHEMY_DATABASE_URI": database_url})


def test_production_refuses_to_start_without_a_database_url(monkeypatch):
    monkeypatch.setattr(ProductionConfig, "SQLALCHEMY_DATABASE_URI", None)
    with pytest.raises(RuntimeError, match="DATABASE_URL"):
        create_app(ProductionConfig, {"SECRET_KEY": "x" * 32})


# Password hashing


def test_the_production_hasher_meets_owasp_argon2id_minimums():
    from argon2 import Type

    from credits.config import Config

    hasher = passwords.PROFILES[Config.PASSWORD_HASH]
    assert hasher.type is Type.ID
    assert hasher.memory_cost >= 19456  # KiB, i.e. 19 MiB
    assert hasher.time_cost >= 2
    assert hasher.parallelism >= 1


def test_production_hashes_passwords_with_the_strong_parameters(production_app):
    from argon2 import extract_parameters

    with production_app.app_context():
        hashed = passwords.hash_password(PASSWORD)
        params = extract_parameters(hashed)
        assert hashed.startswith("$argon2id$")
        assert params.memory_cost >= 19456 and params.time_cost >= 2
        assert passwords.check_password(hashed, PASSWORD)
        assert not passwords.check_password(hashed, "wrong-password")


def test_stored_passwords_are_argon2_hashes_not_the_password(client):
    client.post("/api/v1/auth/register", json=REGISTRATION)
    stored = db.session.scalars(select(User.password_hash)).one()
    assert stored.startswith("$argon2id$") and REGISTRATION["password"] not in stored


def test_an_unknown_phone_is_checked_against_a_strong_dummy_hash():
    """So a miss costs the same time as a wrong password, whatever the mode."""
    from argon2 import extract_parameters

    for name, hasher in passwords.PROFILES.items():
        params = extract_parameters(passwords._DUMMY_HASHES[name])
        assert (params.memory_cost, params.time_cost) == (hasher.memory_cost, hasher.time_cost), name


# Redirects


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/", "/\\evil.example/", "\\\\evil.example", "/\t/evil.example/",
    "/\n/evil.example/", "http:evil.example", "javascript:alert(1)",
], ids=["absolute", "scheme-relative", "backslash", "double-backslash", "tab", "newline", "scheme-only",
        "javascript"])
def test_sign_in_refuses_to_redirect_off_the_site(client, make_user, target):
    user = make_user()
    response = client.post(f"/login?next={quote(target, safe='')}", data={
        "phone": user.phone, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_sign_in_keeps_a_local_next_with_its_query(client, make_user):
    user = make_user()
    response = client.post(f"/login?next={quote('/account?tab=hours', safe='')}", data={
        "phone": user.phone, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert response.headers["Location"] == "/account?tab=hours"
