"""Roster import through the API: the preview lists every row's problem and writes nothing; confirm writes the good
rows once; every kind of bad file gets a clear answer (issue 17, "Bad input")."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import func, select

from credits.auth.models import AuditEvent, User
from credits.extensions import db
from credits.notifications.models import Notification
from credits.organizations.models import MemberInvitation, RosterImport
from credits.organizations.parsing import MAX_ROWS
from tests.organizations.conftest import csv_bytes, roster, xlsx


def user_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(User))


def problems_of(response) -> dict[int, str | None]:
    return {row["row"]: row["problem_code"] for row in response.json["rows"]}


# --- organisations ------------------------------------------------------------------------------------------------

def test_admin_creates_an_organization_through_the_api(client, make_user, token_for):
    admin = make_user("admin", name="管理员")
    response = client.post("/api/v1/organizations", json={"name": "奉城镇某科技公司党支部", "kind": "enterprise"},
                           headers=token_for(admin))
    assert response.status_code == 201
    assert response.json["name"] == "奉城镇某科技公司党支部" and response.json["kind"] == "enterprise"
    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.object_type == "organizations")) == \
        "organization.create"


def test_creating_an_organization_twice_or_with_a_bad_kind_is_refused(client, make_user, token_for):
    headers = token_for(make_user("admin", name="管理员"))
    assert client.post("/api/v1/organizations", json={"name": "同名组织", "kind": "social"},
                       headers=headers).status_code == 201
    again = client.post("/api/v1/organizations", json={"name": "同名组织", "kind": "social"}, headers=headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "name_taken"
    bad = client.post("/api/v1/organizations", json={"name": "另一组织", "kind": "club"}, headers=headers)
    assert bad.status_code == 422 and "kind" in bad.json["error"]["fields"]


# --- preview ------------------------------------------------------------------------------------------------------

def test_preview_lists_the_rows_and_writes_no_account(upload, coordinator, org):
    before = user_count()
    response = upload(coordinator, org, xlsx(roster(5)))
    assert response.status_code == 201, response.json
    assert response.json["ok"] == 5 and response.json["problems"] == 0
    assert [row["action"] for row in response.json["rows"]] == ["create"] * 5
    assert response.json["rows"][0] == {
        "row": 2, "name": "成员0000", "phone": "13700000000", "party_member": True, "note": "", "problem": None,
        "problem_code": None, "action": "create", "action_text": "新建账号并发送激活短信"}
    assert user_count() == before
    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.object_type == "roster_imports")) == \
        "roster_import.preview"


def test_every_row_problem_is_named_in_the_preview(upload, coordinator, org, make_user, make_org):
    elsewhere = make_user("volunteer", name="别处成员", organization=make_org("别的组织"), phone="13711110000")
    rows = [
        ("张三", "13711112222", "是", ""),  # 2: good
        ("", "13711112223", "否", ""),  # 3: no name
        ("王" * 51, "13711112224", "否", ""),  # 4: too long
        ("李四😀", "13711112225", "否", ""),  # 5: emoji
        ("赵六\x07", "13711112226", "否", ""),  # 6: a control character
        ("钱七", "1234567", "否", ""),  # 7: not a phone
        ("孙八", "13711112222", "否", ""),  # 8: the phone of row 2
        ("周九", "13711112227", "也许", ""),  # 9: neither 是 nor 否
        ("吴十", elsewhere.phone, "否", ""),  # 10: a member of another organisation
        ("郑一", "13711112228", "否", "备" * 201),  # 11: note too long
        ("阿依古丽·买买提", "13711112229", "", ""),  # 12: good: a middle dot, and 党员 left blank means 否
    ]
    response = upload(coordinator, org, csv_bytes(rows), "roster.csv")
    assert response.status_code == 201, response.json
    assert problems_of(response) == {2: None, 3: "name_empty", 4: "name_too_long", 5: "name_bad_chars",
                                     6: "name_bad_chars", 7: "bad_phone", 8: "duplicate", 9: "bad_party_member",
                                     10: "other_organization", 11: "note_too_long", 12: None}
    by_row = {row["row"]: row for row in response.json["rows"]}
    assert by_row[8]["problem"] == "与第 2 行手机号重复"
    assert by_row[10]["problem"] == "已是其他组织的成员"
    assert by_row[12]["party_member"] is False
    assert response.json["ok"] == 2 and response.json["problems"] == 9


def test_a_phone_in_three_formats_is_read_as_one_number(upload, coordinator, org):
    rows = [("甲", "+86 139 1234 5678", "是", ""), ("乙", "139-1234-5678", "否", ""),
            ("丙", "(139)1234 5678", "否", ""), ("丁", "１３９１２３４０００１", "否", "")]
    response = upload(coordinator, org, xlsx(rows))
    assert [row["phone"] for row in response.json["rows"]] == ["13912345678"] * 3 + ["13912340001"]
    assert problems_of(response) == {2: None, 3: "duplicate", 4: "duplicate", 5: None}


def test_a_phone_typed_as_a_number_cell_keeps_its_eleven_digits(upload, coordinator, org):
    response = upload(coordinator, org, xlsx([("甲", 13912345678, "是", ""), ("乙", 13912345679.0, "否", "")]))
    assert [row["phone"] for row in response.json["rows"]] == ["13912345678", "13912345679"]
    assert response.json["problems"] == 0


def test_formulas_are_read_as_their_saved_values_and_never_evaluated(upload, coordinator, org):
    """openpyxl saves formulas without a cached value: data_only reads nothing, so the rows are refused, not
    computed; a formula typed into a CSV is only text, refused as a name."""
    response = upload(coordinator, org, xlsx([("=HYPERLINK(\"http://x\",\"张三\")", "13912345678", "是", ""),
                                              ("李四", "=13912345600+1", "否", "")]))
    assert problems_of(response) == {2: "name_empty", 3: "bad_phone"}
    in_csv = upload(coordinator, org, csv_bytes([("=cmd|'/c calc'!A1", "13912345678", "是", "")]), "r.csv")
    assert problems_of(in_csv) == {2: "name_bad_chars"}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_in_utf8_with_or_without_bom_or_gbk_is_read(upload, coordinator, org, encoding):
    response = upload(coordinator, org, csv_bytes([("欧阳娜娜", "13912345678", "是", "党小组长")],
                                                  encoding=encoding), "roster.csv")
    assert response.status_code == 201, response.json
    assert response.json["rows"][0]["name"] == "欧阳娜娜" and response.json["rows"][0]["note"] == "党小组长"


def test_headers_with_the_templates_hints_are_recognised(upload, coordinator, org):
    data = xlsx([("甲", "13912345678", "是")], header=["姓名", "手机号码", "党员（是/否）"])
    response = upload(coordinator, org, data)
    assert response.status_code == 201 and response.json["ok"] == 1


@pytest.mark.parametrize(("data", "filename", "message"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "photo.xlsx", "不是 XLSX 或 CSV"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "roster.xls", "旧版 Excel"),
    (b"PK\x03\x04 not really a zip", "roster.xlsx", "文件已损坏"),
    (b"", "roster.csv", "文件是空的"),
    (csv_bytes([("甲", "否")], header=["姓名", "党员"]), "roster.csv", "缺少列：手机号"),
    (xlsx([("甲",)], header=["名单"]), "roster.xlsx", "缺少列：姓名、手机号、党员"),
], ids=["not-a-roster", "old-xls", "broken-zip", "empty", "missing-phone-column", "missing-every-column"])
def test_a_file_that_is_not_a_roster_is_refused_with_a_clear_message(upload, coordinator, org, data, filename,
                                                                     message):
    before = db.session.scalar(select(func.count()).select_from(RosterImport))
    response = upload(coordinator, org, data, filename)
    assert response.status_code == 422
    assert message in " ".join(response.json["error"]["fields"]["file"])
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(RosterImport)) == before


def test_a_request_without_a_file_is_refused(client, token_for, coordinator, org):
    response = client.post(f"/api/v1/organizations/{org.id}/imports", headers=token_for(coordinator))
    assert response.status_code == 422 and "file" in response.json["error"]["fields"]


def _bomb(member_bytes: int) -> bytes:
    """An XLSX-shaped zip with one member of `member_bytes` zeros, which deflate to next to nothing."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", bytes(member_bytes))
    return buffer.getvalue()


