"""The coordinators' report pages: the dashboard and its charts, the sortable tables with their exports, and the
quarterly summary. Expected figures come from the report services, which the JSON API tests check."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import date

import pytest
from openpyxl import load_workbook

from credits.reports import services
from credits.reports.schemas import today
from credits.reports.services import Period
from tests.conftest import csrf_token
from tests.reports.conftest import this_period


@pytest.fixture
def page(client, login, coordinator):
    login(coordinator)
    return client


def text_of(response) -> str:
    """The page's main content as plain text, tags and runs of white space collapsed."""
    body = response.get_data(as_text=True)
    main = body[body.index("<main"):body.index("</main>")]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", main)))


def figures_shown(response) -> dict[str, str]:
    """Each figure's label → the value shown under it."""
    body = response.get_data(as_text=True)
    return {html.unescape(label): html.unescape(value).strip()
            for label, value in re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", body)}


def links(response) -> list[str]:
    return [html.unescape(href) for href in re.findall(r'href="([^"]+)"', response.get_data(as_text=True))]


def period_of(params: dict[str, str]) -> Period:
    return Period(date.fromisoformat(params["from"]), date.fromisoformat(params["to"]))


def test_the_dashboard_shows_the_figures_the_services_compute(page, town):
    expected = services.summary(period_of(this_period()))

    response = page.get("/reports/", query_string=this_period())

    assert response.status_code == 200
    shown = figures_shown(response)
    assert shown["新注册志愿者"] == str(expected["volunteers"]["registered"])
    assert shown["志愿者总数"] == str(expected["volunteers"]["total"])
    assert shown["参与服务的志愿者"] == str(expected["volunteers"]["active"]) == "2"
    assert shown["发布的项目"] == str(expected["projects"]["published"])
    assert shown["认领率"] == f"{expected['projects']['fill_rate'] * 100:.1f}%" == "44.4%"
    assert sum(town["minutes"]) == 240 and shown["核定时长"] == "4 小时"
    for label, key in (("发放", "issued"), ("扣回", "clawed_back"), ("调整", "adjusted"), ("兑换", "redeemed"),
                       ("过期", "expired"), ("期末流通", "outstanding")):
        assert shown[label] == str(expected["coins"][key]), label
    text = text_of(response)
    assert f"奉城老街洗车行 1 {town['price']}" in text
    assert f"时间段：{this_period()['from']} 至 {this_period()['to']}" in text


def test_the_charts_data_attributes_carry_the_series_and_the_numbers_stand_beside_them(page, town):
    series = services.summary(period_of(this_period()))["series"]

    response = page.get("/reports/", query_string=this_period())

    body = response.get_data(as_text=True)
    charts = {c["id"]: c for c in (json.loads(html.unescape(raw)) for raw in re.findall(r"data-chart='([^']*)'", body))}
    assert set(charts) == {"hours", "coins", "volunteers"}
    assert all(chart["labels"] == series["labels"] for chart in charts.values())
    assert charts["hours"]["datasets"][0]["data"] == [round(m / 60, 1) for m in series["approved_minutes"]]
    assert [d["data"] for d in charts["coins"]["datasets"]] == [series["coins_issued"], series["coins_redeemed"]]
    assert charts["volunteers"]["datasets"][0]["data"] == series["volunteers_registered"]
    month = series["labels"][series["coins_issued"].index(sum(town["coins"]))]
    assert f"{month} {sum(town['coins'])} {town['price']}" in text_of(response)  # the table beside the chart
    assert "vendor/chartjs/chart.umd.min.js" in body and "js/reports.js" in body
    assert "<script>" not in body  # the CSP allows no inline script


@pytest.mark.parametrize("name", ["month", "quarter", "year"])
def test_named_periods_choose_this_month_quarter_or_year(page, town, name):
    period = Period.named(name, today())

    response = page.get("/reports/", query_string={"period": name})

    assert response.status_code == 200
    assert f"时间段：{period.first.isoformat()} 至 {period.last.isoformat()}" in text_of(response)
    assert re.search(rf'href="/reports/\?period={name}"\s+aria-current="true"', response.get_data(as_text=True))
    assert figures_shown(response)["期末流通"] == str(services.summary(period)["coins"]["outstanding"])


@pytest.mark.parametrize("params, message", [
    ({"from": "2026-05-02", "to": "2026-05-01"}, "结束日期不能早于开始日期。"),
    ({"from": "2026-05-01", "to": ""}, "请同时填写开始和结束日期。"),
    ({"from": "2026-13-01", "to": "2026-12-31"}, "日期或时间的格式不正确。"),
    ({"from": "2020-01-01", "to": "2026-01-01"}, "时间段最长五年。"),
    ({"period": "decade"}, "须为以下之一"),
])
def test_a_bad_period_re_renders_the_dashboard_with_the_error_and_422(page, params, message):
    response = page.get("/reports/", query_string=params)

    assert response.status_code == 422
    assert message in text_of(response)
    assert "期末流通" not in text_of(response)
    assert 'id="f-from"' in response.get_data(as_text=True)  # the form is there to correct it


def test_the_dashboard_links_to_every_table_and_the_quarter_keeping_the_period(page, town):
    params = this_period()
    last = date.fromisoformat(params["to"])  # today: the period runs until now

    hrefs = links(page.get("/reports/", query_string=params))

    for name in ("projects", "organizations", "merchants", "volunteers", "records"):
        assert f"/reports/{name}?from={params['from']}&to={params['to']}" in hrefs
    assert f"/reports/quarter?year={last.year}&q={(last.month - 1) // 3 + 1}" in hrefs


def test_this_years_quarter_link_is_todays_quarter_and_a_past_years_is_its_last(page):
    """本年 in December linked to Q1 (issue 21, item 6): the running period links to the quarter of today."""
    now = today()
    hrefs = links(page.get("/reports/", query_string={"period": "year"}))
    assert f"/reports/quarter?year={now.year}&q={(now.month - 1) // 3 + 1}" in hrefs
    past = {"from": f"{now.year - 1}-01-01", "to": f"{now.year - 1}-12-31"}
    assert f"/reports/quarter?year={now.year - 1}&q=4" in links(page.get("/reports/", query_string=past))


@pytest.mark.parametrize("path", ["/reports/", "/reports/volunteers", "/reports/quarter",
                                  "/reports/records?format=csv"])
def test_the_pages_are_for_coordinators(client, login, volunteer, path):
    anonymous = client.get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]

    login(volunteer)
    refused = client.get(path)
    assert refused.status_code == 403
    assert "没有权限" in text_of(refused)


