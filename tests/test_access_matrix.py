"""Who may call which API route: every route under /api/v1 × every kind of actor → the expected status.

To add a route, add its row to ROUTES: the expected status per actor and, where the route takes one, a valid
body (so the status shows authorization, not validation). A route that names an object in its path
(`<project_id>`, `<claim_id>`, …) needs a builder in PATH_OBJECTS that creates the object the path points at.
Objects belong to `volunteer`, to the `coordinator`'s organisation (who also opened the review) or to `merchant`'s
shop, so the `other_…` actors are the ones probing for IDOR. A route in the app without a row, or a row without a
route, fails
`test_every_api_route_has_a_row_and_every_row_a_route`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from credits.extensions import db
from credits.hours import services as hours
from credits.ledger.models import SystemAccount, TxKind
from credits.ledger.services import system_account, transfer, user_account
from credits.merchants import services as merchants
from credits.merchants.models import Service, Voucher
from credits.projects import services as projects
from credits.reviews import services as reviews
from credits.timeutil import local_zone, utcnow

PASSWORD = "gongyi-test-2026"
ACTORS = ("anonymous", "volunteer", "other_volunteer", "coordinator", "other_coordinator", "merchant", "other_merchant",
          "admin")
ERROR_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: None, 422: "validation_error"}
UNLISTED = {"/api/v1/openapi.json"}  # the API document, open to all and not an operation


@dataclass
class World:
    """The actors and the objects route paths point at, built afresh for each test."""

    users: dict[str, Any]
    organization: Any
    other_organization: Any
    shops: dict[str, Any] = field(default_factory=dict)  # "merchant" and "other_merchant" → their shop
    objects: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return re.sub(r"<([^>]+)>", lambda m: str(self.object_id(m.group(1))), path)

    def object_id(self, param: str) -> int:
        if param not in self.objects:
            self.objects[param] = PATH_OBJECTS[param](self)
        return self.objects[param]


Body = dict | Callable[[World, Any], dict] | None


@dataclass(frozen=True)
class Row:
    expected: dict[str, int]
    body: Body = None
    query: dict | None = None  # the query string, for routes that need one

    def body_for(self, world: World, user) -> dict | None:
        return self.body(world, user) if callable(self.body) else self.body


def expect(default: int, **per_actor: int) -> dict[str, int]:
    """`default` for every actor, except those named."""
    unknown = set(per_actor) - set(ACTORS)
    assert not unknown, f"unknown actors {unknown}"
    return {actor: per_actor.get(actor, default) for actor in ACTORS}


def signed_in(status: int, **per_actor: int) -> dict[str, int]:
    """`status` for any signed-in actor, 401 for anonymous."""
    return expect(status, anonymous=401, **per_actor)


def only(status: int, *actors: str, refused: int = 403, **per_actor: int) -> dict[str, int]:
    """`status` for the actors named, `refused` for the other signed-in ones, 401 for anonymous, except the
    actors given by keyword."""
    return expect(refused, **{"anonymous": 401, **{actor: status for actor in actors}, **per_actor})


def _own_credentials(world: World, user) -> dict:
    return {"phone": (user or world.users["volunteer"]).phone, "password": PASSWORD}


def _project(world: World) -> int:
    """A published project of the coordinator's organisation, under way (started an hour ago)."""
    now = utcnow()
    coordinator = world.users["coordinator"]
    project = projects.create_project(
        {"title": "健康加油站", "category": "健康加油站", "location": "奉城镇社区服务中心", "capacity": 10,
         "starts_at": now - timedelta(hours=1), "ends_at": now + timedelta(hours=3)}, actor=coordinator)
    projects.publish(project, actor=coordinator, publish_at=now - timedelta(hours=2))
    db.session.commit()
    return project.id


def _claim(world: World) -> int:
    """The volunteer's confirmed claim on that project."""
    claim = projects.claim(db.session.get(projects.Project, world.object_id("project_id")),
                           volunteer=world.users["volunteer"])
    db.session.commit()
    return claim.id


