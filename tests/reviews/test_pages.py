"""The review pages: the list and the open form, a review's candidate picker, invitations and score forms beside the
figures, closing, the ranking and its downloads — through the forms, with CSRF, as a phone's browser would."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from credits.extensions import db
from credits.reviews import services as reviews
from credits.reviews.models import Review, ReviewScore
from tests.conftest import csrf_token
from tests.reviews.helpers import add, give_score, local_year, open_review, project_with


def test_coordinators_find_the_reviews_in_the_menu(browser, coordinator, volunteer):
    assert "/coordinate/reviews" in browser(coordinator).get("/").get_data(as_text=True)
    page = browser(volunteer)
    assert "/coordinate/reviews" not in page.get("/").get_data(as_text=True)
    assert page.get("/coordinate/reviews").status_code == 403


def test_opening_a_review_through_the_form(browser, coordinator):
    page = browser(coordinator)
    form = page.get("/coordinate/reviews").get_data(as_text=True)
    assert "年度优秀服务项目评审" in form  # the title is suggested
    response = page.post("/coordinate/reviews", data={"year": "2026", "title": "2026年度评审",
                                                      "csrf_token": csrf_token(page, "/coordinate/reviews")})
    assert response.status_code == 302
    review = db.session.scalars(select(Review)).one()
    assert response.headers["Location"].endswith(f"/coordinate/reviews/{review.id}")
    assert (review.year, review.title) == (2026, "2026年度评审")
    assert "2026年度评审" in page.get("/coordinate/reviews").get_data(as_text=True)


def test_a_bad_year_re_renders_the_form_with_the_error(browser, coordinator):
    page = browser(coordinator)
    response = page.post("/coordinate/reviews", data={"year": "1990", "title": "评审",
                                                      "csrf_token": csrf_token(page, "/coordinate/reviews")})
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert db.session.scalars(select(Review)).all() == []


def test_a_form_without_csrf_is_refused(browser, coordinator):
    response = browser(coordinator).post("/coordinate/reviews", data={"year": "2026", "title": "评审"})
    assert response.status_code == 303
    assert db.session.scalars(select(Review)).all() == []


def test_candidates_are_picked_from_that_years_projects(browser, coordinator, make_user, health):
    other = project_with(coordinator, make_user, title="变废为宝")
    review = open_review(coordinator, local_year(health))
    page = browser(coordinator)
    html = page.get(f"/coordinate/reviews/{review.id}").get_data(as_text=True)
    assert f'name="project_ids" value="{health.id}"' in html and f'name="project_ids" value="{other.id}"' in html
    token = csrf_token(page, f"/coordinate/reviews/{review.id}")
    response = page.post(f"/coordinate/reviews/{review.id}/candidates",
                         data={"project_ids": [str(health.id), str(other.id)], "csrf_token": token})
    assert response.status_code == 302
    assert {p.id for p in reviews.review_candidates(review)} == {health.id, other.id}
    html = page.get(f"/coordinate/reviews/{review.id}").get_data(as_text=True)
    assert "健康加油站" in html and "3 小时" in html and 'name="project_ids"' not in html


def test_picking_nothing_shows_the_error(browser, coordinator, health):
    review = open_review(coordinator, local_year(health))
    page = browser(coordinator)
    response = page.post(f"/coordinate/reviews/{review.id}/candidates",
                         data={"csrf_token": csrf_token(page, f"/coordinate/reviews/{review.id}")})
    assert response.status_code == 422
    assert 'class="error"' in response.get_data(as_text=True)


def test_inviting_coordinators_through_the_form(browser, coordinator, review, make_user):
    other = make_user("coordinator", name="赵协调")
    page = browser(coordinator)
    html = page.get(f"/coordinate/reviews/{review.id}").get_data(as_text=True)
    assert f'name="user_ids" value="{other.id}"' in html
    response = page.post(f"/coordinate/reviews/{review.id}/reviewers",
                         data={"user_ids": [str(other.id)],
                               "csrf_token": csrf_token(page, f"/coordinate/reviews/{review.id}")})
    assert response.status_code == 302
    assert {u.name for u in reviews.review_reviewers(review)} == {"王评审", "赵协调"}


def test_an_invited_reviewer_scores_beside_the_figures_and_can_change_it(browser, review, health, judge):
    page = browser(judge)
    url = f"/coordinate/reviews/{review.id}"
    html = page.get(url).get_data(as_text=True)
    assert f'id="f-score-{health.id}"' in html and "满员率" in html and "缺席" in html
    for value, comment in (("78", "组织有序"), ("91", "复核后上调")):
        response = page.post(f"{url}/scores/{health.id}", data={"score": value, "comment": comment,
                                                                "csrf_token": csrf_token(page, url)})
        assert response.status_code == 302
    [kept] = db.session.scalars(select(ReviewScore)).all()
    assert (kept.score, kept.comment) == (91, "复核后上调")
    assert 'value="91"' in page.get(url).get_data(as_text=True)


@pytest.mark.parametrize("value", ["101", "-5", "八十"])
def test_a_score_out_of_range_re_renders_with_the_error_beside_that_project(browser, review, health, judge, value):
    page = browser(judge)
    url = f"/coordinate/reviews/{review.id}"
    response = page.post(f"{url}/scores/{health.id}", data={"score": value, "comment": "",
                                                            "csrf_token": csrf_token(page, url)})
    assert response.status_code == 422
    assert f'id="e-score-{health.id}"' in response.get_data(as_text=True)
    assert db.session.scalars(select(ReviewScore)).all() == []


def test_a_coordinator_not_invited_sees_no_score_form_and_cannot_post_one(browser, review, health, coordinator):
    page = browser(coordinator)
    url = f"/coordinate/reviews/{review.id}"
    assert f'id="f-score-{health.id}"' not in page.get(url).get_data(as_text=True)
    response = page.post(f"{url}/scores/{health.id}", data={"score": "80", "csrf_token": csrf_token(page, url)})
    assert response.status_code == 403


def test_removing_a_candidate_and_closing_through_the_buttons(browser, review, health, coordinator, judge):
    give_score(review, health, 80, judge)
    page = browser(coordinator)
    url = f"/coordinate/reviews/{review.id}"
    assert page.post(f"{url}/candidates/{health.id}/remove",
                     data={"csrf_token": csrf_token(page, url)}).status_code == 302
    assert reviews.review_candidates(review) == []
    assert page.post(f"{url}/close", data={"csrf_token": csrf_token(page, url)}).status_code == 302
    db.session.refresh(review)
    assert review.status == "closed"
    again = page.post(f"{url}/close", data={"csrf_token": csrf_token(page, "/coordinate/reviews")})
    assert again.status_code == 302
    html = page.get(url).get_data(as_text=True)
    assert "评审已结束，不能再修改。" in html and "结束评审" not in html.split("</h1>")[1]


def test_the_ranking_page_and_its_downloads(browser, review, health, judge, coordinator, make_user):
    top = project_with(coordinator, make_user, title="变废为宝", minutes=[90])
    add(review, top, actor=coordinator)
    give_score(review, health, 80, judge, "组织有序")
    give_score(review, top, 95, judge)
    page = browser(coordinator)
    html = page.get(f"/coordinate/reviews/{review.id}/ranking").get_data(as_text=True)
    assert html.index("变废为宝") < html.index("健康加油站") and "95.00" in html and "组织有序" in html
    csv_response = page.get(f"/coordinate/reviews/{review.id}/ranking.csv")
    assert csv_response.status_code == 200 and csv_response.get_data().startswith(b"\xef\xbb\xbf")
    assert "变废为宝" in csv_response.get_data().decode("utf-8-sig")
    xlsx = page.get(f"/coordinate/reviews/{review.id}/ranking.xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.get_data()), read_only=True).active
    assert [r[1] for r in sheet.iter_rows(min_row=2, values_only=True)] == ["变废为宝", "健康加油站"]
    assert page.get(f"/coordinate/reviews/{review.id}/ranking.pdf").status_code == 404


def test_the_pages_speak_english_on_request(browser, review, judge):
    page = browser(judge)
    page.get("/lang/en")
    html = page.get(f"/coordinate/reviews/{review.id}").get_data(as_text=True)
    assert "Candidate projects" in html
