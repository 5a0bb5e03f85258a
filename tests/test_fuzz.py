"""API fuzzing: schemathesis generates requests from /api/v1/openapi.json, valid and invalid, for every operation,
as each kind of actor, against a small world; every response must be a non-5xx that the document describes.

A failure prints the request that broke the rule as a curl command; `-k "POST /api/v1/vouchers and volunteer"`
reruns one cell. Runs are derandomized, so CI sends the same requests each time (until the document changes).

The schema is loaded when the module is collected (`schemathesis.pytest.from_fixture` would load it per test, but
its lazy tests do not run under pytest 9.2), so the operations are known up front and each becomes a test per role.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import timedelta

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from credits.auth.models import Organization
from credits.auth.services import create_user, issue_token
from credits.extensions import db, limiter
from credits.hours import services as hours
from credits.ledger.models import SystemAccount, TxKind
from credits.ledger.services import system_account, transfer, user_account
from credits.merchants import services as merchants
from credits.projects import services as projects
from credits.reviews import services as reviews
from credits.timeutil import local_zone, utcnow
from tests.conftest import PG_URL, _make_app, _truncate_postgres

PASSWORD = "gongyi-test-2026"
ROLES = ("anonymous", "volunteer", "coordinator", "merchant", "admin")
# SPEC 3.2: the statuses an error may have and the codes each carries; 409 carries the broken rule's own code.
ERROR_CODES = {401: {"unauthorized"}, 403: {"forbidden"}, 404: {"not_found"}, 415: {"validation_error"},
               422: {"validation_error"}, 429: {"rate_limited"}}


def errors_as_the_contract_says(ctx, response, case) -> None:
    """Every operation documents its successes and a `default` error envelope, and schemathesis's
    status_code_conformance passes any status once `default` is there. This is the part it skips: a success is one
    the operation documents, and an error is one of SPEC 3.2's statuses with the code that goes with it."""
    status = response.status_code
    if case.method.upper() != case.operation.method.upper():
        # The coverage phase probes methods the path does not serve: 405, or OPTIONS answered by Flask itself.
        assert status == 405 or (case.method.upper() == "OPTIONS" and status == 200), (
            f"{case.method} answered {status}, not 405")
        return
    if status < 400:
        documented = set(case.operation.responses.status_codes) - {"default"}
        assert str(status) in documented, f"{status} is not a documented success ({', '.join(sorted(documented))})"
        return
    code = response.json()["error"]["code"]
    if status == 409:
        assert code not in set().union(*ERROR_CODES.values()), f"409 with the code of another status: {code}"
    else:
        assert code in ERROR_CODES.get(status, ()), f"{status} {code} is not an error SPEC 3.2 names"


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          errors_as_the_contract_says]
# Per operation and role, for the fuzzing phase; the coverage phase adds its boundary cases on top. Sized so the
# whole run takes a couple of minutes on two cores, on each database.
MAX_EXAMPLES = 12
# Operations after which the token used no longer works (signed out, or every session ended by a new password).
ENDS_SESSION = {"DELETE /api/v1/auth/token", "POST /api/v1/me/password"}

CONFIG = SchemathesisConfig.from_dict({
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    # The stateful phase chains operations through links the document does not declare; the examples phase has no
    # examples to use.
    "phases": {"examples": {"enabled": False}, "stateful": {"enabled": False}},
})


def _document_app():
    """An app that only serves the document, so that the operations are known when pytest collects the tests."""
    return _make_app("sqlite://")


schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", _document_app(), config=CONFIG)


def _build_world() -> dict:
    """One of each actor and an object behind each kind of path id, so that generated ids (small integers first)
    sometimes name real objects: a project under way with a confirmed claim and a pending record, one to come, a
    shop with a service, a volunteer with coins and a voucher, an open review."""
    now = utcnow()
    org = Organization(name="奉城镇党委", kind="government")
    db.session.add(org)
    db.session.flush()
    users = {role: create_user(phone=f"1380000000{n}", name=name, password=PASSWORD, roles=(role,),
                               organization_id=org.id if role in ("volunteer", "coordinator") else None)
             for n, (role, name) in enumerate((("volunteer", "志愿者甲"), ("coordinator", "协调员"),
                                                ("merchant", "店员甲"), ("admin", "管理员")))}
    coordinator, volunteer = users["coordinator"], users["volunteer"]
    under_way = projects.create_project(
        {"title": "健康加油站", "category": "健康加油站", "location": "奉城镇社区服务中心", "capacity": 10,
         "starts_at": now - timedelta(hours=1), "ends_at": now + timedelta(hours=3)}, actor=coordinator)
    projects.publish(under_way, actor=coordinator, publish_at=now - timedelta(hours=2))
    to_come = projects.create_project(
        {"title": "变废为宝", "category": "变废为宝", "location": "奉城镇", "capacity": 2,
         "starts_at": now + timedelta(days=2), "ends_at": now + timedelta(days=2, hours=2)}, actor=coordinator)
    projects.publish(to_come, actor=coordinator)
    claim = projects.claim(under_way, volunteer=volunteer)
    hours.file_manual(claim, {"started_at": now - timedelta(minutes=50), "ended_at": now - timedelta(minutes=20)},
                      volunteer=volunteer)
    shop = merchants.create_merchant({"name": "阳光洗车", "address": "奉城镇南街", "category": "car_wash"},
                                     actor=coordinator)
    users["merchant"].merchant_id = shop.id
    service = merchants.create_service(shop, {"name": "精洗", "description": "", "price": 5, "daily_quota": None},
                                       actor=coordinator)
    transfer(TxKind.ADJUST, system_account(SystemAccount.ISSUANCE), user_account(volunteer.id), 50, memo="fuzz")
    merchants.take_voucher(service, volunteer=volunteer)
    review = reviews.open_review(under_way.starts_at.astimezone(local_zone()).year, "年度优秀服务项目评审",
                                 by=coordinator)
    reviews.add_candidates(review, [under_way.id], actor=coordinator)
    reviews.invite_reviewers(review, [coordinator.id], actor=coordinator)
    db.session.commit()
    return users