def _record(world: World) -> int:
    """A pending manual record on that claim."""
    now = utcnow()
    claim = db.session.get(projects.Claim, world.object_id("claim_id"))
    record = hours.file_manual(claim, {"started_at": now - timedelta(minutes=50),
                                       "ended_at": now - timedelta(minutes=20)}, volunteer=world.users["volunteer"])
    db.session.commit()
    return record.id


def _current_code(world: World, _user) -> dict:
    project = db.session.get(projects.Project, world.object_id("project_id"))
    code, _expires = hours.checkin_code(project, actor=world.users["coordinator"])
    return {"code": code}


def _manual_hours(_world: World, _user) -> dict:
    now = utcnow()
    return {"started_at": (now - timedelta(minutes=45)).isoformat(),
            "ended_at": (now - timedelta(minutes=15)).isoformat()}


def _new_project(_world: World, _user) -> dict:
    now = utcnow()
    return {"title": "变废为宝", "category": "变废为宝", "location": "奉城镇", "capacity": 5,
            "starts_at": (now + timedelta(days=2)).isoformat(),
            "ends_at": (now + timedelta(days=2, hours=2)).isoformat()}


def _merchant(world: World) -> int:
    """`merchant`'s shop (built with the world, as staff need a shop to belong to)."""
    return world.shops["merchant"].id


def _service(world: World) -> int:
    """A 5-coin service of that shop; both volunteers get 20 coins to spend on it."""
    shop = world.shops["merchant"]
    service = merchants.create_service(shop, {"name": "精洗", "description": "", "price": 5, "daily_quota": None},
                                       actor=world.users["coordinator"])
    for actor in VOLUNTEERS:
        transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(world.users[actor].id), 20,
                 memo="test")
    db.session.commit()
    return service.id


def _voucher(world: World) -> int:
    """The volunteer's issued voucher for that service."""
    service = db.session.get(Service, world.object_id("service_id"))
    voucher = merchants.take_voucher(service, volunteer=world.users["volunteer"])
    db.session.commit()
    return voucher.id


def _voucher_code(world: World, _user) -> dict:
    return {"code": merchants.group_code(db.session.get(Voucher, world.object_id("voucher_id")).code)}


def _taking(world: World, _user) -> dict:
    return {"service_id": world.object_id("service_id")}


ALL_TIME = {"from": "2000-01-01", "to": "2099-12-31"}


def _redeemed_period(world: World, _user) -> dict:
    """A period in which `merchant`'s shop redeemed the volunteer's voucher, so there is something to settle."""
    voucher = db.session.get(Voucher, world.object_id("voucher_id"))
    if voucher.status == "issued":
        merchants.redeem(voucher, staff=world.users["merchant"])
        db.session.commit()
    return ALL_TIME


def _review(world: World) -> int:
    """An open review of the project's year: that project a candidate, the coordinator invited to score."""
    project = db.session.get(projects.Project, world.object_id("project_id"))
    coordinator = world.users["coordinator"]
    review = reviews.open_review(project.starts_at.astimezone(local_zone()).year, "年度优秀服务项目评审",
                                 by=coordinator)
    reviews.add_candidates(review, [project.id], actor=coordinator)
    reviews.invite_reviewers(review, [coordinator.id], actor=coordinator)
    db.session.commit()
    return review.id


def _organization(world: World) -> int:
    """The coordinator's organisation."""
    return world.organization.id


def _requester(world: World) -> int:
    """Someone who registered asking to join the coordinator's organisation."""
    from credits.auth.services import register

    user = register(phone="13911112222", name="申请人", password=PASSWORD, organization_id=world.organization.id)
    db.session.commit()
    return user.id


def _import(world: World) -> int:
    """A preview of a one-row roster, uploaded by the coordinator to their organisation."""
    from credits.organizations.services import preview_import

    roster = preview_import(world.organization, filename="roster.csv", data="姓名,手机号,党员\n新成员,13922223333,是\n"
                            .encode(), actor=world.users["coordinator"])
    db.session.commit()
    return roster.id