@pytest.mark.parametrize("size", [60 * 1024 * 1024, 5 * 1024 * 1024], ids=["over-40MB", "ratio-over-100"])
def test_a_zip_bomb_is_refused_before_it_is_inflated(upload, coordinator, org, size):
    data = _bomb(size)
    assert len(data) < 200_000
    response = upload(coordinator, org, data)
    assert response.status_code == 413
    assert "解压后异常巨大" in response.json["error"]["fields"]["file"][0]


def test_more_rows_than_the_limit_are_refused(upload, coordinator, org):
    response = upload(coordinator, org, csv_bytes(roster(MAX_ROWS + 1)), "roster.csv")
    assert response.status_code == 413
    assert "5000" in response.json["error"]["fields"]["file"][0]


def test_a_hundred_thousand_row_file_gets_a_clear_answer(upload, coordinator, org):
    data = csv_bytes(roster(100_000, start=13000000000))
    response = upload(coordinator, org, data, "roster.csv")
    assert response.status_code == 413
    assert response.json["error"]["code"] == "too_large"
    assert "5000" in response.json["error"]["fields"]["file"][0]


def test_the_limit_itself_is_accepted(upload, coordinator, org):
    response = upload(coordinator, org, xlsx(roster(MAX_ROWS)))
    assert response.status_code == 201 and response.json["ok"] == MAX_ROWS


