"""The inbox over the API and as a page: listing, unread filter, marking read (only one's own), SMS settings,
and the unread count in the header."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from credits.extensions import db
from credits.notifications.models import Notification, SmsSetting
from credits.notifications.services import notify
from tests.conftest import csrf_token

pytestmark = pytest.mark.usefixtures("daytime")


def messages(user, n: int = 3) -> list[Notification]:
    notes = [notify(user, "redemption", link="/me/vouchers", merchant="老街理发", service=f"理发{i}", coins=5)
             for i in range(n)]
    db.session.commit()
    return notes


def unread_of(user) -> int:
    return db.session.scalar(select(func.count()).select_from(Notification)
                             .where(Notification.user_id == user.id, Notification.read_at.is_(None)))


def test_api_lists_own_messages_newest_first_with_rendered_texts(client, volunteer, make_user, token_for):
    notes = messages(volunteer)
    messages(make_user(name="别人"), 1)

    body = client.get("/api/v1/me/notifications?per_page=2", headers=token_for(volunteer)).json

    assert (body["total"], body["page"], body["per_page"]) == (3, 1, 2)
    first = body["items"][0]
    assert first["id"] == notes[-1].id
    assert set(first) == {"id", "kind", "title", "body", "created_at", "read_at", "link"}
    assert first["kind"] == "redemption" and "理发2" in first["body"] and first["title"]
    assert first["read_at"] is None and first["link"] == "/me/vouchers"
    assert first["created_at"].endswith("+08:00")


def test_marking_some_read_then_all_read_leaves_nothing_unread(client, volunteer, token_for):
    notes = messages(volunteer)
    headers = token_for(volunteer)

    assert client.post("/api/v1/me/notifications/read", json={"ids": [notes[0].id]}, headers=headers).status_code == 204
    unread = client.get("/api/v1/me/notifications?unread=true", headers=headers).json
    assert sorted(item["id"] for item in unread["items"]) == sorted(n.id for n in notes[1:])

    assert client.post("/api/v1/me/notifications/read", json={}, headers=headers).status_code == 204
    assert unread_of(volunteer) == 0


def test_marking_another_persons_message_is_404_and_changes_nothing(client, volunteer, make_user, token_for):
    mine = messages(volunteer, 1)
    theirs = messages(make_user(name="别人"), 1)

    response = client.post("/api/v1/me/notifications/read", json={"ids": [mine[0].id, theirs[0].id]},
                           headers=token_for(volunteer))

    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    assert db.session.scalar(select(func.count()).select_from(Notification)
                             .where(Notification.read_at.is_not(None))) == 0


@pytest.mark.parametrize("body", [{"ids": []}, {"ids": ["x"]}, {"ids": [1], "all": True}, {"ids": [0]}])
def test_bad_read_request_is_422(client, volunteer, token_for, body):
    messages(volunteer, 1)
    response = client.post("/api/v1/me/notifications/read", json=body, headers=token_for(volunteer))
    assert response.status_code == 422 and response.json["error"]["code"] == "validation_error"
    assert unread_of(volunteer) == 1


def test_sms_settings_show_defaults_and_keep_what_the_person_chose(client, volunteer, token_for):
    headers = token_for(volunteer)
    before = client.get("/api/v1/me/notification-settings", headers=headers).json["sms"]
    assert before["promotion"] is True and before["redemption"] is False

    after = client.put("/api/v1/me/notification-settings", json={"sms": {"promotion": False, "redemption": True}},
                       headers=headers).json["sms"]

    assert after == {**before, "promotion": False, "redemption": True}
    assert client.get("/api/v1/me/notification-settings", headers=headers).json["sms"] == after


@pytest.mark.parametrize("body", [{"sms": {"pigeon": True}}, {"sms": {"promotion": "maybe"}}, {}, {"sms": []},
                                  {"sms": {"promotion": True}, "email": {}}])
def test_bad_settings_are_422_and_change_nothing(client, volunteer, token_for, body):
    response = client.put("/api/v1/me/notification-settings", json=body, headers=token_for(volunteer))
    assert response.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(SmsSetting)) == 0


def test_inbox_page_shows_messages_and_the_header_counts_the_unread(browser, volunteer):
    messages(volunteer, 2)
    page = browser(volunteer)

    html = page.get("/me/notifications").get_data(as_text=True)

    assert html.count('class="message message-unread"') == 2
    assert "理发0" in html and "理发1" in html
    assert 'data-unread="2"' in html


def test_marking_one_read_on_the_page_then_all_clears_the_badge(browser, volunteer):
    notes = messages(volunteer, 2)
    page = browser(volunteer)
    token = csrf_token(page, "/me/notifications")

    assert page.post("/me/notifications/read", data={"id": notes[0].id, "csrf_token": token}).status_code == 302
    assert 'data-unread="1"' in page.get("/me/notifications").get_data(as_text=True)
    page.post("/me/notifications/read", data={"csrf_token": token})
    assert 'data-unread="0"' in page.get("/me/notifications").get_data(as_text=True)


def test_read_form_without_csrf_token_is_refused(browser, volunteer):
    notes = messages(volunteer, 1)
    response = browser(volunteer).post("/me/notifications/read", data={"id": notes[0].id})
    assert response.status_code == 303  # back to the form, as every page without its token
    assert unread_of(volunteer) == 1


def test_settings_page_saves_the_ticked_kinds(browser, volunteer):
    page = browser(volunteer)
    token = csrf_token(page, "/me/notification-settings")

    page.post("/me/notification-settings", data={"csrf_token": token, "promotion": "on", "redemption": "on"})

    chosen = dict(db.session.execute(select(SmsSetting.kind, SmsSetting.sms)
                                     .where(SmsSetting.user_id == volunteer.id)).all())
    assert chosen["promotion"] is True and chosen["redemption"] is True and chosen["project_cancelled"] is False


def test_inbox_needs_sign_in(client):
    assert client.get("/me/notifications").status_code == 302
    assert client.get("/api/v1/me/notifications").status_code == 401


def test_switching_the_language_signed_in_sets_the_language_of_ones_sms(browser, volunteer):
    page = browser(volunteer)
    assert page.get("/lang/en?next=/me/notifications").status_code == 302
    db.session.refresh(volunteer)
    assert volunteer.locale == "en"
    page.get("/lang/zh_CN")
    db.session.refresh(volunteer)
    assert volunteer.locale == "zh_CN"
