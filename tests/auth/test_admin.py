"""The admin pages: users and roles, deactivation, organisations, policy settings and the audit trail — each
change written to the audit trail with who, what, which object and from where."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from credits.auth import services
from credits.auth.models import ApiToken, AuditEvent, Organization, User
from credits.errors import Forbidden
from credits.extensions import db
from credits.settings.models import PolicySetting
from credits.settings.services import get_policy
from credits.timeutil import local_zone
from tests.conftest import csrf_token

PASSWORD = "gongyi-test-2026"
ADDRESS = "198.51.100.23"
POLICY = {"max_active_claims": "5", "no_show_limit": "4", "auto_approve_checkin": "on", "block_minutes": "30",
          "coins_per_block": "2", "coin_expiry": "end_of_next_year", "voucher_ttl_days": "14",
          "max_coins_per_hour": "8", "min_block_minutes": "30", "backdate_days": "3", "manual_record_days": "20",
          "second_approval_coins": "40", "daily_issue_limit": "400", "session_idle_days": "3",
          "admin_session_idle_hours": "8"}


@pytest.fixture
def admin(make_user):
    return make_user("admin", name="管理员")


@pytest.fixture
def admin_client(client, admin, login):
    """The admin's browser, from a known address so the audit trail can be checked."""
    client.environ_base["REMOTE_ADDR"] = ADDRESS
    login(admin)
    return client


def post_form(client, path: str, data: dict):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, path)})


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                   .order_by(AuditEvent.id)))


def assert_audited(action: str, actor, obj=None, **details) -> AuditEvent:
    found = events(action)
    assert found, f"no {action} event"
    event = found[-1]
    assert event.actor_id == actor.id
    assert event.address == ADDRESS
    assert event.created_at is not None
    if obj is not None:
        assert (event.object_type, event.object_id) == (obj.__tablename__, str(obj.id))
    for key, value in details.items():
        assert event.details[key] == value, event.details
    return event


def edit_form(user, **changes) -> dict:
    """What the user page posts: every field, as the browser sends the form."""
    data = {"name": user.name, "roles": list(user.roles),
            "organization_id": str(user.organization_id or ""), **changes}
    if data.pop("active", user.is_active_user):
        data["active"] = "on"
    return data


# Access


@pytest.mark.parametrize("path", ["/admin/users", "/admin/users/new", "/admin/organizations", "/admin/policy",
                                  "/admin/audit"])
@pytest.mark.parametrize("roles", [("volunteer",), ("coordinator",), ("merchant",),
                                   ("volunteer", "coordinator", "merchant")])
def test_admin_pages_are_forbidden_to_everyone_but_admins(client, make_user, login, path, roles):
    login(make_user(*roles))
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", ["/admin/users", "/admin/policy", "/admin/audit"])
def test_admin_pages_send_anonymous_visitors_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_a_non_admin_cannot_post_to_admin_forms(client, make_user, login):
    victim = make_user()
    login(make_user("coordinator"))
    token = csrf_token(client, "/account")
    response = client.post(f"/admin/users/{victim.id}", data={**edit_form(victim, roles=["admin"]),
                                                              "csrf_token": token})
    assert response.status_code == 403
    assert db.session.get(User, victim.id).roles == ["volunteer"]


def test_services_refuse_non_admins_too(make_user):
    coordinator, volunteer = make_user("coordinator"), make_user()
    with pytest.raises(Forbidden):
        services.update_user(volunteer, actor=coordinator, roles=["admin"])
    with pytest.raises(Forbidden):
        services.create_organization(name="某组织", kind="social", actor=coordinator)


def test_an_admin_sees_the_user_list_and_can_search_it(admin_client, make_user):
    make_user(name="张三", phone="13911110000")
    make_user(name="李四", phone="13922220000")
    page = admin_client.get("/admin/users").get_data(as_text=True)
    assert "张三" in page and "李四" in page
    found = admin_client.get("/admin/users?q=1391111").get_data(as_text=True)
    assert "张三" in found and "李四" not in found


def test_a_missing_user_page_is_404(admin_client):
    assert admin_client.get("/admin/users/99999").status_code == 404


# Users and roles


def test_admin_creates_a_coordinator_who_can_then_sign_in(admin_client, admin, make_org):
    org = make_org("奉城镇党委", kind="government")
    response = post_form(admin_client, "/admin/users/new", {
        "phone": "13933334444", "name": "赵协调", "password": "initial-pass-1", "roles": ["coordinator"],
        "organization_id": str(org.id)})
    assert response.status_code == 302
    user = db.session.scalars(select(User).where(User.phone == "13933334444")).one()
    assert user.roles == ["coordinator"] and user.organization_id == org.id
    assert user.volunteer_no
    assert_audited("user.create", admin, user, roles=["coordinator"])
    assert admin_client.post("/api/v1/auth/token", json={"phone": "13933334444",
                                                          "password": "initial-pass-1"}).status_code == 201


