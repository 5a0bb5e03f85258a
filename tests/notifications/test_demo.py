"""seed-demo leaves the demo volunteers a few messages, written by the services that caused them."""

from __future__ import annotations

from sqlalchemy import select

from credits.auth.models import User
from credits.extensions import db
from credits.notifications.models import Notification


def test_demo_volunteers_have_messages_after_seed_demo(runner, sms_file, daytime):
    assert runner.invoke(args=["credits", "seed-demo"]).exit_code == 0

    def kinds(phone: str) -> set[str]:
        user = db.session.scalars(select(User).where(User.phone == phone)).one()
        return set(db.session.scalars(select(Notification.kind).where(Notification.user_id == user.id)))

    assert kinds("13900000003") >= {"project_changed", "redemption"}  # 李志愿
    assert kinds("13900000004") >= {"project_changed", "project_cancelled"}  # 张晓明
    assert ("13900000004", "project_cancelled") in {(line["to"], line["kind"]) for line in sms_file()}
