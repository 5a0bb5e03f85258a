"""长辈模式 (issue 19): one switch, kept in a cookie on the phone and on the account, so it follows the person."""

from __future__ import annotations

from sqlalchemy import select

from credits.auth.models import AuditEvent
from credits.extensions import db
from credits.web.large_mode import COOKIE
from tests.conftest import csrf_token


def switch(client, on: str, *, token: str | None = None, next_path: str = "/projects"):
    data = {"on": on, "csrf_token": token if token is not None else csrf_token(client, "/")}
    return client.post(f"/large-mode?next={next_path}", data=data)


def is_large(client, path: str = "/") -> bool:
    html = client.get(path).get_data(as_text=True)
    return '<html lang="zh-CN" class="large">' in html


def events(user):
    db.session.expire_all()
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.large_mode",
                                                       AuditEvent.object_id == str(user.id))).all()


def test_a_guest_switches_it_on_and_the_phone_keeps_it_in_a_cookie(client):
    assert not is_large(client)
    response = switch(client, "true")
    assert response.status_code == 302 and response.headers["Location"] == "/projects"
    cookie = client.get_cookie(COOKIE)
    assert cookie.value == "1" and cookie.http_only and cookie.expires is not None
    assert is_large(client) and is_large(client, "/projects")
    switch(client, "false")
    assert client.get_cookie(COOKIE).value == "0"
    assert not is_large(client)


def test_signed_in_it_is_kept_on_the_account_and_follows_the_person_to_another_phone(app, volunteer):
    first, second = app.test_client(), app.test_client()
    for phone in (first, second):
        phone.post("/login", data={"phone": volunteer.phone, "password": "gongyi-test-2026",
                                   "csrf_token": csrf_token(phone)})
    assert not is_large(first) and not is_large(second)
    switch(first, "true")
    db.session.refresh(volunteer)
    assert volunteer.large_mode is True
    assert is_large(second), "the other phone, signed in as the same person, shows 长辈模式 too"
    [event] = events(volunteer)
    assert event.actor_id == volunteer.id and event.details == {"on": True}
    switch(second, "false")
    assert not is_large(first)
    assert [e.details for e in events(volunteer)] == [{"on": True}, {"on": False}]


def test_signing_in_on_a_phone_where_it_is_on_turns_it_on_for_the_account(client, volunteer):
    switch(client, "true")
    client.post("/login", data={"phone": volunteer.phone, "password": "gongyi-test-2026",
                                "csrf_token": csrf_token(client)})
    db.session.refresh(volunteer)
    assert volunteer.large_mode is True and len(events(volunteer)) == 1


def test_signing_in_on_a_new_phone_gives_it_the_accounts_setting_and_signing_out_keeps_it(app, volunteer):
    volunteer.large_mode = True
    db.session.commit()
    phone = app.test_client()
    phone.post("/login", data={"phone": volunteer.phone, "password": "gongyi-test-2026",
                               "csrf_token": csrf_token(phone)})
    assert phone.get_cookie(COOKIE).value == "1"
    phone.post("/logout", data={"csrf_token": csrf_token(phone, "/account")})
    assert is_large(phone), "signed out, the phone still shows 长辈模式"


def test_a_switch_to_what_it_already_is_records_nothing(client, volunteer, login):
    login(volunteer)
    switch(client, "false")
    assert events(volunteer) == []


def test_a_bad_value_or_no_csrf_token_is_refused_and_changes_nothing(client, volunteer, login):
    login(volunteer)
    assert switch(client, "maybe").status_code == 422
    # A missing token sends the browser back to the page with a "page expired, try again" message (errors.py).
    assert switch(client, "true", token="").status_code == 303
    db.session.refresh(volunteer)
    assert volunteer.large_mode is False and events(volunteer) == []
    assert client.get_cookie(COOKIE).value == "0"  # as signing in set it


def test_the_next_page_must_be_on_this_site(client):
    response = switch(client, "true", next_path="//evil.example/")
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_a_refused_switch_says_what_is_wrong_without_the_fields_code_name(client):
    page = switch(client, "maybe").get_data(as_text=True)
    main = page[page.index("<main"):page.index("</main>")]
    assert "<small>on:" not in main and "_schema" not in main
    assert "<small>" in main, "the field's problem is still said"
