"""The review API's shape: bodies, status codes and error codes per SPEC 3.2, and the ranking's CSV and XLSX."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from credits.extensions import db
from tests.reviews.helpers import add, give_score, local_year, open_review, project_with


def test_opening_a_review_answers_201_with_the_review(client, token_for, coordinator):
    response = client.post("/api/v1/reviews", json={"year": 2026, "title": " 年度评审 "},
                           headers=token_for(coordinator))
    assert response.status_code == 201, response.json
    body = response.json
    assert {k: body[k] for k in ("year", "title", "status", "closed_at")} == {
        "year": 2026, "title": "年度评审", "status": "open", "closed_at": None}
    assert body["created_by"] == {"id": coordinator.id, "name": coordinator.name}
    assert body["created_at"].endswith("+08:00")


@pytest.mark.parametrize(("body", "field"), [
    ({"title": "评审"}, "year"),
    ({"year": 1999, "title": "评审"}, "year"),
    ({"year": 2026.5, "title": "评审"}, "year"),
    ({"year": 2026, "title": ""}, "title"),
    ({"year": 2026, "title": "评审", "status": "closed"}, "status"),
    ({"year": 2026, "title": "评\u0000审"}, "title"),  # PostgreSQL cannot store NUL
    ({"year": 2026, "title": "评\ud800审"}, "title"),  # nor a lone surrogate, nor can SQLite
])
def test_a_bad_review_is_422_naming_the_field(client, token_for, coordinator, body, field):
    response = client.post("/api/v1/reviews", json=body, headers=token_for(coordinator))
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error" and field in response.json["error"]["fields"]


def test_reviews_are_listed_in_pages_newest_year_first(client, token_for, coordinator):
    for year in (2024, 2026, 2025):
        open_review(coordinator, year, title=f"{year}年度评审")
    response = client.get("/api/v1/reviews?per_page=2", headers=token_for(coordinator))
    assert response.status_code == 200
    assert [r["year"] for r in response.json["items"]] == [2026, 2025]
    assert (response.json["page"], response.json["per_page"], response.json["total"]) == (1, 2, 3)


def test_a_review_shows_candidates_with_figures_and_my_score(client, token_for, review, health, judge):
    give_score(review, health, 86, judge, "扎实")
    body = client.get(f"/api/v1/reviews/{review.id}", headers=token_for(judge)).json
    assert body["is_reviewer"] is True
    assert body["reviewers"] == [{"id": judge.id, "name": "王评审"}]
    [candidate] = body["candidates"]
    assert candidate["project"]["id"] == health.id and candidate["project"]["title"] == "健康加油站"
    assert candidate["figures"] == {"approved_minutes": 180, "approved_hours": 3.0, "volunteers": 2, "capacity": 4,
                                    "confirmed": candidate["figures"]["confirmed"],
                                    "fill_rate": candidate["figures"]["fill_rate"], "no_shows": 1}
    assert candidate["figures"]["fill_rate"] == pytest.approx(candidate["figures"]["confirmed"] / 4)
    assert candidate["scores"] == 1
    assert candidate["my_score"]["score"] == 86 and candidate["my_score"]["comment"] == "扎实"


def test_an_unknown_review_is_404(client, token_for, coordinator):
    response = client.get("/api/v1/reviews/999999", headers=token_for(coordinator))
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


def test_candidates_of_another_year_are_409_and_unknown_ones_422(client, token_for, coordinator, health):
    other_year = open_review(coordinator, local_year(health) + 1)
    headers = token_for(coordinator)
    refused = client.post(f"/api/v1/reviews/{other_year.id}/candidates", json={"project_ids": [health.id]},
                          headers=headers)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "invalid_state"
    unknown = client.post(f"/api/v1/reviews/{other_year.id}/candidates", json={"project_ids": [999999]},
                          headers=headers)
    assert unknown.status_code == 422 and "project_ids" in unknown.json["error"]["fields"]
    empty = client.post(f"/api/v1/reviews/{other_year.id}/candidates", json={"project_ids": []}, headers=headers)
    assert empty.status_code == 422


@pytest.mark.parametrize(("path", "body"), [("candidates", {"project_ids": [2**40]}),
                                            ("reviewers", {"user_ids": [2**40]})])
def test_an_id_no_row_can_have_is_422_not_an_overflow(client, token_for, coordinator, review, path, body):
    response = client.post(f"/api/v1/reviews/{review.id}/{path}", json=body, headers=token_for(coordinator))
    assert response.status_code == 422 and next(iter(body)) in response.json["error"]["fields"]


def test_a_comment_with_a_control_character_is_422(client, token_for, review, health, judge):
    response = client.put(f"/api/v1/reviews/{review.id}/scores/{health.id}", json={"score": 90, "comment": "好\u0000"},
                          headers=token_for(judge))
    assert response.status_code == 422 and "comment" in response.json["error"]["fields"]


def test_inviting_a_volunteer_is_refused(client, token_for, coordinator, review, volunteer):
    response = client.post(f"/api/v1/reviews/{review.id}/reviewers", json={"user_ids": [volunteer.id]},
                           headers=token_for(coordinator))
    assert response.status_code == 409 and response.json["error"]["fields"] == {"user_ids": [volunteer.id]}


@pytest.mark.parametrize("value", [-1, 101, "九十", None, 85.5])
def test_a_score_outside_0_to_100_or_not_a_whole_number_is_422(client, token_for, review, health, judge, value):
    response = client.put(f"/api/v1/reviews/{review.id}/scores/{health.id}", json={"score": value},
                          headers=token_for(judge))
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error" and "score" in response.json["error"]["fields"]


def test_scoring_twice_through_the_api_updates_the_score(client, token_for, review, health, judge):
    headers = token_for(judge)
    url = f"/api/v1/reviews/{review.id}/scores/{health.id}"
    first = client.put(url, json={"score": 60, "comment": "一般"}, headers=headers)
    second = client.put(url, json={"score": 90}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json["score"] == 90 and second.json["comment"] == ""
    assert second.json["project_id"] == health.id and second.json["reviewer_id"] == judge.id
    ranking = client.get(f"/api/v1/reviews/{review.id}/ranking", headers=headers).json
    assert ranking["items"][0]["mean_score"] == 90.0 and ranking["items"][0]["scores"] == 1


def test_a_coordinator_not_invited_is_403(client, token_for, review, health, coordinator):
    response = client.put(f"/api/v1/reviews/{review.id}/scores/{health.id}", json={"score": 80},
                          headers=token_for(coordinator))
    assert response.status_code == 403 and response.json["error"]["code"] == "forbidden"


def test_a_project_that_is_not_a_candidate_is_404(client, token_for, review, judge, coordinator, make_user):
    other = project_with(coordinator, make_user, title="变废为宝")
    for project_id in (other.id, 999999):
        response = client.put(f"/api/v1/reviews/{review.id}/scores/{project_id}", json={"score": 80},
                              headers=token_for(judge))
        assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


def test_a_closed_review_answers_409_invalid_state(client, token_for, review, health, judge, coordinator):
    closed = client.post(f"/api/v1/reviews/{review.id}/close", headers=token_for(coordinator))
    assert closed.status_code == 200 and closed.json["status"] == "closed" and closed.json["closed_at"]
    response = client.put(f"/api/v1/reviews/{review.id}/scores/{health.id}", json={"score": 80},
                          headers=token_for(judge))
    assert response.status_code == 409 and response.json["error"]["code"] == "invalid_state"
    again = client.post(f"/api/v1/reviews/{review.id}/close", headers=token_for(coordinator))
    assert again.status_code == 409


def test_removing_a_candidate_is_204_then_404(client, token_for, review, health, coordinator):
    url = f"/api/v1/reviews/{review.id}/candidates/{health.id}"
    assert client.delete(url, headers=token_for(coordinator)).status_code == 204
    assert client.delete(url, headers=token_for(coordinator)).status_code == 404


@pytest.fixture
def ranked(review, health, judge, coordinator, make_user):
    """Two more candidates: one scored above health, one unscored."""
    top = project_with(coordinator, make_user, title="变废为宝", minutes=[90])
    idle = project_with(coordinator, make_user, title="啄木鸟行动")
    add(review, top, idle, actor=coordinator)
    give_score(review, health, 80, judge, "组织有序")
    give_score(review, top, 95, judge, "亮点突出")
    return [top, health, idle]


def test_the_ranking_json_is_a_page_of_rows(client, token_for, review, ranked, coordinator):
    body = client.get(f"/api/v1/reviews/{review.id}/ranking?per_page=2", headers=token_for(coordinator)).json
    assert body["review"]["id"] == review.id
    assert (body["page"], body["per_page"], body["total"]) == (1, 2, 3)
    assert [(r["rank"], r["project"]["title"], r["mean_score"]) for r in body["items"]] == [
        (1, "变废为宝", 95.0), (2, "健康加油站", 80.0)]
    assert body["items"][0]["remarks"] == [{"reviewer": "王评审", "score": 95, "comment": "亮点突出"}]
    rest = client.get(f"/api/v1/reviews/{review.id}/ranking?per_page=2&page=2", headers=token_for(coordinator))
    assert [(r["rank"], r["mean_score"], r["scores"]) for r in rest.json["items"]] == [(3, None, 0)]


def test_an_unknown_format_is_422(client, token_for, review, coordinator):
    response = client.get(f"/api/v1/reviews/{review.id}/ranking?format=pdf", headers=token_for(coordinator))
    assert response.status_code == 422 and "format" in response.json["error"]["fields"]


def test_the_csv_starts_with_a_bom_and_has_the_chinese_headers_and_every_row(client, token_for, review, ranked,
                                                                            coordinator):
    response = client.get(f"/api/v1/reviews/{review.id}/ranking?format=csv&per_page=1",
                          headers=token_for(coordinator))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["排名", "项目", "组织"] and "平均分" in rows[0] and "评语" in rows[0]
    assert [(r[0], r[1]) for r in rows[1:]] == [("1", "变废为宝"), ("2", "健康加油站"), ("3", "啄木鸟行动")]
    header = rows[0]
    health_row = dict(zip(header, rows[2], strict=True))
    assert health_row["平均分"] == "80.0" and health_row["核定时长（小时）"] == "3.0"
    assert health_row["缺席人次"] == "1" and health_row["评语"] == "王评审（80）：组织有序"
    assert dict(zip(header, rows[3], strict=True))["平均分"] == ""


def test_the_xlsx_opens_with_openpyxl_and_has_the_rows(client, token_for, review, ranked, coordinator):
    response = client.get(f"/api/v1/reviews/{review.id}/ranking?format=xlsx", headers=token_for(coordinator))
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(response.get_data()), read_only=True).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0][:2] == ["排名", "项目"]
    assert [(r[0], r[1], r[4]) for r in rows[1:]] == [(1, "变废为宝", 95.0), (2, "健康加油站", 80.0),
                                                      (3, "啄木鸟行动", None)]


def test_volunteers_cannot_see_reviews(client, token_for, review, volunteer):
    assert client.get(f"/api/v1/reviews/{review.id}", headers=token_for(volunteer)).status_code == 403
    db.session.rollback()
