"""The coordinator's pages: upload → preview (problems marked) → confirm; the template; a coordinator without an
organisation told what to ask the admin for; a registered person accepting an invitation."""

from __future__ import annotations

import io

from openpyxl import load_workbook
from sqlalchemy import select

from credits.auth.models import User
from credits.extensions import db
from tests.conftest import csrf_token
from tests.organizations.conftest import roster, xlsx

NO_ORGANIZATION = "您的账号还没有所属组织"


def post_file(client, org, data: bytes, filename: str = "roster.xlsx"):
    path = f"/coordinate/organizations/{org.id}/import"
    return client.post(path, data={"csrf_token": csrf_token(client, path), "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def test_upload_preview_and_confirm_in_the_browser(client, login, coordinator, org, sms):
    login(coordinator)
    assert client.get("/coordinate/roster").headers["Location"].endswith(f"/coordinate/organizations/{org.id}/import")
    assert client.get(f"/coordinate/organizations/{org.id}/import").status_code == 200
    uploaded = post_file(client, org, xlsx(roster(3) + [("坏号码", "12345", "是", "")]))
    assert uploaded.status_code == 302
    preview_url = uploaded.headers["Location"]
    page = client.get(preview_url).get_data(as_text=True)
    assert "手机号不是 11 位中国大陆手机号" in page and 'class="row-problem"' in page
    assert "确认导入 3 人" in page
    problems_only = client.get(preview_url + "?only=problems").get_data(as_text=True)
    assert "坏号码" in problems_only and "成员0000" not in problems_only
    confirm_url = preview_url + "/confirm"
    confirmed = client.post(confirm_url, data={"csrf_token": csrf_token(client, preview_url)})
    assert confirmed.status_code == 302
    after = client.get(preview_url).get_data(as_text=True)
    assert "新建 3 人" in after and "确认导入 3 人" not in after
    db.session.rollback()
    assert db.session.scalar(select(User.pending_activation).where(User.phone == roster(1)[0][1])) is True


def test_a_refused_file_is_explained_on_the_upload_page(client, login, coordinator, org):
    login(coordinator)
    response = post_file(client, org, b"just some words", "roster.csv")
    assert response.status_code == 422
    assert "缺少列" in response.get_data(as_text=True)


def test_the_template_is_an_empty_xlsx_with_the_four_columns(client, login, coordinator, org):
    login(coordinator)
    response = client.get(f"/coordinate/organizations/{org.id}/import/template.xlsx")
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = [row for row in sheet.iter_rows(values_only=True) if any(row)]
    assert rows == [("姓名", "手机号", "党员（是/否）", "备注（可选）")]


def test_another_organisations_coordinator_cannot_open_the_import_page(client, login, org, make_user, make_org):
    login(make_user("coordinator", organization=make_org("别的组织")))
    assert client.get(f"/coordinate/organizations/{org.id}/import").status_code == 403
    assert client.get(f"/coordinate/organizations/{org.id}/import/template.xlsx").status_code == 403


def test_a_coordinator_without_an_organisation_is_told_what_to_ask_the_admin_for(client, login, make_user):
    login(make_user("coordinator", name="无组织协调员"))
    for path in ("/coordinate/roster", "/coordinate/projects/new", "/coordinate/hours"):
        response = client.get(path)
        assert response.status_code == 409, path
        text = response.get_data(as_text=True)
        assert NO_ORGANIZATION in text and "管理员" in text and "协调员" in text


def test_a_registered_person_accepts_the_invitation_themselves(client, login, upload, confirm, coordinator, org,
                                                               make_user):
    person = make_user("volunteer", name="已注册者", phone=roster(1)[0][1])
    confirm(coordinator, org, upload(coordinator, org, xlsx(roster(1))).json["id"])
    login(person)
    page = client.get("/organizations/invitations").get_data(as_text=True)
    assert org.name in page
    invitation_id = page.split("/organizations/invitations/")[1].split("/")[0]
    response = client.post(f"/organizations/invitations/{invitation_id}/accept",
                           data={"csrf_token": csrf_token(client, "/organizations/invitations")})
    assert response.status_code == 302
    db.session.rollback()
    joined = db.session.get(User, person.id)
    assert joined.organization_id == org.id and joined.party_member is True
    assert client.post(f"/organizations/invitations/{invitation_id}/accept",
                       data={"csrf_token": csrf_token(client, "/organizations/invitations")}).status_code == 404


def test_nobody_else_can_answer_an_invitation(client, login, upload, confirm, coordinator, org, make_user):
    make_user("volunteer", name="已注册者", phone=roster(1)[0][1])
    confirm(coordinator, org, upload(coordinator, org, xlsx(roster(1))).json["id"])
    from credits.organizations.models import MemberInvitation

    invitation_id = db.session.scalar(select(MemberInvitation.id))
    login(make_user("volunteer", name="旁人"))
    response = client.post(f"/organizations/invitations/{invitation_id}/accept",
                           data={"csrf_token": csrf_token(client, "/organizations/invitations")})
    assert response.status_code == 404