def test_the_menu_shows_reports_to_coordinators_only(app, client, login, coordinator, volunteer):
    login(volunteer)
    assert "/reports/" not in links(client.get("/"))

    other = app.test_client()
    other.post("/login", data={"phone": coordinator.phone, "password": "gongyi-test-2026",
                               "csrf_token": csrf_token(other)})
    assert "/reports/" in links(other.get("/"))


def row_names(response, column: int) -> list[str]:
    """The text of one column of the report table's body rows."""
    body = response.get_data(as_text=True)
    table = body[body.index('class="report-table"'):]
    rows = re.findall(r"<tr>(.*?)</tr>", table[table.index("<tbody>"):table.index("</tbody>")], re.S)
    return [html.unescape(re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[column]).strip() for row in rows]


def test_a_table_sorts_by_a_column_and_its_header_says_so(page, town):
    response = page.get("/reports/volunteers", query_string={"sort": "approved_minutes", "order": "desc",
                                                             **this_period()})

    assert response.status_code == 200
    assert row_names(response, 2)[:2] == ["李志愿", "王热心"]
    assert row_names(response, 4)[:2] == ["2.5", "1.5"]  # minutes are shown as hours
    body = response.get_data(as_text=True)
    header = re.search(r'<th scope="col" class="num" aria-sort="(\w+)">\s*<a href="([^"]+)"', body)
    assert header.group(1) == "descending"
    assert "sort=approved_minutes&order=asc" in html.unescape(header.group(2))  # a second click reverses it
    ascending = page.get("/reports/volunteers", query_string={"sort": "approved_minutes", "order": "asc",
                                                              **this_period()})
    assert row_names(ascending, 2)[-2:] == ["王热心", "李志愿"]


def test_a_table_pages_through_every_row_keeping_sort_and_period(page, town, make_user):
    for n in range(3):
        make_user(name=f"新人{n}")
    params = {"sort": "name", "order": "asc", "per_page": 3, **this_period()}

    first = page.get("/reports/volunteers", query_string=params)

    assert "第 1 / 3 页，共 7 条" in text_of(first)
    following = [h for h in links(first) if "page=2" in h]
    assert len(following) == 1
    for part in ("sort=name", "order=asc", "per_page=3", f"from={params['from']}", f"to={params['to']}"):
        assert part in following[0]
    seen = row_names(first, 0)
    for number in (2, 3):
        seen += row_names(page.get("/reports/volunteers", query_string={**params, "page": number}), 0)
    assert len(seen) == len(set(seen)) == 7