def _member(world: World) -> int:
    """A member of the coordinator's organisation (not one of the actors, whom a removal would change), imported and
    not yet activated, so that resending their invitation applies too."""
    from credits.auth.services import create_user

    user = create_user(phone="13911113333", name="成员", password=PASSWORD, organization_id=world.organization.id)
    user.pending_activation = True
    db.session.commit()
    return user.id


# Path parameter name → a builder that creates the object and returns its id.
PATH_OBJECTS: dict[str, Callable[[World], int]] = {
    "project_id": _project,
    "claim_id": _claim,
    "record_id": _record,
    "merchant_id": _merchant,
    "service_id": _service,
    "voucher_id": _voucher,
    "review_id": _review,
    "org_id": _organization,
    "user_id": _requester,
    "import_id": _import,
    "member_id": _member,
}
VOLUNTEERS = ("volunteer", "other_volunteer")
COORDINATORS = ("coordinator", "other_coordinator")

ROUTES: dict[tuple[str, str], Row] = {
    ("POST", "/api/v1/auth/register"): Row(
        expect(201), body={"phone": "13912345678", "password": PASSWORD, "name": "新志愿者"}),
    ("POST", "/api/v1/auth/token"): Row(expect(201), body=_own_credentials),
    ("DELETE", "/api/v1/auth/token"): Row(signed_in(204)),
    ("GET", "/api/v1/me"): Row(signed_in(200)),
    # SMS codes: anyone may ask (the same 202 whatever the phone); a reset or change of phone without the code sent
    # is refused to everyone alike.
    ("POST", "/api/v1/auth/sms-code"): Row(expect(202), body={"phone": "13912345670", "purpose": "register"}),
    ("POST", "/api/v1/auth/password-reset"): Row(
        expect(422), body={"phone": "13912345670", "code": "123456", "password": "a-new-password-456"}),
    ("POST", "/api/v1/me/phone"): Row(signed_in(422), body={"phone": "13912345670", "code": "123456"}),
    ("POST", "/api/v1/me/password"): Row(
        signed_in(204), body={"current_password": PASSWORD, "new_password": "a-new-password-456"}),
    # Each person's own messages: ids of another's would be 404 (tests/notifications/test_inbox.py).
    ("GET", "/api/v1/me/notifications"): Row(signed_in(200)),
    ("POST", "/api/v1/me/notifications/read"): Row(signed_in(204), body={}),
    ("GET", "/api/v1/me/notification-settings"): Row(signed_in(200)),
    ("PUT", "/api/v1/me/notification-settings"): Row(signed_in(200), body={"sms": {"redemption": True}}),
    ("GET", "/api/v1/organizations"): Row(expect(200)),
    # Requests to join an organisation: its own coordinators and admins decide; another organisation's may not.
    ("GET", "/api/v1/organizations/<org_id>/requests"): Row(only(200, "coordinator", "admin")),
    ("POST", "/api/v1/organizations/<org_id>/requests/<user_id>/confirm"): Row(only(200, "coordinator", "admin")),
    ("POST", "/api/v1/organizations/<org_id>/requests/<user_id>/decline"): Row(only(200, "coordinator", "admin")),
    # Organisations onboard members (SPEC 2.8). The import takes a multipart file: sent none, its managers get the
    # 422 that says so, everyone else is refused first.
    ("POST", "/api/v1/organizations"): Row(only(201, "admin"), body={"name": "新建组织", "kind": "social"}),
    ("POST", "/api/v1/organizations/<org_id>/imports"): Row(only(422, "coordinator", "admin")),
    ("GET", "/api/v1/organizations/<org_id>/imports/<import_id>"): Row(only(200, "coordinator", "admin")),
    ("POST", "/api/v1/organizations/<org_id>/imports/<import_id>/confirm"): Row(only(200, "coordinator", "admin")),
    ("POST", "/api/v1/organizations/<org_id>/members/<member_id>/invitation"): Row(only(204, "coordinator", "admin")),
    # Members: the organisation's own coordinators and admins; another organisation's coordinator may not.
    ("GET", "/api/v1/organizations/<org_id>/members"): Row(only(200, "coordinator", "admin")),
    ("DELETE", "/api/v1/organizations/<org_id>/members/<member_id>"): Row(only(204, "coordinator", "admin")),
    # Projects: anyone reads published ones; only the organiser's coordinators manage them.
    ("GET", "/api/v1/projects"): Row(expect(200)),
    ("POST", "/api/v1/projects"): Row(only(201, "coordinator", "other_coordinator"), body=_new_project),
    ("GET", "/api/v1/projects/<project_id>"): Row(expect(200)),
    ("PATCH", "/api/v1/projects/<project_id>"): Row(only(200, "coordinator"), body={"description": "新的介绍"}),
    ("POST", "/api/v1/projects/<project_id>/publish"): Row(only(409, "coordinator"), body={}),  # already published
    ("POST", "/api/v1/projects/<project_id>/close"): Row(only(200, "coordinator")),
    ("POST", "/api/v1/projects/<project_id>/cancel"): Row(only(200, "coordinator")),
    ("POST", "/api/v1/projects/<project_id>/checkin-code"): Row(only(201, "coordinator")),
    ("GET", "/api/v1/projects/<project_id>/claims"): Row(only(200, "coordinator")),
    ("POST", "/api/v1/projects/<project_id>/claims"): Row(only(201, *VOLUNTEERS)),
    # Claims: the owner acts on theirs; another volunteer cannot even see it (404); coordinators mark no-shows.
    ("GET", "/api/v1/me/claims"): Row(only(200, *VOLUNTEERS)),
    ("POST", "/api/v1/claims/<claim_id>/cancel"): Row(only(409, "volunteer", other_volunteer=404)),  # started
    ("POST", "/api/v1/claims/<claim_id>/no-show"): Row(only(200, "coordinator", other_coordinator=404)),
    ("POST", "/api/v1/claims/<claim_id>/checkin"): Row(only(201, "volunteer", other_volunteer=404),
                                                       body=_current_code),
    ("POST", "/api/v1/claims/<claim_id>/checkout"): Row(only(409, "volunteer", other_volunteer=404),
                                                        body=_current_code),  # not checked in
    ("POST", "/api/v1/claims/<claim_id>/hours"): Row(only(201, "volunteer", other_volunteer=404),
                                                     body=_manual_hours),
    # Hours: the organiser's coordinators review (another organisation's see their own queue, not these records);
    # volunteers read their own.
    ("GET", "/api/v1/hours"): Row(only(200, "coordinator", "other_coordinator")),
    ("GET", "/api/v1/me/hours"): Row(only(200, *VOLUNTEERS)),
    ("POST", "/api/v1/hours/review"): Row(only(200, "coordinator", "other_coordinator"),
                                          body={"ids": [999999], "action": "approve"}),
    # Admins see every record but are only ever the second approver of an issuance awaiting one.
    ("POST", "/api/v1/hours/<record_id>/approve"): Row(only(200, "coordinator", other_coordinator=404)),
    ("POST", "/api/v1/hours/<record_id>/reject"): Row(only(200, "coordinator", other_coordinator=404),
                                                      body={"reason": "时间不符"}),
    ("POST", "/api/v1/hours/<record_id>/revoke"): Row(only(409, "coordinator", other_coordinator=404),
                                                      body={"reason": "重复"}),  # pending
    ("GET", "/api/v1/me/wallet"): Row(only(200, *VOLUNTEERS)),
    ("GET", "/api/v1/me/transactions"): Row(only(200, *VOLUNTEERS)),
    ("POST", "/api/v1/me/certificates"): Row(only(409, *VOLUNTEERS),  # no approved hours yet
                                             body={"from": "2026-01-01", "to": "2026-12-31"}),
    # Merchants: anyone browses; the commercial street is the town's, so every coordinator onboards shops and staff;
    # a shop's staff (and coordinators) manage its services and see its redemptions; staff of another shop are
    # refused (403), or told wrong_merchant (409).
    ("GET", "/api/v1/merchants"): Row(expect(200)),
    ("POST", "/api/v1/merchants"): Row(only(201, *COORDINATORS), body={
        "name": "童趣摄影", "address": "奉城镇北街8号", "category": "children_photography"}),
    ("POST", "/api/v1/merchants/<merchant_id>/staff"): Row(
        only(201, *COORDINATORS), body={"phone": "13987654321", "name": "新店员", "password": PASSWORD}),
    ("POST", "/api/v1/merchants/<merchant_id>/services"): Row(only(201, "merchant", *COORDINATORS),
                                                              body={"name": "打蜡", "price": 5}),
    ("PATCH", "/api/v1/services/<service_id>"): Row(only(200, "merchant", *COORDINATORS), body={"price": 6}),
    ("GET", "/api/v1/merchants/<merchant_id>/redemptions"): Row(only(200, "merchant", *COORDINATORS)),
    ("GET", "/api/v1/merchants/<merchant_id>/statement"): Row(only(200, "merchant", *COORDINATORS, "admin"),
                                                              query=ALL_TIME),
    ("POST", "/api/v1/merchants/<merchant_id>/settlements"): Row(only(201, "admin"), body=_redeemed_period),
    # Vouchers: volunteers take them and cancel their own; only the voucher's shop redeems it.
    ("POST", "/api/v1/vouchers"): Row(only(201, *VOLUNTEERS), body=_taking),
    ("GET", "/api/v1/me/vouchers"): Row(only(200, *VOLUNTEERS)),
    ("POST", "/api/v1/vouchers/<voucher_id>/cancel"): Row(only(200, "volunteer", other_volunteer=404)),
    ("POST", "/api/v1/redemptions"): Row(only(200, "merchant", other_merchant=409), body=_voucher_code),
    # Reports: the town's figures, for every coordinator, JSON and downloads alike.
    ("GET", "/api/v1/reports/summary"): Row(only(200, *COORDINATORS)),
    ("GET", "/api/v1/reports/projects"): Row(only(200, *COORDINATORS)),
    ("GET", "/api/v1/reports/organizations"): Row(only(200, *COORDINATORS), query={"format": "csv"}),
    ("GET", "/api/v1/reports/merchants"): Row(only(200, *COORDINATORS)),
    ("GET", "/api/v1/reports/volunteers"): Row(only(200, *COORDINATORS), query={"format": "xlsx"}),
    ("GET", "/api/v1/reports/records"): Row(only(200, *COORDINATORS), query={"period": "month"}),
    # Participation: every coordinator (scoped to their organisation unless it is the town's) and admins.
    ("GET", "/api/v1/reports/participation"): Row(only(200, *COORDINATORS, "admin"), query={"format": "xlsx"}),
    # The annual review: any coordinator opens one and reads them all; the one who opened it (the world's
    # coordinator) and admins manage it; only invited reviewers score (the world's coordinator is invited).
    ("POST", "/api/v1/reviews"): Row(only(201, *COORDINATORS), body={"year": 2026, "title": "年度评审"}),
    ("GET", "/api/v1/reviews"): Row(only(200, *COORDINATORS, "admin")),
    ("GET", "/api/v1/reviews/<review_id>"): Row(only(200, *COORDINATORS, "admin")),
    ("POST", "/api/v1/reviews/<review_id>/candidates"): Row(
        only(200, "coordinator", "admin"),
        body=lambda world, _user: {"project_ids": [world.object_id("project_id")]}),
    ("DELETE", "/api/v1/reviews/<review_id>/candidates/<project_id>"): Row(only(204, "coordinator", "admin")),
    ("POST", "/api/v1/reviews/<review_id>/reviewers"): Row(
        only(200, "coordinator", "admin"),
        body=lambda world, _user: {"user_ids": [world.users["coordinator"].id]}),
    ("PUT", "/api/v1/reviews/<review_id>/scores/<project_id>"): Row(only(200, "coordinator"),
                                                                      body={"score": 90, "comment": "服务扎实"}),
    ("POST", "/api/v1/reviews/<review_id>/close"): Row(only(200, "coordinator", "admin")),
    ("GET", "/api/v1/reviews/<review_id>/ranking"): Row(only(200, *COORDINATORS, "admin"), query={"format": "csv"}),
    # Sharing (SPEC 2.9): posters of published projects and active shops, and the 公示 figures, for anyone.
    ("GET", "/api/v1/projects/<project_id>/poster.png"): Row(expect(200)),
    ("GET", "/api/v1/merchants/<merchant_id>/poster.png"): Row(expect(200)),
    ("GET", "/api/v1/public/summary"): Row(expect(200)),
}


