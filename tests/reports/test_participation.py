"""The participation report (两新组织参与社区活动, SPEC 2.8, issue 17.5): each organisation's current members, party
members, activated members, members who served in the period, the rate, hours, projects, and the coins its members
earned and redeemed — exact against a hand-made town, scoped to the reader's organisation unless it is the town's."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from credits.auth import members
from credits.extensions import db
from credits.merchants import services as merchants
from tests.hours.helpers import (
    approve,
    at,
    confirmed_claim,
    file,
    ledger_dated,
    local_day,
    revoke,
    slot,
    started_project,
)
from tests.merchants.helpers import make_service, make_shop, make_staff

URL = "/api/v1/reports/participation"


@pytest.fixture
def county(make_user, make_org, org, coordinator):
    """`org` runs two projects. 奉城两新企业 has five members: two party members (one not yet activated), two who
    served in the period (150 and 60 minutes, on two projects), one whose approval was revoked, and its
    coordinator; one of them also served before the period, and one redeemed a voucher in it and one before it.
    The town's party committee has a coordinator and one member who served 90 minutes. Someone of no organisation
    served, and a former member served before being removed: neither counts anywhere."""
    firm = make_org("奉城两新企业", kind="enterprise")
    town = make_org("奉城镇党委", kind="government")
    empty = make_org("奉城社会组织", kind="social")
    health = started_project(coordinator, title="健康加油站", block_minutes=60, coins_per_block=2)
    clean = started_project(coordinator, title="变废为宝", block_minutes=30, coins_per_block=1)
    people = {key: make_user(name=name, organization=firm) for key, name in
              (("a", "甲党员"), ("b", "乙待激活"), ("c", "丙群众"), ("d", "丁撤销"), ("f", "戊离开"))}
    people["firm_coordinator"] = make_user("coordinator", name="企业协调", organization=firm)
    people["e"] = make_user(name="己镇里", organization=town)
    people["town_coordinator"] = make_user("coordinator", name="党委协调", organization=town)
    people["outsider"] = make_user(name="庚无组织")
    people["a"].party_member = people["b"].party_member = True
    people["b"].pending_activation = True
    db.session.commit()

    earned = approve(file(confirmed_claim(health, people["a"]), people["a"], slot(3, 150)), coordinator)
    earned += approve(file(confirmed_claim(clean, people["c"]), people["c"], slot(5, 60)), coordinator)
    with ledger_dated(at(20, 12)):  # served and paid before the period
        earlier = approve(file(confirmed_claim(health, people["c"]), people["c"], slot(20, 90)), coordinator)
    revoked = file(confirmed_claim(clean, people["d"]), people["d"], slot(2, 60))
    approve(revoked, coordinator)
    revoke(revoked, coordinator)  # issued and clawed back in the period: nothing earned, no service
    town_earned = approve(file(confirmed_claim(health, people["e"]), people["e"], slot(1, 90)), coordinator)
    approve(file(confirmed_claim(health, people["outsider"]), people["outsider"], slot(2, 45)), coordinator)
    approve(file(confirmed_claim(clean, people["f"]), people["f"], slot(4, 60)), coordinator)
    members.remove_member(firm, people["f"].id, actor=people["firm_coordinator"])
    db.session.commit()

    shop = make_shop(coordinator, name="奉城老街洗车行")
    staff = make_staff(shop, coordinator)
    wash = make_service(shop, coordinator, price=2)
    spent = merchants.take_voucher(wash, volunteer=people["a"])
    early = merchants.take_voucher(wash, volunteer=people["c"])
    merchants.take_voucher(wash, volunteer=people["c"])  # never redeemed: its coins sit in escrow
    db.session.commit()
    merchants.redeem(spent, staff=staff)
    db.session.commit()
    with ledger_dated(at(15, 12)):
        merchants.redeem(early, staff=staff)
        db.session.commit()
    return {"firm": firm, "town": town, "empty": empty, "people": people, "org": org, "earned": earned,
            "earlier": earlier, "town_earned": town_earned, "redeemed": wash.price}


def period() -> dict[str, str]:
    """The last eleven local days."""
    return {"from": local_day(10).isoformat(), "to": local_day(0).isoformat()}


def rows(client, headers, **params) -> dict[str, dict]:
    response = client.get(URL, headers=headers, query_string={**period(), **params})
    assert response.status_code == 200, response.json
    return {row["name"]: row for row in response.json["items"]}


def test_each_figure_is_exact_for_the_hand_made_town(client, token_for, county):
    report = rows(client, token_for(county["people"]["town_coordinator"]))

    assert report["奉城两新企业"] == {
        "id": county["firm"].id, "name": "奉城两新企业", "kind": "enterprise", "members": 5, "party_members": 2,
        "activated": 4, "served": 2, "participation_rate": 0.4, "approved_minutes": 210, "projects": 2,
        "coins_earned": county["earned"], "coins_redeemed": county["redeemed"]}
    assert county["earned"] > 0
    town = report["奉城镇党委"]
    assert (town["members"], town["served"], town["participation_rate"], town["approved_minutes"],
            town["projects"], town["coins_earned"], town["coins_redeemed"]) == (2, 1, 0.5, 90, 1, 2, 0)
    assert county["town_earned"] == 2  # 90 minutes at 2 coins a whole hour
    assert report["奉城社会组织"] == {
        "id": county["empty"].id, "name": "奉城社会组织", "kind": "social", "members": 0, "party_members": 0,
        "activated": 0, "served": 0, "participation_rate": 0.0, "approved_minutes": 0, "projects": 0,
        "coins_earned": 0, "coins_redeemed": 0}
    organiser = report[county["org"].name]  # the coordinator's own organisation: they ran projects, not served
    assert (organiser["members"], organiser["served"], organiser["approved_minutes"]) == (1, 0, 0)


def test_a_period_before_the_service_counts_what_was_done_then(client, token_for, county):
    earlier = {"from": local_day(25).isoformat(), "to": local_day(11).isoformat()}
    report = rows(client, token_for(county["people"]["town_coordinator"]), **earlier)
    firm = report["奉城两新企业"]
    assert (firm["served"], firm["approved_minutes"], firm["projects"]) == (1, 90, 1)
    assert firm["coins_earned"] == county["earlier"] == 2 and firm["coins_redeemed"] == county["redeemed"]
    assert firm["members"] == 5  # membership is today's, whatever the period


def test_an_organisations_coordinator_sees_only_their_own_and_the_towns_see_all(
        client, token_for, make_user, county):
    own = rows(client, token_for(county["people"]["firm_coordinator"]))
    assert list(own) == ["奉城两新企业"]
    town = rows(client, token_for(county["people"]["town_coordinator"]))
    assert set(town) == {"奉城两新企业", "奉城镇党委", "奉城社会组织", county["org"].name}
    assert own["奉城两新企业"] == town["奉城两新企业"]  # the one-organisation query gives the same figures
    admin = rows(client, token_for(make_user("admin", name="管理员")))
    assert set(admin) == set(town)
    nowhere = make_user("coordinator", name="无组织协调")
    assert client.get(URL, headers=token_for(nowhere)).status_code == 403
    assert client.get(URL, headers=token_for(county["people"]["a"])).status_code == 403
    csv_own = client.get(URL, headers=token_for(county["people"]["firm_coordinator"]),
                         query_string={**period(), "format": "csv"}).get_data(as_text=True)
    assert "奉城两新企业" in csv_own and "奉城镇党委" not in csv_own


def test_bad_periods_and_arguments_are_a_clear_422(client, token_for, county):
    headers = token_for(county["people"]["town_coordinator"])
    days = period()
    for params in ({"from": "2026-02-30", "to": "2026-03-01"}, {"from": days["to"], "to": days["from"]},
                   {"from": days["from"]}, {"format": "pdf"}, {"sort": "phone"}, {"per_page": 0}):
        response = client.get(URL, headers=headers, query_string=params)
        assert response.status_code == 422, params
        assert response.json["error"]["code"] == "validation_error"


def test_the_csv_and_xlsx_downloads_carry_the_same_figures(client, token_for, county):
    headers = token_for(county["people"]["firm_coordinator"])
    text = client.get(URL, headers=headers, query_string={**period(), "format": "csv"}).get_data(as_text=True)
    header, row = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert header == ["编号", "名称", "类型", "成员", "党员", "已激活", "参与服务人数", "参与率", "已核定时长（小时）",
                      "项目数", "获得公益币", "核销公益币"]
    assert row == [str(county["firm"].id), "奉城两新企业", "非公企业", "5", "2", "4", "2", "40.0%", "3.5", "2",
                   str(county["earned"]), str(county["redeemed"])]

    response = client.get(URL, headers=headers, query_string={**period(), "format": "xlsx"})
    assert response.status_code == 200 and "participation" in response.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(response.data)).active
    header, row = list(sheet.iter_rows(values_only=True))
    assert header[7] == "参与率" and row[1] == "奉城两新企业"
    assert row[3:8] == (5, 2, 4, 2, 0.4) and row[8] == 3.5
    assert sheet.cell(row=2, column=8).number_format == "0.0%"


def test_the_page_prints_the_figures_with_the_membership_note_and_links_the_downloads(client, login, county):
    login(county["people"]["firm_coordinator"])
    response = client.get("/reports/participation", query_string=period())

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "两新组织参与社区活动" in page and "奉城两新企业" in page and "40.0%" in page
    assert "奉城镇党委" not in page
    assert "成员按当前所属组织统计" in page and "data-print" in page
    assert "format=csv" in page and "format=xlsx" in page
    download = client.get("/reports/participation", query_string={**period(), "format": "csv"})
    assert download.status_code == 200 and "奉城两新企业" in download.get_data(as_text=True)
    refused = client.get("/reports/participation", query_string={"from": period()["to"], "to": period()["from"]})
    assert refused.status_code == 422 and "结束日期不能早于开始日期" in refused.get_data(as_text=True)


def test_the_page_is_refused_to_volunteers(client, login, county):
    login(county["people"]["a"])
    assert client.get("/reports/participation").status_code == 403
