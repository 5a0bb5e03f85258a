"""Issue 15 in Chromium at phone size: a volunteer on the waitlist is promoted when someone cancels, sees the
unread count in the header, reads the message in the inbox, marks it read, and the SMS is in the file backend.
In Chinese, the default (the English words come with the catalogue)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from credits.auth.models import User
from credits.extensions import db
from credits.notifications.channels import read_file_backend
from credits.projects import services as projects
from credits.projects.models import Claim
from credits.timeutil import utcnow
from tests.e2e.conftest import Words, check_phone_page
from tests.e2e.test_journeys import sign_in

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture says why, and skips or (on CI) fails
    expect = None


@pytest.fixture
def sms_path(app, tmp_path):
    path = tmp_path / "sms.jsonl"
    app.config["SMS_BACKEND"] = f"file:{path}"
    return str(path)


def test_volunteer_promoted_from_the_waitlist_sees_the_message_and_gets_the_sms(
        phone, coordinator, make_user, sms_path, monkeypatch):
    # Daytime for the quiet hours, whenever the suite runs: the SMS is not held until 08:00.
    monkeypatch.setattr("credits.notifications.services.quiet_until", lambda now: None)
    words = Words("zh_CN")
    now = utcnow()
    project = projects.create_project({
        "title": "敬老院探访", "category": "助老", "location": "奉城敬老院", "description": "陪老人聊天。",
        "starts_at": now + timedelta(days=2), "ends_at": now + timedelta(days=2, hours=2), "capacity": 1,
        "waitlist_capacity": 3}, actor=coordinator)
    projects.publish(project, actor=coordinator)
    first, waiting = make_user(name="先到者"), make_user(name="候补者")
    held = projects.claim(project, volunteer=first)
    projects.claim(project, volunteer=waiting)
    db.session.commit()

    page = phone()
    sign_in(page, words, waiting)
    inbox_link = page.locator("header a.inbox-link")
    expect(inbox_link).to_have_attribute("data-unread", "0")

    db.session.rollback()  # a fresh snapshot: the server's threads wrote since (the sign-in)
    projects.cancel_claim(db.session.get(Claim, held.id), actor=db.session.get(User, first.id))  # on their phone
    db.session.commit()

    page.reload()
    expect(inbox_link).to_have_attribute("data-unread", "1")
    inbox_link.click()
    message = page.locator("main article.message").first
    expect(message).to_contain_text("您已从候补转为正式报名")
    expect(message).to_contain_text("敬老院探访")
    expect(message).to_contain_text("奉城敬老院")
    check_phone_page(page, "inbox")

    message.get_by_role("button", name="标为已读").click()
    expect(inbox_link).to_have_attribute("data-unread", "0")
    expect(page.locator("main article.message-unread")).to_have_count(0)

    [sms] = read_file_backend(sms_path)
    assert sms["to"] == waiting.phone and sms["kind"] == "promotion" and "敬老院探访" in sms["text"]
