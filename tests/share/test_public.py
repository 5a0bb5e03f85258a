"""The 公示 page and GET /api/v1/public/summary: figures from the ledger equal to what verify-ledger checks, the
published review results, no volunteer named, cached a minute. Share cards on the pages people paste."""

from __future__ import annotations

import re

from sqlalchemy import func, or_, select

from credits.extensions import db
from credits.hours.models import ServiceRecord
from credits.hours.services import issue_certificate
from credits.ledger.models import Account, AccountKind, Entry, SystemAccount
from credits.ledger.verify import verify_ledger
from credits.merchants import services as merchants
from credits.merchants.models import Voucher
from credits.reviews import services as reviews
from credits.share import services
from credits.timeutil import local_zone, utcnow
from tests.hours.helpers import local_day, revoke
from tests.merchants.helpers import make_staff
from tests.reports.conftest import town  # noqa: F401  (the fixture)

VOLUNTEER_NAMES = ("李志愿", "王热心", "陈建国")


def _held_by_volunteers_from_entries() -> int:
    """What volunteers and escrow hold, summed from the entries themselves: what verify-ledger checks the cached
    balances against."""
    holder = or_(Account.kind == AccountKind.VOLUNTEER, Account.system_code == SystemAccount.ESCROW)
    return int(db.session.scalar(select(func.coalesce(func.sum(Entry.amount), 0))
                                 .join(Account, Account.id == Entry.account_id).where(holder)))


def test_summary_coins_come_from_the_ledger_and_equal_what_verify_ledger_checks(client, town, coordinator):  # noqa: F811
    # A revocation claws coins back: the figures must still add up.
    record = db.session.scalars(select(ServiceRecord).where(ServiceRecord.status == "approved")
                                .order_by(ServiceRecord.id)).first()
    clawed = revoke(record, coordinator)
    summary = client.get("/api/v1/public/summary").json
    assert verify_ledger() == []
    everything = summary["all_time"]["coins"]
    assert everything["issued"] == sum(town["coins"])
    assert everything["clawed_back"] == clawed > 0
    assert everything["redeemed"] == town["price"]
    assert summary["coins_outstanding"] == _held_by_volunteers_from_entries()
    # Every coin issued is still held, or went back, was spent, expired or adjusted: the ledger balances.
    assert (everything["issued"] - everything["clawed_back"] - everything["redeemed"] - everything["expired"]
            + everything["adjusted"]) == summary["coins_outstanding"]
    this_year = summary["this_year"]
    assert summary["year"] == utcnow().astimezone(local_zone()).year
    if local_day(100).year == summary["year"]:  # the town's activity all falls in this year
        assert this_year["coins"] == everything


def test_summary_counts_volunteers_hours_projects_and_services(client, town):  # noqa: F811
    figures = client.get("/api/v1/public/summary").json["all_time"]
    assert figures["volunteers"]["served"] == 2  # two approved records; the pending one does not count
    assert figures["hours"]["approved_minutes"] == sum(town["minutes"])
    assert figures["services_given"] == 1
    assert figures["coins_spent_at_merchants"] == town["price"]
    assert figures["projects_done"] == 0  # both projects end tomorrow


def test_merchants_are_named_with_the_services_they_gave(client, town):  # noqa: F811
    merchants = client.get("/api/v1/public/summary").json["merchants"]
    assert merchants == [{"id": town["shop"].id, "name": "奉城老街洗车行", "services_this_year": 1,
                          "services_all_time": 1}]


def _published_review(town, coordinator):  # noqa: F811
    review = reviews.open_review(utcnow().astimezone(local_zone()).year, "年度优秀服务项目评审", by=coordinator)
    reviews.add_candidates(review, [town["health"].id, town["clean"].id], actor=coordinator)
    reviews.invite_reviewers(review, [coordinator.id], actor=coordinator)
    reviews.score(review, town["health"], 95, "组织有序，居民好评", reviewer=coordinator)
    reviews.score(review, town["clean"], 80, reviewer=coordinator)
    db.session.commit()
    return review


def test_only_closed_reviews_are_published_and_their_reviewers_are_not_named(client, town, coordinator):  # noqa: F811
    review = _published_review(town, coordinator)
    assert client.get("/api/v1/public/summary").json["reviews"] == []
    reviews.close_review(review, actor=coordinator)
    db.session.commit()
    services.summary_cache().clear()
    published = client.get("/api/v1/public/summary").json["reviews"]
    assert [(row["rank"], row["title"], row["mean_score"]) for row in published[0]["ranking"]] == [
        (1, "健康加油站", 95.0), (2, "变废为宝", 80.0)]
    page = client.get("/public").get_data(as_text=True)
    assert "健康加油站" in page and "年度优秀服务项目评审" in page
    for text in (page, client.get("/api/v1/public/summary").get_data(as_text=True)):
        assert coordinator.name not in text and "组织有序" not in text