@pytest.mark.parametrize(("changes", "field"), [
    ({"roles": []}, "roles"),
    ({"roles": ["superuser"]}, "roles"),
    ({"phone": "1234"}, "phone"),
    ({"password": "short"}, "password"),
])
def test_admin_user_creation_refuses_bad_fields_with_422(admin_client, changes, field):
    data = {"phone": "13933334444", "name": "赵协调", "password": "initial-pass-1", "roles": ["coordinator"],
            **changes}
    response = post_form(admin_client, "/admin/users/new", data)
    assert response.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(User).where(User.phone == data["phone"])) == 0


def test_admin_user_creation_refuses_a_taken_phone(admin_client, make_user):
    taken = make_user(name="原来的人")
    response = post_form(admin_client, "/admin/users/new", {
        "phone": taken.phone, "name": "冒名", "password": "initial-pass-1", "roles": ["coordinator"]})
    assert response.status_code == 422
    assert "该手机号已注册" in response.get_data(as_text=True)
    assert db.session.get(User, taken.id).roles == ["volunteer"]


def test_admin_changes_a_users_roles(admin_client, admin, make_user):
    user = make_user()
    response = post_form(admin_client, f"/admin/users/{user.id}",
                         edit_form(user, roles=["volunteer", "coordinator"]))
    assert response.status_code == 302
    assert db.session.get(User, user.id).roles == ["coordinator", "volunteer"]
    assert_audited("user.update", admin, user, roles=["coordinator", "volunteer"])
    post_form(admin_client, f"/admin/users/{user.id}", edit_form(user, roles=["merchant"]))
    assert db.session.get(User, user.id).roles == ["merchant"]


def test_a_new_role_takes_effect_on_the_users_next_api_request(admin_client, make_user, token_for):
    user = make_user()
    headers = token_for(user)
    post_form(admin_client, f"/admin/users/{user.id}", edit_form(user, roles=["volunteer", "coordinator"]))
    assert admin_client.get("/api/v1/me", headers=headers).json["roles"] == ["coordinator", "volunteer"]


def test_saving_an_unchanged_user_writes_no_audit_event(admin_client, make_user):
    user = make_user()
    post_form(admin_client, f"/admin/users/{user.id}", edit_form(user))
    assert events("user.update") == []


def test_deactivating_a_user_ends_their_sessions_and_tokens(admin_client, admin, make_user, browser):
    user = make_user()
    their_browser = browser(user)
    raw = admin_client.post("/api/v1/auth/token", json={"phone": user.phone, "password": PASSWORD}).json["token"]
    response = post_form(admin_client, f"/admin/users/{user.id}", edit_form(user, active=False))
    assert response.status_code == 302
    assert db.session.get(User, user.id).is_active_user is False
    assert their_browser.get("/account").status_code == 302
    assert admin_client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert all(t.revoked_at is not None for t in db.session.scalars(select(ApiToken)
                                                                     .where(ApiToken.user_id == user.id)))
    assert_audited("user.update", admin, user, active=False)
    assert_audited("user.sessions_ended", admin, user, reason="deactivated")
    assert browser().post("/api/v1/auth/token", json={"phone": user.phone,
                                                       "password": PASSWORD}).status_code == 401


def test_a_reactivated_user_can_sign_in_again(admin_client, make_user, browser):
    user = make_user()
    post_form(admin_client, f"/admin/users/{user.id}", edit_form(user, active=False))
    post_form(admin_client, f"/admin/users/{user.id}", edit_form(db.session.get(User, user.id), active=True))
    assert browser(user).get("/account").status_code == 200


def test_an_admin_cannot_deactivate_themselves(admin_client, admin):
    response = post_form(admin_client, f"/admin/users/{admin.id}", edit_form(admin, active=False))
    assert response.status_code == 403
    assert db.session.get(User, admin.id).is_active_user is True
    assert admin_client.get("/admin/users").status_code == 200
    assert events("user.update") == []


def test_an_admin_cannot_drop_their_own_admin_role(admin_client, admin):
    response = post_form(admin_client, f"/admin/users/{admin.id}",
                         edit_form(admin, roles=["volunteer", "coordinator"]))
    assert response.status_code == 403
    assert db.session.get(User, admin.id).roles == ["admin"]
    assert admin_client.get("/admin/users").status_code == 200


def test_an_admin_may_add_roles_to_themselves(admin_client, admin):
    response = post_form(admin_client, f"/admin/users/{admin.id}", edit_form(admin, roles=["admin", "coordinator"]))
    assert response.status_code == 302
    assert db.session.get(User, admin.id).roles == ["admin", "coordinator"]