# --- confirm ------------------------------------------------------------------------------------------------------

def test_confirm_creates_pending_accounts_and_texts_each_an_activation_link(upload, confirm, coordinator, org, sms):
    preview = upload(coordinator, org, xlsx(roster(4) + [("坏行", "123", "是", "")]))
    response = confirm(coordinator, org, preview.json["id"])
    assert response.status_code == 200
    assert response.json == {"created": 4, "invited": 0, "skipped": 0}
    db.session.rollback()
    members = db.session.scalars(select(User).where(User.organization_id == org.id, User.id != coordinator.id)
                                 .order_by(User.phone)).all()
    assert [m.phone for m in members] == [f"1370000000{i}" for i in range(4)]
    assert all(m.pending_activation and m.roles == ["volunteer"] and m.volunteer_no for m in members)
    assert [m.party_member for m in members] == [True, False, False, True]
    assert all(m.password_hash.startswith("!") for m in members)  # no password matches it
    texts = [t for t in sms() if t["kind"] == "activation"]
    assert sorted(t["to"] for t in texts) == [m.phone for m in members]
    assert all("/activate/" in t["text"] and "7 天" in t["text"] for t in texts)
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("roster_import.%"))).all()
    assert sorted(actions) == ["roster_import.confirm", "roster_import.preview"]
    created = [(int(object_id), actor_id) for object_id, details, actor_id in db.session.execute(
        select(AuditEvent.object_id, AuditEvent.details, AuditEvent.actor_id)
        .where(AuditEvent.action == "user.create")) if (details or {}).get("import_id") == preview.json["id"]]
    assert sorted(created) == sorted((m.id, coordinator.id) for m in members)  # one event per account made


def test_confirming_twice_creates_nothing_new(upload, confirm, coordinator, org, sms):
    preview = upload(coordinator, org, xlsx(roster(3)))
    assert confirm(coordinator, org, preview.json["id"]).json == {"created": 3, "invited": 0, "skipped": 0}
    before, texts = user_count(), len(sms())
    assert confirm(coordinator, org, preview.json["id"]).json == {"created": 0, "invited": 0, "skipped": 3}
    assert user_count() == before and len(sms()) == texts
    assert db.session.get(RosterImport, preview.json["id"]).result == {"created": 3, "invited": 0, "skipped": 0}