def test_the_public_page_never_names_a_volunteer_and_needs_no_sign_in(client, town):  # noqa: F811
    response = client.get("/public")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    api = client.get("/api/v1/public/summary").get_data(as_text=True)
    for name in VOLUNTEER_NAMES:
        assert name not in page and name not in api
    assert 'data-chart=' in page and "vendor/chartjs/chart.umd.min.js" in page
    issued = re.search(r'data-figure="issued-all">(\d+)<', page)
    assert issued and int(issued.group(1)) == sum(town["coins"])


def test_the_summary_is_cached_for_a_minute(client, town, coordinator, monkeypatch):  # noqa: F811
    clock = [1000.0]
    monkeypatch.setattr(services.time, "monotonic", lambda: clock[0])
    before = client.get("/api/v1/public/summary").json["all_time"]["services_given"]
    open_voucher = db.session.scalars(select(Voucher).where(Voucher.status == "issued")).one()
    merchants.redeem(open_voucher, staff=make_staff(town["shop"], coordinator))
    db.session.commit()
    clock[0] += 59
    assert client.get("/api/v1/public/summary").json["all_time"]["services_given"] == before
    assert services.summary_cache().refreshing is None
    clock[0] += 2
    # Stale: the kept figures still answer at once while a background thread computes the new ones.
    assert client.get("/api/v1/public/summary").json["all_time"]["services_given"] == before
    services.summary_cache().refreshing.join(timeout=30)
    assert client.get("/api/v1/public/summary").json["all_time"]["services_given"] == before + 1


def test_all_time_hours_from_the_volunteers_totals_equal_the_approved_records(client, town, coordinator):  # noqa: F811
    record = db.session.scalars(select(ServiceRecord).where(ServiceRecord.status == "approved")
                                .order_by(ServiceRecord.id)).first()
    revoke(record, coordinator)
    approved = select(ServiceRecord).where(ServiceRecord.status == "approved").subquery()
    minutes, served = db.session.execute(select(func.coalesce(func.sum(approved.c.minutes), 0),
                                                func.count(func.distinct(approved.c.volunteer_id)))).one()
    figures = client.get("/api/v1/public/summary").json["all_time"]
    assert (figures["hours"]["approved_minutes"], figures["volunteers"]["served"]) == (minutes, served) == (
        town["minutes"][1], 1)


def test_an_empty_town_has_a_summary_of_zeros(client):
    summary = client.get("/api/v1/public/summary").json
    assert summary["all_time"]["coins"]["issued"] == 0 and summary["coins_outstanding"] == 0
    assert summary["merchants"] == [] and summary["reviews"] == []
    assert client.get("/public").status_code == 200


# --- share cards --------------------------------------------------------------------------------------------


def _meta(page: str, prop: str) -> str:
    match = re.search(rf'<meta (?:property|name|itemprop)="{re.escape(prop)}" content="([^"]*)"', page)
    assert match, f"no {prop}"
    return match.group(1)


def test_a_project_page_carries_a_share_card_with_time_place_places_and_poster(app, client, town):  # noqa: F811
    app.config["PUBLIC_BASE_URL"] = "https://gongyi.example.cn"
    project = town["health"]
    page = client.get(f"/projects/{project.id}").get_data(as_text=True)
    assert _meta(page, "og:title") == "健康加油站"
    description = _meta(page, "og:description")
    assert project.location in description and f"剩余 {project.places_left} 个" in description
    assert _meta(page, "og:url") == f"https://gongyi.example.cn/projects/{project.id}"
    assert _meta(page, "og:image") == f"https://gongyi.example.cn/projects/{project.id}/poster.png"
    assert _meta(page, "image") == _meta(page, "og:image")  # itemprop, which WeChat reads
    assert client.get(f"/projects/{project.id}/poster.png").status_code == 200


def test_without_public_base_url_cards_use_the_request_host(client, town):  # noqa: F811
    page = client.get(f"/projects/{town['health'].id}", base_url="http://fengcheng.local").get_data(as_text=True)
    assert _meta(page, "og:url") == f"http://fengcheng.local/projects/{town['health'].id}"


def test_a_merchant_page_carries_a_share_card(client, town):  # noqa: F811
    shop = town["shop"]
    page = client.get(f"/merchants/{shop.id}").get_data(as_text=True)
    assert "奉城老街洗车行" in _meta(page, "og:title")
    assert _meta(page, "og:image") == f"http://localhost/merchants/{shop.id}/poster.png"


def test_a_certificate_verification_page_carries_a_card_that_names_nobody(client, town):  # noqa: F811
    volunteer = town["volunteers"][0]
    certificate = issue_certificate(volunteer, *services.Period.named("year", local_day(0)).bounds)
    db.session.commit()
    page = client.get(f"/certificates/{certificate.number}").get_data(as_text=True)
    assert certificate.number in _meta(page, "og:title")
    assert volunteer.name not in _meta(page, "og:title") + _meta(page, "og:description")
