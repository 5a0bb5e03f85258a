"""The HTML pages for service hours: check-in screen and check-in, manual records, review, wallet, certificates."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import func, select, update

from credits.auth.models import AuditEvent
from credits.extensions import db
from credits.hours import services as hours
from credits.hours.models import Certificate, RecordStatus, ServiceRecord
from credits.projects import services as projects
from credits.timeutil import local_zone, utcnow
from tests.conftest import csrf_token
from tests.hours.helpers import allow_history


@pytest.fixture
def org(make_org):
    return make_org("奉城镇卫生服务中心")


@pytest.fixture
def coordinator(make_user, org):
    return make_user("coordinator", name="王协调", organization=org)


@pytest.fixture
def volunteer(make_user, org):
    return make_user("volunteer", name="李志愿", phone="13912345678")


def started_project(coordinator, *, title="健康加油站", days_ago=10):
    """A published project that began `days_ago` days ago and ends tomorrow."""
    allow_history(days_ago)
    now = utcnow()
    project = projects.create_project({"title": title, "category": "健康服务", "location": "镇卫生院",
                                       "starts_at": now - timedelta(days=days_ago), "ends_at": now + timedelta(days=1),
                                       "capacity": 10}, actor=coordinator)
    projects.publish(project, actor=coordinator, publish_at=now - timedelta(days=days_ago + 1))
    db.session.commit()
    return project


def confirmed(project, volunteer):
    claim = projects.claim(project, volunteer=volunteer)
    db.session.commit()
    assert claim.status == "confirmed"
    return claim


def at(days_ago: int, hour: int) -> datetime:
    day = (utcnow().astimezone(local_zone()) - timedelta(days=days_ago)).date()
    return datetime.combine(day, time(hour), local_zone())


def manual(claim, volunteer, days_ago: int, minutes: int, hour: int = 9):
    start = at(days_ago, hour)
    record = hours.file_manual(claim, {"started_at": start, "ended_at": start + timedelta(minutes=minutes)},
                               volunteer=volunteer)
    db.session.commit()
    return record


def post(browser, path, data=None):
    """POST a form with the session's CSRF token, as the page's form would."""
    return browser.post(path, data={**(data or {}), "csrf_token": csrf_token(browser, "/account")})


def text(response) -> str:
    return response.get_data(as_text=True)


def status_of(record_id: int) -> str:
    db.session.expire_all()
    return db.session.get(ServiceRecord, record_id).status


# --- who may see what ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/me/hours", "/me/wallet", "/me/certificates", "/coordinate/hours",
                                  "/checkin/1?code=123456", "/coordinate/projects/1/checkin",
                                  "/claims/1/hours/new", "/me/certificates/FC1"])
def test_signed_out_visitors_are_sent_to_sign_in_and_back(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/login?next=" in response.headers["Location"]


def test_volunteer_pages_refuse_a_coordinator_without_the_volunteer_role(browser, coordinator):
    browser = browser(coordinator)
    for path in ("/me/hours", "/me/wallet", "/me/certificates"):
        assert browser.get(path).status_code == 403, path


def test_coordinator_pages_refuse_volunteers(browser, coordinator, volunteer):
    project = started_project(coordinator)
    browser = browser(volunteer)
    for path in ("/coordinate/hours", f"/coordinate/projects/{project.id}/checkin",
                 f"/coordinate/projects/{project.id}/checkin/code"):
        assert browser.get(path).status_code == 403, path


def test_a_coordinator_of_another_organisation_gets_no_code(browser, make_user, make_org, coordinator):
    project = started_project(coordinator)
    other = make_user("coordinator", organization=make_org("另一个组织"))
    browser = browser(other)
    assert browser.get(f"/coordinate/projects/{project.id}/checkin").status_code == 403
    response = browser.get(f"/coordinate/projects/{project.id}/checkin/code")
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"


# --- the check-in screen and the volunteer's check-in ------------------------------------------------------


def test_checkin_screen_shows_the_code_and_a_qr_to_the_checkin_page_without_auditing(browser, coordinator):
    project = started_project(coordinator)
    browser = browser(coordinator)
    events = db.session.scalar(select(func.count(AuditEvent.id)))
    page = browser.get(f"/coordinate/projects/{project.id}/checkin")
    assert page.status_code == 200
    code, _expires = hours.checkin_code(project, actor=coordinator)
    html = text(page)
    assert f"{code[:3]} {code[3:]}" in html
    assert "<svg" in html and "data-feed=" in html
    assert "js/hours.js" in html and "<script>" not in html
    assert page.headers["Cache-Control"] == "no-store"

    asked = utcnow()  # the code shown was live when asked for, even if its minute ended since
    feed = browser.get(f"/coordinate/projects/{project.id}/checkin/code")
    assert feed.status_code == 200
    assert feed.json["code"] == code
    assert feed.json["qr_svg"].startswith("<svg")
    assert datetime.fromisoformat(feed.json["expires_at"]) > asked
    assert db.session.scalar(select(func.count(AuditEvent.id))) == events


def test_checkin_screen_counts_who_has_checked_in_today_of_the_confirmed_claims(browser, make_user, coordinator):
    project = started_project(coordinator)
    people = [make_user("volunteer", name=name) for name in ("甲", "乙", "丙", "丁")]
    claims = [confirmed(project, person) for person in people]
    absent = confirmed(project, make_user("volunteer", name="戊"))  # never came
    code, _expires = hours.checkin_code(project, actor=coordinator)
    records = [hours.check_in(claim, code, volunteer=person) for claim, person in zip(claims, people, strict=True)]
    db.session.commit()
    # 甲 is on site; 乙 has checked out; 丙's check-in was revoked on review; 丁's is from yesterday and lapsed.
    closed = {"ended_at": utcnow() + timedelta(seconds=1), "minutes": 1}
    db.session.execute(update(ServiceRecord).where(ServiceRecord.id == records[1].id)
                       .values(status=RecordStatus.PENDING, **closed))
    db.session.execute(update(ServiceRecord).where(ServiceRecord.id == records[2].id)
                       .values(status=RecordStatus.REVOKED, **closed))
    db.session.execute(update(ServiceRecord).where(ServiceRecord.id == records[3].id)
                       .values(status=RecordStatus.LAPSED, started_at=at(1, 9)))
    db.session.commit()
    screen = browser(coordinator)

    feed = screen.get(f"/coordinate/projects/{project.id}/checkin/code").json
    assert (feed["confirmed"], feed["checked_in"], feed["present"]) == (5, 2, 1)
    html = text(screen.get(f"/coordinate/projects/{project.id}/checkin"))
    assert "已签到 2 / 5 人" in html and "在场 1 人" in html
    assert 'data-count-label="已签到 {n} / {total} 人"' in html

    projects.mark_no_show(absent, actor=coordinator)  # 丁 came yesterday, so only 戊 can be marked absent
    db.session.commit()
    feed = screen.get(f"/coordinate/projects/{project.id}/checkin/code").json
    assert (feed["confirmed"], feed["checked_in"], feed["present"]) == (4, 2, 1)


def test_the_qr_encodes_an_absolute_link_to_the_checkin_page_with_the_code(app, coordinator):
    from credits.hours.views import _current_code

    project = started_project(coordinator)
    with app.test_request_context(f"/coordinate/projects/{project.id}/checkin"):
        from flask_login import login_user

        login_user(coordinator)
        shown = _current_code(project)
    assert shown["url"] == f"http://localhost/checkin/{project.id}?code={shown['code']}"


def test_checkin_screen_of_a_project_not_under_way_explains_why(browser, coordinator):
    now = utcnow()
    project = projects.create_project({"title": "下周的项目", "category": "健康服务", "location": "镇卫生院",
                                       "starts_at": now + timedelta(days=7),
                                       "ends_at": now + timedelta(days=7, hours=3), "capacity": 5},
                                      actor=coordinator)
    projects.publish(project, actor=coordinator)
    db.session.commit()
    browser = browser(coordinator)
    page = browser.get(f"/coordinate/projects/{project.id}/checkin")
    assert page.status_code == 409
    assert "只有进行中的项目可以显示签到码" in text(page)
    assert browser.get(f"/coordinate/projects/{project.id}/checkin/code").json["error"]["code"] == "invalid_state"


def test_volunteer_checks_in_and_out_with_the_code_from_the_screen(browser, coordinator, volunteer):
    project = started_project(coordinator)
    claim = confirmed(project, volunteer)
    code, _expires = hours.checkin_code(project, actor=coordinator)
    browser = browser(volunteer)

    page = browser.get(f"/checkin/{project.id}?code={code}")
    assert page.status_code == 200
    assert f'value="{code}"' in text(page)
    assert f'action="/checkin/{project.id}"' in text(page)
    response = post(browser, f"/checkin/{project.id}", {"code": code})
    assert response.status_code == 302
    record = db.session.scalars(select(ServiceRecord).filter_by(claim_id=claim.id)).one()
    assert record.status == RecordStatus.OPEN

    page = browser.get(f"/checkin/{project.id}")
    assert "签到成功" in text(page)
    assert f'action="/checkin/{project.id}/out"' in text(page)

    # Ninety minutes later, by the record's clock.
    db.session.execute(update(ServiceRecord).where(ServiceRecord.id == record.id)
                       .values(started_at=utcnow() - timedelta(minutes=90)))
    db.session.commit()
    response = post(browser, f"/checkin/{project.id}/out", {"code": code})
    assert response.status_code == 302 and response.headers["Location"] == "/me/hours"
    assert status_of(record.id) == RecordStatus.APPROVED
    outcome = text(browser.get("/me/hours"))
    assert "已自动通过" in outcome and "获得 1 公益币" in outcome


def test_the_code_box_takes_a_pasted_code_with_spaces_whole(browser, coordinator, volunteer):
    project = started_project(coordinator)
    claim = confirmed(project, volunteer)
    code, _expires = hours.checkin_code(project, actor=coordinator)
    browser = browser(volunteer)
    pasted = f" {code[:3]} {code[3:]} "

    box = re.search(r'<input id="f-code"[^>]*>', text(browser.get(f"/checkin/{project.id}"))).group()
    maxlength = re.search(r'maxlength="(\d+)"', box)
    assert maxlength is None or int(maxlength.group(1)) >= len(pasted) + 10
    assert post(browser, f"/checkin/{project.id}", {"code": pasted}).status_code == 302
    assert db.session.scalars(select(ServiceRecord).filter_by(claim_id=claim.id)).one().status == RecordStatus.OPEN


def test_a_wrong_code_is_shown_on_the_page_and_records_nothing(browser, coordinator, volunteer):
    project = started_project(coordinator)
    confirmed(project, volunteer)
    code, _expires = hours.checkin_code(project, actor=coordinator)
    browser = browser(volunteer)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    response = post(browser, f"/checkin/{project.id}", {"code": wrong})
    assert response.status_code == 422
    assert text(response).count("签到码不正确或已过期") == 1  # beside the field, not repeated above it
    assert db.session.scalar(select(func.count(ServiceRecord.id))) == 0


def test_checking_out_too_soon_is_refused_on_the_page(browser, coordinator, volunteer):
    project = started_project(coordinator)
    confirmed(project, volunteer)
    code, _expires = hours.checkin_code(project, actor=coordinator)
    browser = browser(volunteer)
    assert post(browser, f"/checkin/{project.id}", {"code": code}).status_code == 302
    response = post(browser, f"/checkin/{project.id}/out", {"code": code})
    assert response.status_code == 422
    assert "还没有服务时间" in text(response)


def test_a_volunteer_without_a_claim_is_told_so_and_cannot_post(browser, coordinator, volunteer):
    project = started_project(coordinator)
    code, _expires = hours.checkin_code(project, actor=coordinator)
    browser = browser(volunteer)
    page = browser.get(f"/checkin/{project.id}?code={code}")
    assert page.status_code == 200
    assert "您没有认领这个项目" in text(page)
    response = post(browser, f"/checkin/{project.id}", {"code": code})
    assert response.status_code == 404


def test_a_cancelled_claim_cannot_check_in(browser, coordinator, volunteer):
    now = utcnow()
    project = projects.create_project({"title": "稍后开始", "category": "健康服务", "location": "镇卫生院",
                                       "starts_at": now + timedelta(minutes=20), "ends_at": now + timedelta(hours=3),
                                       "capacity": 5}, actor=coordinator)
    projects.publish(project, actor=coordinator, publish_at=now - timedelta(hours=1))
    db.session.commit()
    claim = confirmed(project, volunteer)
    projects.cancel_claim(claim, actor=volunteer)
    db.session.commit()
    code, _expires = hours.checkin_code(project, actor=coordinator)
    browser = browser(volunteer)
    page = browser.get(f"/checkin/{project.id}?code={code}")
    assert "只有已确认的认领可以签到" in text(page)
    response = post(browser, f"/checkin/{project.id}", {"code": code})
    assert response.status_code == 422
    assert "只有已确认的认领可以记录时长" in text(response)


# --- manual records and the volunteer's list --------------------------------------------------------------


def test_manual_record_form_files_a_pending_record(browser, coordinator, volunteer):
    claim = confirmed(started_project(coordinator), volunteer)
    browser = browser(volunteer)
    page = browser.get(f"/claims/{claim.id}/hours/new")
    assert page.status_code == 200 and 'type="datetime-local"' in text(page)
    start = at(2, 9).strftime("%Y-%m-%dT%H:%M")
    end = at(2, 11).strftime("%Y-%m-%dT%H:%M")
    response = post(browser, f"/claims/{claim.id}/hours/new", {"started_at": start, "ended_at": end,
                                                                "note": "现场忘记签到"})
    assert response.status_code == 302
    record = db.session.scalars(select(ServiceRecord)).one()
    assert (record.status, record.source, record.minutes, record.note) == ("pending", "manual", 120, "现场忘记签到")
    assert record.started_at == at(2, 9)  # the form's naive time is Asia/Shanghai


def test_the_manual_form_starts_with_the_projects_own_times(browser, coordinator, volunteer):
    allow_history(3)
    project = projects.create_project({"title": "敬老院陪伴", "category": "助老", "location": "镇敬老院",
                                       "starts_at": at(2, 9), "ends_at": utcnow() + timedelta(days=1),
                                       "capacity": 10}, actor=coordinator)
    projects.publish(project, actor=coordinator, publish_at=at(3, 9))
    db.session.commit()
    claim = confirmed(project, volunteer)
    project.ends_at = at(2, 11)  # it has since run its course
    db.session.commit()

    page = text(browser(volunteer).get(f"/claims/{claim.id}/hours/new"))

    start, end = at(2, 9).strftime("%Y-%m-%dT%H:%M"), at(2, 11).strftime("%Y-%m-%dT%H:%M")
    assert re.search(rf'name="started_at"[^>]*value="{start}"', page)
    assert re.search(rf'name="ended_at"[^>]*value="{end}"', page)


@pytest.mark.parametrize("start_hour, end_hour, message", [(11, 9, "结束时间必须晚于开始时间"),
                                                          (None, 9, "日期或时间的格式不正确")])
def test_bad_manual_input_re_renders_the_form_and_stores_nothing(browser, coordinator, volunteer,
                                                                  start_hour, end_hour, message):
    claim = confirmed(started_project(coordinator), volunteer)
    browser = browser(volunteer)
    start = at(2, start_hour).strftime("%Y-%m-%dT%H:%M") if start_hour is not None else "昨天"
    response = post(browser, f"/claims/{claim.id}/hours/new",
                    {"started_at": start, "ended_at": at(2, end_hour).strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 422
    assert message in text(response)
    assert 'aria-invalid="true"' in text(response)
    assert db.session.scalar(select(func.count(ServiceRecord.id))) == 0


def test_overlapping_manual_record_is_refused_on_the_form(browser, coordinator, volunteer):
    claim = confirmed(started_project(coordinator), volunteer)
    manual(claim, volunteer, 2, 120)
    browser = browser(volunteer)
    response = post(browser, f"/claims/{claim.id}/hours/new",
                    {"started_at": at(2, 10).strftime("%Y-%m-%dT%H:%M"),
                     "ended_at": at(2, 12).strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 422
    assert "时间重叠" in text(response)
    assert db.session.scalar(select(func.count(ServiceRecord.id))) == 1


def test_nobody_else_can_open_a_volunteers_manual_form(browser, make_user, coordinator, volunteer):
    claim = confirmed(started_project(coordinator), volunteer)
    assert browser(make_user("volunteer")).get(f"/claims/{claim.id}/hours/new").status_code == 404


def test_my_hours_lists_every_record_with_status_source_and_reason(browser, coordinator, volunteer):
    claim = confirmed(started_project(coordinator), volunteer)
    kept = manual(claim, volunteer, 3, 90)
    refused = manual(claim, volunteer, 2, 30)
    hours.approve(kept, reviewer=coordinator)
    hours.reject(refused, "当天未到场", reviewer=coordinator)
    db.session.commit()
    page = text(browser(volunteer).get("/me/hours"))
    assert "已通过" in page and "已驳回" in page and "当天未到场" in page
    assert "1.5 小时" in page and "30 分钟" in page and "补录" in page
    assert f"/claims/{claim.id}/hours/new" in page and f"/checkin/{claim.project_id}" in page


# --- review ------------------------------------------------------------------------------------------------


def test_review_queue_shows_pending_records_with_their_details(browser, make_user, coordinator, volunteer):
    claim = confirmed(started_project(coordinator), volunteer)
    manual(claim, volunteer, 2, 60)
    page = browser(coordinator).get("/coordinate/hours")
    assert page.status_code == 200
    html = text(page)
    assert "李志愿" in html and "健康加油站" in html and "1 小时" in html and "补录" in html
    assert 'name="ids"' in html and "13912345678" not in html


def test_bulk_review_approves_several_and_issues_coins(browser, make_user, coordinator, volunteer):
    project = started_project(coordinator)
    other = make_user("volunteer", name="赵志愿")
    records = [manual(confirmed(project, v), v, 2, 60) for v in (volunteer, other)]
    browser = browser(coordinator)
    response = post(browser, "/coordinate/hours/review?status=pending",
                    {"ids": [r.id for r in records], "action": "approve", "reason": ""})
    assert response.status_code == 302
    assert [status_of(r.id) for r in records] == ["approved", "approved"]
    assert "已通过 2 条记录，发放 2 公益币" in text(browser.get(response.headers["Location"]))
    db.session.expire_all()
    assert volunteer.approved_minutes == 60 and other.approved_minutes == 60


def test_bulk_reject_needs_a_reason_and_changes_nothing(browser, coordinator, volunteer):
    record = manual(confirmed(started_project(coordinator), volunteer), volunteer, 2, 60)
    browser = browser(coordinator)
    response = post(browser, "/coordinate/hours/review", {"ids": [record.id], "action": "reject"})
    assert response.status_code == 422
    assert "驳回需要填写原因" in text(response)
    assert status_of(record.id) == "pending"
    response = post(browser, "/coordinate/hours/review", {"action": "approve"})
    assert response.status_code == 422 and "请先勾选要处理的记录" in text(response)


def test_nobody_reviews_their_own_record(browser, make_user, org, coordinator):
    both = make_user("coordinator", "volunteer", name="双重身份", organization=org)
    record = manual(confirmed(started_project(coordinator), both), both, 2, 60)
    browser = browser(both)
    page = text(browser.get("/coordinate/hours"))
    assert "这是您本人的记录，需由其他协调员审核" in page and 'name="ids"' not in page
    response = post(browser, f"/coordinate/hours/{record.id}/approve")
    assert response.status_code == 403
    response = post(browser, "/coordinate/hours/review", {"ids": [record.id], "action": "approve"})
    assert "需由其他协调员审核" in text(browser.get(response.headers["Location"]))
    assert status_of(record.id) == "pending"


def test_single_approve_then_revoke_with_a_reason_claws_back(browser, coordinator, volunteer):
    record = manual(confirmed(started_project(coordinator), volunteer), volunteer, 2, 120)
    browser = browser(coordinator)
    response = post(browser, f"/coordinate/hours/{record.id}/approve?status=pending")
    assert response.status_code == 302
    assert "发放 2 公益币" in text(browser.get(response.headers["Location"]))

    response = post(browser, f"/coordinate/hours/{record.id}/revoke?status=approved", {"reason": ""})
    assert response.status_code == 422
    assert status_of(record.id) == "approved"

    response = post(browser, f"/coordinate/hours/{record.id}/revoke?status=approved", {"reason": "重复登记"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/coordinate/hours?status=approved"
    assert "扣回 2 公益币" in text(browser.get(response.headers["Location"]))
    db.session.expire_all()
    record = db.session.get(ServiceRecord, record.id)
    assert (record.status, record.reason) == ("revoked", "重复登记")


def test_rejecting_twice_shows_the_state_conflict(browser, coordinator, volunteer):
    record = manual(confirmed(started_project(coordinator), volunteer), volunteer, 2, 60)
    browser = browser(coordinator)
    assert post(browser, f"/coordinate/hours/{record.id}/reject", {"reason": "不符"}).status_code == 302
    response = post(browser, f"/coordinate/hours/{record.id}/reject", {"reason": "不符"})
    assert response.status_code == 422 and "只有待审核的记录可以驳回" in text(response)


def test_a_coordinator_cannot_review_another_organisations_record(browser, make_user, make_org, coordinator,
                                                                   volunteer):
    record = manual(confirmed(started_project(coordinator), volunteer), volunteer, 2, 60)
    browser = browser(make_user("coordinator", organization=make_org("别的组织")))
    assert post(browser, f"/coordinate/hours/{record.id}/approve").status_code == 404
    assert "李志愿" not in text(browser.get("/coordinate/hours"))


# --- wallet ------------------------------------------------------------------------------------------------


def test_wallet_shows_balance_figures_star_and_history(browser, coordinator, volunteer):
    claim = confirmed(started_project(coordinator), volunteer)
    for days_ago in (4, 3, 2):
        hours.approve(manual(claim, volunteer, days_ago, 60), reviewer=coordinator)
    db.session.commit()
    page = browser(volunteer).get("/me/wallet")
    assert page.status_code == 200
    html = text(page)
    assert re.search(r'data-balance>\s*3\b', html)
    assert "健康加油站 满 3 小时" in html and "发放" in html and "+1" in html
    assert "3 小时" in html and "满 100 小时升至 1 星" in html


def test_the_wallet_in_english_shows_the_memo_in_english_around_the_projects_own_title(browser, coordinator,
                                                                                     volunteer):
    claim = confirmed(started_project(coordinator), volunteer)
    hours.approve(manual(claim, volunteer, 2, 60), reviewer=coordinator)
    db.session.commit()
    reader = browser(volunteer)
    reader.get("/lang/en")

    memo = re.search(r'class="tx-memo">([^<]*)<', text(reader.get("/me/wallet"))).group(1)

    assert memo == "1 h at 健康加油站"  # the stored memo stays 健康加油站 满 1 小时


def test_the_wallet_reads_a_ten_minute_rule_in_minutes(browser, coordinator, volunteer, set_policy):
    set_policy(min_block_minutes=10)
    claim = confirmed(started_project(coordinator), volunteer)
    claim.project.block_minutes = 10
    db.session.commit()
    hours.approve(manual(claim, volunteer, 2, 10), reviewer=coordinator)
    db.session.commit()

    html = text(browser(volunteer).get("/me/wallet"))

    assert "健康加油站 满 10 分钟" in html and "0.166667" not in html


def test_the_wallet_shows_short_service_in_minutes_and_what_is_left_adds_up(browser, coordinator, volunteer):
    claim = confirmed(started_project(coordinator), volunteer)
    hours.approve(manual(claim, volunteer, 2, 20), reviewer=coordinator)
    db.session.commit()

    html = text(browser(volunteer).get("/me/wallet"))

    assert "20 分钟" in html  # not 0.3 小时
    assert "还差 99.7 小时" in html  # 6000 − 20 minutes, formatted once: 20 分钟 and 99.7 小时 make 100 hours


def test_wallet_of_a_volunteer_without_coins_is_empty_not_an_error(browser, volunteer):
    page = browser(volunteer).get("/me/wallet")
    assert page.status_code == 200 and "还没有收支记录" in text(page)


# --- certificates ------------------------------------------------------------------------------------------


def _certified(browser, coordinator, volunteer):
    claim = confirmed(started_project(coordinator), volunteer)
    record = manual(claim, volunteer, 2, 150)
    hours.approve(record, reviewer=coordinator)
    db.session.commit()
    browser = browser(volunteer)
    today = utcnow().astimezone(local_zone()).date()
    response = post(browser, "/me/certificates", {"from": (today - timedelta(days=30)).isoformat(),
                                                  "to": today.isoformat()})
    assert response.status_code == 302, text(response)[:2000]
    certificate = db.session.scalars(select(Certificate)).one()
    assert response.headers["Location"] == f"/me/certificates/{certificate.number}"
    return browser, certificate, record


def test_certificate_is_issued_and_printable_without_the_phone(browser, coordinator, volunteer):
    browser, certificate, _record = _certified(browser, coordinator, volunteer)
    page = browser.get(f"/me/certificates/{certificate.number}")
    assert page.status_code == 200
    html = text(page)
    assert "志愿服务证明" in html and certificate.number in html and "李志愿" in html
    assert volunteer.volunteer_no in html and "2.5" in html and "奉城镇卫生服务中心" in html
    assert f"http://localhost/certificates/{certificate.number}" in html and "<svg" in html
    assert volunteer.phone not in html
    assert certificate.number in text(browser.get("/me/certificates"))


def test_only_its_volunteer_sees_the_printable_certificate(browser, make_user, coordinator, volunteer):
    _browser, certificate, _record = _certified(browser, coordinator, volunteer)
    assert browser(make_user("volunteer")).get(f"/me/certificates/{certificate.number}").status_code == 404


def test_public_verification_shows_the_certificate_and_later_revocations(client, browser, coordinator, volunteer):
    _browser, certificate, record = _certified(browser, coordinator, volunteer)
    visitor = client
    page = visitor.get(f"/certificates/{certificate.number}")
    assert page.status_code == 200
    html = text(page)
    assert "此证明真实有效" in html and certificate.number in html and "李志愿" in html
    assert volunteer.volunteer_no in html and volunteer.phone not in html and "已被撤销" not in html

    hours.revoke(db.session.get(ServiceRecord, record.id), "核实有误", reviewer=coordinator)
    db.session.commit()
    html = text(visitor.get(f"/certificates/{certificate.number.lower()}"))
    assert "2.5 小时的服务记录已被撤销" in html and "2.5" in html  # still shown as issued


def test_unknown_certificate_number_is_a_404_page(client):
    response = client.get("/certificates/FC20990101DEADBEEF00")
    assert response.status_code == 404
    assert "页面不存在" in text(response)


def test_verification_page_is_rate_limited_per_address(client):
    statuses = [client.get("/certificates/NOPE").status_code for _ in range(61)]
    assert statuses[:60] == [404] * 60 and statuses[60] == 429


@pytest.mark.parametrize("first, last, status, message", [
    (-1, -30, 422, "结束日期必须晚于开始日期"),
    (-300, -200, 422, "这段时间没有已通过的志愿时长"),
])
def test_a_certificate_request_that_cannot_be_met_re_renders_the_form(browser, volunteer, first, last, status,
                                                                       message):
    browser = browser(volunteer)
    today = utcnow().astimezone(local_zone()).date()
    response = post(browser, "/me/certificates", {"from": (today + timedelta(days=first)).isoformat(),
                                                  "to": (today + timedelta(days=last)).isoformat()})
    assert response.status_code == status
    assert message in text(response)
    assert db.session.scalar(select(func.count(Certificate.id))) == 0