def test_codes_are_shown_with_their_chinese_labels(page, town):
    projects = text_of(page.get("/reports/projects", query_string=this_period()))
    organizations = text_of(page.get("/reports/organizations", query_string=this_period()))
    merchants = text_of(page.get("/reports/merchants", query_string=this_period()))
    records = text_of(page.get("/reports/records", query_string=this_period()))

    assert "已发布" in projects and "published" not in projects
    assert "党政机关" in organizations and "非公企业" in organizations
    assert "洗车" in merchants and "car_wash" not in merchants
    assert "已通过" in records and "待审核" in records and "补录" in records


def test_a_bad_sort_re_renders_the_table_page_with_422(page):
    response = page.get("/reports/volunteers", query_string={"sort": "phone"})

    assert response.status_code == 422
    assert "排序" in text_of(response)


def test_an_unknown_table_is_not_found(page):
    assert page.get("/reports/passwords").status_code == 404


def read_csv(response) -> list[list[str]]:
    assert response.data.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def test_the_export_links_download_every_row_as_csv_with_a_bom_and_as_xlsx(page, town, make_user):
    for n in range(3):
        make_user(name=f"新人{n}")
    shown = page.get("/reports/volunteers", query_string={"per_page": 2, "sort": "name", **this_period()})
    hrefs = links(shown)
    csv_link = next(h for h in hrefs if "format=csv" in h)
    xlsx_link = next(h for h in hrefs if "format=xlsx" in h)
    assert "sort=name" in csv_link and f"from={this_period()['from']}" in csv_link

    download = page.get(csv_link)

    assert download.status_code == 200
    assert download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    rows = read_csv(download)
    assert rows[0][:3] == ["编号", "志愿者编号", "名称"]
    assert len(rows) - 1 == 1 + 3 + 3  # every row, not the page of two: 赵协调, the town's three, the newcomers
    assert [row[2] for row in rows[1:]] == sorted(row[2] for row in rows[1:])
    sheet = load_workbook(io.BytesIO(page.get(xlsx_link).data), read_only=True).active
    assert [row[2] for row in list(sheet.iter_rows(values_only=True))[1:]] == [row[2] for row in rows[1:]]


def test_the_quarter_page_sums_up_the_current_quarter_with_each_tables_top_rows(page, town):
    day = today()
    quarter = Period.quarter(day.year, (day.month - 1) // 3 + 1)
    expected = services.summary(quarter)

    response = page.get("/reports/quarter")

    assert response.status_code == 200
    text = text_of(response)
    assert f"{day.year} 年第 {(day.month - 1) // 3 + 1} 季度公益服务汇总" in text
    assert f"时间段：{quarter.first.isoformat()} 至 {quarter.last.isoformat()}" in text
    assert figures_shown(response)["发放"] == str(expected["coins"]["issued"])
    for title in ("项目统计（前", "组织统计（前", "商户统计（前", "志愿者统计（前"):
        assert title in text
    assert "健康加油站" in text and "奉城老街洗车行" in text
    body = response.get_data(as_text=True)
    assert "data-print" in body and "css/reports.css" in body


def test_the_quarter_page_names_any_quarter(page):
    response = page.get("/reports/quarter", query_string={"year": 2025, "q": 1})

    assert response.status_code == 200
    assert "时间段：2025-01-01 至 2025-03-31" in text_of(response)
    hrefs = links(response)
    assert "/reports/quarter?year=2024&q=4" in hrefs and "/reports/quarter?year=2025&q=2" in hrefs


@pytest.mark.parametrize("params", [{"q": 5}, {"q": "x"}, {"year": "abc", "q": 1}, {"year": 1900, "q": 1}])
def test_a_bad_quarter_is_a_422_page_with_the_error(page, params):
    response = page.get("/reports/quarter", query_string=params)

    assert response.status_code == 422
    assert "输入有误" in text_of(response)
    assert 'name="year"' in response.get_data(as_text=True)


def test_the_dashboard_speaks_english_on_request(page, town):
    page.get("/lang/en")

    response = page.get("/reports/", query_string=this_period())

    assert "Volunteers and projects" in text_of(response)