def _path(rule: str) -> str:
    """`/api/v1/projects/<int:project_id>` → `/api/v1/projects/<project_id>`."""
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"<\1>", rule)


def api_routes(app) -> set[tuple[str, str]]:
    return {(method, _path(rule.rule))
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith("/api/v1/") and rule.rule not in UNLISTED
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_api_route_has_a_row_and_every_row_a_route(app):
    routes = api_routes(app)
    missing = sorted(routes - ROUTES.keys())
    stale = sorted(ROUTES.keys() - routes)
    assert not missing, f"API routes without a row in ROUTES: {missing}"
    assert not stale, f"rows in ROUTES for routes the app does not have: {stale}"


def test_every_path_parameter_has_an_object_builder():
    params = {p for _, path in ROUTES for p in re.findall(r"<([^>]+)>", path)}
    assert not params - PATH_OBJECTS.keys(), f"add builders to PATH_OBJECTS for {params - PATH_OBJECTS.keys()}"


def test_every_row_names_every_actor():
    for route, row in ROUTES.items():
        assert set(row.expected) == set(ACTORS), route


@pytest.fixture
def world(make_user, make_org) -> World:
    org, other_org = make_org("奉城镇党委", kind="government"), make_org("奉城镇商会")
    users = {
        "volunteer": make_user("volunteer", name="志愿者甲", organization=org),
        "other_volunteer": make_user("volunteer", name="志愿者乙", organization=other_org),
        "coordinator": make_user("coordinator", name="协调员", organization=org),
        "other_coordinator": make_user("coordinator", name="别家协调员", organization=other_org),
        "merchant": make_user("merchant", name="店员甲"),
        "other_merchant": make_user("merchant", name="店员乙"),
        "admin": make_user("admin", name="管理员"),
    }
    # Each staff user works at a shop of their own: `merchant` at the shop the objects belong to.
    shops = {}
    for actor, name in (("merchant", "阳光洗车"), ("other_merchant", "好孩子早教")):
        shops[actor] = merchants.create_merchant({"name": name, "address": "奉城镇南街", "category": "other"},
                                                 actor=users["coordinator"])
        users[actor].merchant_id = shops[actor].id
    db.session.commit()
    return World(users=users, organization=org, other_organization=other_org, shops=shops)


CELLS = [(method, path, actor) for (method, path) in ROUTES for actor in ACTORS]


@pytest.mark.parametrize(("method", "path", "actor"), CELLS,
                         ids=[f"{m} {p} as {a}" for m, p, a in CELLS])
def test_actor_gets_the_expected_status(client, world, token_for, method, path, actor):
    row = ROUTES[(method, path)]
    user = world.users.get(actor)
    headers = token_for(user) if user else {}
    url = world.url(path)
    body = row.body_for(world, user)
    response = client.open(url, method=method, json=body, headers=headers, query_string=row.query)
    expected = row.expected[actor]
    assert response.status_code == expected, (
        f"{method} {url} as {actor}: {response.status_code}, expected {expected}: "
        f"{response.get_data(as_text=True)[:300]}")
    if expected in ERROR_CODES:
        assert response.json["error"]["code"] == (ERROR_CODES[expected] or response.json["error"]["code"])
