"""`flask credits create-organization`, and `create-user --organization` by name as well as by id."""

from __future__ import annotations

from sqlalchemy import select

from credits.auth.models import AuditEvent, Organization, User
from credits.extensions import db


def test_create_organization_then_a_coordinator_in_it_by_name(runner):
    result = runner.invoke(args=["credits", "create-organization", "--name", "奉城镇某企业党支部",
                                 "--kind", "enterprise"])
    assert result.exit_code == 0, result.output
    org = db.session.scalars(select(Organization).where(Organization.name == "奉城镇某企业党支部")).one()
    assert org.kind == "enterprise"
    assert db.session.scalar(select(AuditEvent.address).where(AuditEvent.action == "organization.create")) == "cli"
    result = runner.invoke(args=["credits", "create-user", "--phone", "13912340000", "--name", "企业协调员",
                                 "--role", "coordinator", "--organization", "奉城镇某企业党支部", "--password-stdin"],
                           input="a-long-password-2026\n")
    assert result.exit_code == 0, result.output
    assert db.session.scalars(select(User).where(User.phone == "13912340000")).one().organization_id == org.id
    by_id = runner.invoke(args=["credits", "create-user", "--phone", "13912340001", "--name", "另一协调员",
                                "--role", "coordinator", "--organization", str(org.id), "--password-stdin"],
                          input="a-long-password-2026\n")
    assert by_id.exit_code == 0, by_id.output


def test_create_organization_refuses_a_taken_name_and_a_bad_kind(runner, make_org):
    make_org("已有组织")
    taken = runner.invoke(args=["credits", "create-organization", "--name", "已有组织", "--kind", "social"])
    assert taken.exit_code != 0 and "name_taken" in taken.output
    bad = runner.invoke(args=["credits", "create-organization", "--name", "新组织", "--kind", "club"])
    assert bad.exit_code != 0


def test_create_user_with_an_unknown_organisation_name_creates_nothing(runner):
    result = runner.invoke(args=["credits", "create-user", "--phone", "13912340002", "--name", "某人", "--role",
                                 "volunteer", "--organization", "没有这个组织", "--password-stdin"],
                           input="a-long-password-2026\n")
    assert result.exit_code != 0 and "没有这个组织" in result.output
    assert db.session.scalar(select(User.id).where(User.phone == "13912340002")) is None