def test_re_importing_the_same_file_changes_nothing(upload, confirm, coordinator, org):
    data = xlsx(roster(3))
    confirm(coordinator, org, upload(coordinator, org, data).json["id"])
    before = user_count()
    again = upload(coordinator, org, data)
    assert [row["action"] for row in again.json["rows"]] == ["skip"] * 3
    assert confirm(coordinator, org, again.json["id"]).json == {"created": 0, "invited": 0, "skipped": 3}
    assert user_count() == before


def test_re_import_after_fixing_the_bad_rows_adds_only_those(upload, confirm, coordinator, org):
    rows = roster(3)
    broken = rows[:2] + [("第三人", "1370000000", "否", "")]  # a digit short
    first = confirm(coordinator, org, upload(coordinator, org, xlsx(broken)).json["id"])
    assert first.json == {"created": 2, "invited": 0, "skipped": 0}
    second = confirm(coordinator, org, upload(coordinator, org, xlsx(rows)).json["id"])
    assert second.json == {"created": 1, "invited": 0, "skipped": 2}
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(User).where(User.organization_id == org.id)) == 4


def test_a_registered_person_in_no_organisation_is_invited_not_duplicated(upload, confirm, coordinator, org,
                                                                          make_user):
    registered = make_user("volunteer", name="已注册", phone="13700000001")
    preview = upload(coordinator, org, xlsx(roster(2)))
    assert [row["action"] for row in preview.json["rows"]] == ["create", "invite"]
    assert confirm(coordinator, org, preview.json["id"]).json == {"created": 1, "invited": 1, "skipped": 0}
    db.session.rollback()
    registered = db.session.get(User, registered.id)
    assert registered.organization_id is None  # until they accept
    assert db.session.scalar(select(Notification.kind).where(Notification.user_id == registered.id)) == \
        "organization_invitation"
    assert db.session.scalar(select(func.count()).select_from(User).where(User.phone == "13700000001")) == 1
    # A second confirm invites nobody twice.
    assert confirm(coordinator, org, preview.json["id"]).json == {"created": 0, "invited": 0, "skipped": 2}
    assert db.session.scalar(select(func.count()).select_from(MemberInvitation)) == 1


def test_another_organisations_coordinator_can_neither_preview_nor_confirm(upload, confirm, coordinator, org,
                                                                           make_user, make_org):
    other_org = make_org("别的组织")
    outsider = make_user("coordinator", name="别家协调员", organization=other_org)
    assert upload(outsider, org, xlsx(roster(1))).status_code == 403
    preview = upload(coordinator, org, xlsx(roster(1)))
    assert confirm(outsider, org, preview.json["id"]).status_code == 403
    # Their own organisation's URL does not reach this organisation's import either.
    assert confirm(outsider, other_org, preview.json["id"]).status_code == 404


def test_a_stored_preview_is_read_back_a_page_at_a_time(client, token_for, upload, confirm, coordinator, org):
    rows = roster(30)
    rows[4] = ("坏号码", "123", "否", "")
    preview = upload(coordinator, org, xlsx(rows)).json
    url = f"/api/v1/organizations/{org.id}/imports/{preview['id']}"
    page = client.get(url, query_string={"page": 2, "per_page": 10}, headers=token_for(coordinator)).json
    assert page["ok"] == 29 and page["problems"] == 1 and page["result"] is None
    assert page["rows"]["total"] == 30 and [row["row"] for row in page["rows"]["items"]] == list(range(12, 22))
    problems = client.get(url, query_string={"only": "problems"}, headers=token_for(coordinator)).json
    assert [row["row"] for row in problems["rows"]["items"]] == [6] and problems["rows"]["total"] == 1
    confirm(coordinator, org, preview["id"])
    done = client.get(url, headers=token_for(coordinator)).json
    assert done["result"] == {"created": 29, "invited": 0, "skipped": 0} and done["confirmed_at"]