@pytest.fixture(scope="module", params=ROLES)
def fuzz(request, _migrated, tmp_path_factory):
    """A fresh world per role, shared by that role's run over every operation (so state builds up as it would for
    a real client), and the role's bearer token.

    The per-user limits on claims, check-in codes and redemptions are out of reach: the fuzzer is one user sending
    hundreds of requests a minute and would otherwise meet only 429s there, never the code behind them. The
    sign-in limit stays, so its 429 is checked against the document too."""
    if PG_URL:
        url = PG_URL
    else:
        path = tmp_path_factory.mktemp("fuzz") / "fuzz.sqlite"
        shutil.copy(_migrated, path)
        url = f"sqlite:///{path}"
    app = _make_app(url, CLAIM_RATE_LIMIT="100000 per minute", CHECKIN_RATE_LIMIT="100000 per minute",
                    REDEEM_RATE_LIMIT="100000 per minute")
    if PG_URL:
        _truncate_postgres(app)
    limiter.reset()
    with app.app_context():
        users = _build_world()
        yield Fuzz(app, Bearer(users.get(request.param)))
        db.session.remove()
        db.engine.dispose()


class Bearer:
    """The role's Authorization header, renewed when an operation ends the session it belongs to."""

    def __init__(self, user) -> None:
        self.user = user
        self.headers: dict[str, str] = {}
        self.renew()

    def renew(self) -> None:
        if self.user is not None:
            raw, _token = issue_token(self.user)
            db.session.commit()
            self.headers = {"Authorization": f"Bearer {raw}"}


@dataclass
class Fuzz:
    app: Flask
    bearer: Bearer


@pytest.mark.slow
@schema.parametrize()
# Health checks would fail operations whose valid inputs are rare (filtering) or whose requests touch the database
# (too slow), and both are the point here.
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_answers_every_request_as_documented_and_never_with_a_5xx(case, fuzz):
    response = case.call_and_validate(app=fuzz.app, session=fuzz.app.test_client(), headers=fuzz.bearer.headers,
                                      checks=CHECKS)
    if case.operation.label in ENDS_SESSION and response.status_code < 300:
        fuzz.bearer.renew()


def test_the_document_describes_errors_as_the_envelope_the_api_sends():
    doc = schema.raw_schema
    assert doc["components"]["schemas"]["Error"]["required"] == ["error"]
    assert set(doc["components"]["schemas"]["ErrorBody"]["required"]) == {"code", "message"}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                assert operation["responses"]["default"] == {"$ref": "#/components/responses/DEFAULT_ERROR"}, (
                    method, path)


def _operations() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, operations in schema.raw_schema["paths"].items()
            for method in operations if method in {"get", "post", "put", "patch", "delete"}]


# What no generated case sends: a body nested past any parser, a body that is JSON in all but its type, NUL in a
# path id and in a query (each of which was a 500 or a silently ignored body once).
UNREADABLE = {
    "deep_json": ({"Content-Type": "application/json"}, b"[" * 5000 + b"]" * 5000, {422}),
    "huge_integer": ({"Content-Type": "application/json"}, b'{"id": ' + b"7" * 5000 + b"}", {422}),
    "text_plain": ({"Content-Type": "text/plain"}, b'{"publish_at": "2030-01-01T00:00:00+08:00"}', {415}),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_every_write_refuses_unreadable_bodies_before_it_runs(case, fuzz):
    headers, body, statuses = UNREADABLE[case]
    client = fuzz.app.test_client()
    for method, path in _operations():
        if method == "GET":
            continue
        response = client.open(_with_ids(path, "1"), method=method, data=body,
                               headers={**fuzz.bearer.headers, **headers})
        assert response.status_code in statuses, (method, path, response.status_code)
        assert response.json["error"]["code"] in ERROR_CODES[response.status_code]


def test_nul_in_any_path_id_or_query_is_refused_not_a_500(fuzz):
    client = fuzz.app.test_client()
    for method, path in _operations():
        if "{" in path:
            response = client.open(_with_ids(path, "%00"), method=method, headers=fuzz.bearer.headers)
            assert response.status_code == 404, (method, path, response.status_code)
        response = client.open(_with_ids(path, "1") + "?q=%00&page=%00", method=method, headers=fuzz.bearer.headers)
        assert response.status_code == 422, (method, path, response.status_code)
        assert response.json["error"]["code"] == "validation_error"


def _with_ids(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)
