"""JSON API for projects and claims (SPEC 3.2)."""

from __future__ import annotations

from flask import request
from flask_login import current_user
from flask_smorest import Blueprint

from credits.auth.models import Role
from credits.auth.permissions import BEARER, require_role, role_required, sign_in_bearer, signs_in_itself
from credits.auth.services import bearer_hash
from credits.auth.throttle import count_claim
from credits.database import commit_as_written
from credits.extensions import db
from credits.pagination import PageArgs, page_schema, paginate
from credits.projects import services
from credits.projects.schemas import (
    ClaimListArgs,
    ClaimOut,
    ProjectIn,
    ProjectListArgs,
    ProjectOut,
    ProjectPatchIn,
    PublishIn,
    RosterClaimOut,
)

blp = Blueprint("projects_api", __name__, description="Projects and claims")


class ProjectPageArgs(PageArgs, ProjectListArgs):
    pass


class ClaimPageArgs(PageArgs, ClaimListArgs):
    pass


@blp.get("/projects")
@blp.arguments(ProjectPageArgs, location="query")
@blp.response(200, page_schema(ProjectOut))
def list_projects(args):
    """Published projects (and, for coordinators, their organisation's drafts)."""
    stmt = services.visible_projects(current_user, status=args.get("status"), category=args.get("category"))
    return paginate(stmt, args["page"], args["per_page"])


@blp.post("/projects")
@role_required(Role.COORDINATOR)
@blp.arguments(ProjectIn)
@blp.response(201, ProjectOut)
@blp.doc(security=BEARER)
def create_project(data):
    """Create a draft project organised by the coordinator's organisation."""
    project = services.create_project(data, actor=current_user)
    db.session.commit()
    return project


@blp.get("/projects/<int:project_id>")
@blp.response(200, ProjectOut)
def get_project(project_id):
    return services.get_project(project_id, viewer=current_user)


@blp.patch("/projects/<int:project_id>")
@role_required(Role.COORDINATOR)
@blp.arguments(ProjectPatchIn(partial=True))
@blp.response(200, ProjectOut)
@blp.doc(security=BEARER)
def update_project(changes, project_id):
    project = services.update_project(services.get_project(project_id, viewer=current_user), changes,
                                      actor=current_user)
    db.session.commit()
    return project


@blp.post("/projects/<int:project_id>/publish")
@role_required(Role.COORDINATOR)
@blp.arguments(PublishIn)
@blp.response(200, ProjectOut)
@blp.doc(security=BEARER)
def publish_project(data, project_id):
    """Publish now, or at `publish_at` (claims open then)."""
    project = services.publish(services.get_project(project_id, viewer=current_user), actor=current_user,
                               publish_at=data.get("publish_at"))
    db.session.commit()
    return project


@blp.post("/projects/<int:project_id>/close")
@role_required(Role.COORDINATOR)
@blp.response(200, ProjectOut)
@blp.doc(security=BEARER)
def close_project(project_id):
    project = services.close(services.get_project(project_id, viewer=current_user), actor=current_user)
    db.session.commit()
    return project


@blp.post("/projects/<int:project_id>/cancel")
@role_required(Role.COORDINATOR)
@blp.response(200, ProjectOut)
@blp.doc(security=BEARER)
def cancel_project(project_id):
    project = services.cancel_project(services.get_project(project_id, viewer=current_user),
                                      actor=current_user)
    db.session.commit()
    return project


@blp.post("/projects/<int:project_id>/claims")
@signs_in_itself
@blp.response(201, ClaimOut)
@blp.doc(security=BEARER)
def create_claim(project_id):
    """Claim a place: confirmed, or waitlisted with a position; 409 project_full, not_open, …"""
    # Most of a flash crowd is refused from one read of the token and the project, before anyone is signed in; the
    # rest take the whole path (which applies the same rule to the project it loads).
    services.refuse_if_full_for_token(project_id, bearer_hash(request.headers.get("Authorization")))
    sign_in_bearer()
    require_role(Role.VOLUNTEER)
    count_claim()
    claim = services.claim(services.get_claimable(project_id), volunteer=current_user)
    commit_as_written()
    return claim


@blp.get("/projects/<int:project_id>/claims")
@role_required(Role.COORDINATOR)
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(RosterClaimOut))
@blp.doc(security=BEARER)
def project_claims(args, project_id):
    """The roster: confirmed in order, the waitlist in order, then no-shows and cancellations."""
    project = services.get_project(project_id, viewer=current_user)
    return paginate(services.roster(project, actor=current_user), args["page"], args["per_page"])


@blp.get("/me/claims")
@role_required(Role.VOLUNTEER)
@blp.arguments(ClaimPageArgs, location="query")
@blp.response(200, page_schema(ClaimOut))
@blp.doc(security=BEARER)
def my_claims(args):
    stmt = services.my_claims(current_user, status=args.get("status"))
    return paginate(stmt, args["page"], args["per_page"])


@blp.post("/claims/<int:claim_id>/cancel")
@role_required(Role.VOLUNTEER)
@blp.response(200, ClaimOut)
@blp.doc(security=BEARER)
def cancel_claim(claim_id):
    claim = services.cancel_claim(services.get_claim(claim_id, viewer=current_user), actor=current_user)
    db.session.commit()
    return claim


@blp.post("/claims/<int:claim_id>/no-show")
@role_required(Role.COORDINATOR)
@blp.response(200, ClaimOut)
@blp.doc(security=BEARER)
def mark_no_show(claim_id):
    claim = services.mark_no_show(services.get_claim(claim_id, viewer=current_user), actor=current_user)
    db.session.commit()
    return claim