def test_an_admin_may_remove_another_admin(admin_client, make_user):
    other = make_user("admin")
    post_form(admin_client, f"/admin/users/{other.id}", edit_form(other, roles=["volunteer"]))
    assert db.session.get(User, other.id).roles == ["volunteer"]


# Organisations


def test_admin_creates_an_organization(admin_client, admin):
    response = post_form(admin_client, "/admin/organizations", {"name": "奉城镇商会", "kind": "enterprise"})
    assert response.status_code == 302
    org = db.session.scalars(select(Organization)).one()
    assert (org.name, org.kind) == ("奉城镇商会", "enterprise")
    assert_audited("organization.create", admin, org, name="奉城镇商会", kind="enterprise")
    listed = admin_client.get("/api/v1/organizations").json
    assert listed["items"] == [{"id": org.id, "name": "奉城镇商会", "kind": "enterprise"}]


def test_a_duplicate_organization_name_is_shown_on_the_form_with_422(admin_client, make_org):
    make_org("奉城镇商会")
    response = post_form(admin_client, "/admin/organizations", {"name": "奉城镇商会", "kind": "social"})
    assert response.status_code == 422
    assert "已有同名组织" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Organization)) == 1
    assert events("organization.create") == []


@pytest.mark.parametrize("data", [{"name": "奉", "kind": "enterprise"}, {"name": "奉城镇商会", "kind": "club"},
                                  {"kind": "enterprise"}])
def test_a_bad_organization_is_refused_with_422(admin_client, data):
    assert post_form(admin_client, "/admin/organizations", data).status_code == 422
    assert db.session.scalar(select(func.count()).select_from(Organization)) == 0


def test_admin_renames_an_organization(admin_client, admin, make_org):
    org = make_org("奉城镇商会")
    response = post_form(admin_client, f"/admin/organizations/{org.id}", {"name": "奉城商会", "kind": "social"})
    assert response.status_code == 302
    org = db.session.get(Organization, org.id)
    assert (org.name, org.kind) == ("奉城商会", "social")
    assert_audited("organization.update", admin, org, name="奉城商会", kind="social")


def test_renaming_to_another_organizations_name_is_refused_with_422(admin_client, make_org):
    make_org("奉城镇商会")
    org = make_org("奉城镇社工站")
    response = post_form(admin_client, f"/admin/organizations/{org.id}", {"name": "奉城镇商会", "kind": "social"})
    assert response.status_code == 422
    assert "已有同名组织" in response.get_data(as_text=True)
    assert db.session.get(Organization, org.id).name == "奉城镇社工站"


def test_saving_an_organization_under_its_own_name_is_allowed(admin_client, make_org):
    org = make_org("奉城镇商会")
    response = post_form(admin_client, f"/admin/organizations/{org.id}", {"name": "奉城镇商会", "kind": "social"})
    assert response.status_code == 302
    assert db.session.get(Organization, org.id).kind == "social"


# Policy settings


def test_admin_saves_policy_settings(admin_client, admin):
    assert get_policy()["max_active_claims"] == 3
    response = post_form(admin_client, "/admin/policy", POLICY)
    assert response.status_code == 302
    assert get_policy() == {"max_active_claims": 5, "no_show_limit": 4, "auto_approve_checkin": True,
                            "block_minutes": 30, "coins_per_block": 2, "coin_expiry": "end_of_next_year",
                            "voucher_ttl_days": 14, "max_coins_per_hour": 8, "min_block_minutes": 30,
                            "backdate_days": 3, "manual_record_days": 20, "second_approval_coins": 40,
                            "daily_issue_limit": 400, "session_idle_days": 3, "admin_session_idle_hours": 8,
                            "phone_verification": "off"}  # TestConfig's default
    event = assert_audited("policy.update", admin)
    assert event.details["max_active_claims"] == 5
    assert db.session.get(PolicySetting, "max_active_claims").updated_by_id == admin.id


def test_an_unticked_switch_turns_the_setting_off(admin_client):
    data = {k: v for k, v in POLICY.items() if k != "auto_approve_checkin"}
    post_form(admin_client, "/admin/policy", data)
    assert get_policy()["auto_approve_checkin"] is False


