"""Confirms racing with real threads on the real database (SQLite, or PostgreSQL with TEST_DATABASE_URL): a double
click, and the same file uploaded twice and both previews confirmed at once, write each person exactly once."""

from __future__ import annotations

from sqlalchemy import func, select

from credits.auth.models import User
from credits.extensions import db
from credits.organizations import services
from credits.organizations.models import ActivationToken, RosterImport
from tests.organizations.conftest import roster, xlsx
from tests.races import race

N = 40


def confirm_job(app, import_id: int, actor_id: int):
    def work():
        with app.test_request_context(method="POST"):  # the activation links are absolute URLs
            roster_import = db.session.get(RosterImport, import_id)
            return services.confirm_import(roster_import, actor=db.session.get(User, actor_id))

    return work


def test_four_confirms_of_one_roster_at_once_create_each_person_once(app, upload, coordinator, org, sms):
    data = xlsx(roster(N))
    first, second = upload(coordinator, org, data).json["id"], upload(coordinator, org, data).json["id"]
    jobs = [confirm_job(app, import_id, coordinator.id) for import_id in (first, first, second, second)]
    results, _seconds = race(app, jobs)
    assert all(isinstance(result, dict) for result in results), results
    assert sum(result["created"] for result in results) == N
    assert sorted(result["created"] for result in results) == [0, 0, 0, N]
    assert all(result["skipped"] == N for result in results if result["created"] == 0)
    db.session.rollback()
    members = db.session.scalar(select(func.count()).select_from(User).where(User.organization_id == org.id,
                                                                            User.pending_activation.is_(True)))
    assert members == N
    assert db.session.scalar(select(func.count()).select_from(ActivationToken)) == N
    assert len([t for t in sms() if t["kind"] == "activation"]) == N


def test_one_activation_link_posted_twice_at_once_activates_once(app, upload, coordinator, org, sms):
    preview = upload(coordinator, org, xlsx(roster(1))).json["id"]
    with app.test_request_context(method="POST"):
        services.confirm_import(db.session.get(RosterImport, preview), actor=db.session.get(User, coordinator.id))
        db.session.commit()
    token = sms.token(roster(1)[0][1])
    person_id = db.session.scalar(select(User.id).where(User.phone == roster(1)[0][1]))

    def activate(password: str):
        def work():
            with app.test_request_context(method="POST"):
                return services.activate(token, password=password).id

        return work

    results, _seconds = race(app, [activate("first-password-2026"), activate("second-password-2026")])
    assert sorted(results, key=str) == sorted([person_id, "invalid_link"], key=str), results
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ActivationToken)
                             .where(ActivationToken.used_at.is_not(None))) == 1