@pytest.mark.parametrize(("field", "value"), [
    ("max_active_claims", "0"), ("max_active_claims", "51"), ("no_show_limit", "0"), ("block_minutes", "0"),
    ("block_minutes", "1441"), ("coins_per_block", "-1"), ("voucher_ttl_days", "366"),
    ("coin_expiry", "forever"), ("voucher_ttl_days", "seven"), ("max_coins_per_hour", "0"),
    ("min_block_minutes", "0"), ("backdate_days", "-1"), ("manual_record_days", "0"),
    ("second_approval_coins", "0"), ("daily_issue_limit", "0"), ("session_idle_days", "0"),
    ("session_idle_days", "91"), ("admin_session_idle_hours", "0"),
    ("coins_per_block", "5"),  # 10 an hour on 30-minute blocks: past the form's own maximum of 8
    ("block_minutes", "20"),  # shorter than the form's own minimum block of 30
])
def test_out_of_range_policy_values_are_refused_with_422_and_nothing_is_stored(admin_client, field, value):
    response = post_form(admin_client, "/admin/policy", {**POLICY, field: value})
    assert response.status_code == 422
    if field != "coin_expiry":  # a select: only a tampered form can send another value
        assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', response.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(PolicySetting)) == 0
    assert get_policy()["max_active_claims"] == 3
    assert events("policy.update") == []


# The audit trail


def test_the_audit_page_lists_events_with_actor_action_object_and_address(admin_client, admin, make_user):
    user = make_user(name="被改的人")
    post_form(admin_client, f"/admin/users/{user.id}", edit_form(user, roles=["coordinator"]))
    post_form(admin_client, "/admin/organizations", {"name": "奉城镇商会", "kind": "enterprise"})
    page = admin_client.get("/admin/audit").get_data(as_text=True)
    assert "user.update" in page and "organization.create" in page and "user.login" in page
    assert "管理员" in page and ADDRESS in page
    assert f"users {user.id}" in page


def test_the_audit_page_filters_by_action(admin_client):
    post_form(admin_client, "/admin/organizations", {"name": "奉城镇商会", "kind": "enterprise"})
    page = admin_client.get("/admin/audit?action=organization.").get_data(as_text=True)
    assert "organization.create" in page
    assert "user.login" not in page and "user.create" not in page


def test_the_audit_page_filters_by_actor_and_object(admin_client, admin, make_user):
    user = make_user(phone="13955556666")
    post_form(admin_client, f"/admin/users/{user.id}", edit_form(user, roles=["coordinator"]))
    everyone = admin_client.get("/admin/audit").get_data(as_text=True)
    by_admin = admin_client.get(f"/admin/audit?actor={admin.phone}").get_data(as_text=True)
    assert everyone.count("<code>user.create</code>") == 2
    assert by_admin.count("<code>user.create</code>") == 1  # the volunteer's account was made by themselves
    assert "user.update" in by_admin
    about_user = admin_client.get(f"/admin/audit?object_type=users&object_id={user.id}").get_data(as_text=True)
    assert "user.update" in about_user and "user.create" in about_user and "user.login" not in about_user


def test_the_audit_page_filters_by_period_in_local_days(admin_client, admin):
    post_form(admin_client, "/admin/organizations", {"name": "奉城镇商会", "kind": "enterprise"})
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "organization.create")).one()
    event_day = event.created_at.astimezone(local_zone()).date()
    day_before = event_day - timedelta(days=1)

    on_the_day = admin_client.get(f"/admin/audit?from={event_day}&to={event_day}").get_data(as_text=True)
    before = admin_client.get(f"/admin/audit?to={day_before}").get_data(as_text=True)
    after = admin_client.get(f"/admin/audit?from={event_day + timedelta(days=1)}").get_data(as_text=True)

    assert "organization.create" in on_the_day
    assert "organization.create" not in before and "organization.create" not in after


def test_the_audit_pages_keep_their_filters_and_size_and_each_actor_links_to_their_events(admin_client, admin):
    for n in range(3):
        post_form(admin_client, "/admin/organizations", {"name": f"奉城镇商会{n}", "kind": "enterprise"})

    first = admin_client.get("/admin/audit?action=organization.&per_page=2").get_data(as_text=True)
    following = re.search(r'href="([^"]*page=2[^"]*)"', first).group(1).replace("&amp;", "&")
    second = admin_client.get(following).get_data(as_text=True)

    assert first.count("<code>organization.create</code>") == 2
    assert "action=organization." in following and "per_page=2" in following
    assert second.count("<code>organization.create</code>") == 1 and "user.login" not in second
    assert f'href="/admin/audit?actor={admin.phone}"' in first


def test_the_audit_page_refuses_a_period_that_ends_before_it_starts(admin_client):
    response = admin_client.get("/admin/audit?from=2026-05-02&to=2026-05-01")

    assert response.status_code == 422
    assert "结束日期不能早于开始日期" in response.get_data(as_text=True)


def test_sign_in_and_sign_out_are_audited_with_the_address(admin_client, admin):
    assert_audited("user.login", admin, admin)
    admin_client.post("/logout", data={"csrf_token": csrf_token(admin_client, "/account")})
    assert_audited("user.sessions_ended", admin, admin, reason="logout")
