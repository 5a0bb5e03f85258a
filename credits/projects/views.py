"""HTML pages for projects and claims: volunteers browse and claim on a phone; coordinators run their projects.

Every page calls the same service functions as the JSON API, so the two cannot drift apart; a refused claim or
action comes back as a flash on the page it was tapped from, not as an error page.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import EXCLUDE, fields, validate
from sqlalchemy import select

from credits.auth.models import Role
from credits.auth.permissions import login_required, role_required
from credits.auth.services import require_own_organization
from credits.auth.throttle import count_claim
from credits.errors import DomainError
from credits.extensions import db
from credits.fields import Text
from credits.pagination import PageArgs, paginate
from credits.projects import services
from credits.projects.models import Claim, ClaimStatus, Project, ProjectStatus
from credits.projects.schemas import ProjectIn, ProjectPatchIn, PublishIn
from credits.settings.services import get_policy
from credits.timeutil import local_zone, utcnow
from credits.web.forms import form_view
from credits.web.views import local_next

bp = Blueprint("projects", __name__, template_folder="templates")

PROJECT_STATUS_LABELS = {"draft": _l("草稿"), "published": _l("已发布"), "closed": _l("已关闭"),
                         "cancelled": _l("已取消")}
PHASE_LABELS = {"draft": _l("草稿"), "upcoming": _l("即将开放"), "open": _l("认领中"), "full": _l("已满"),
                "ended": _l("已结束"), "closed": _l("已停止认领"), "cancelled": _l("已取消")}
CLAIM_STATUS_LABELS = {"confirmed": _l("已确认"), "waitlisted": _l("候补中"), "cancelled": _l("已取消"),
                       "no_show": _l("缺席")}
CATEGORY_SUGGESTIONS = (_l("健康服务"), _l("环境保护"), _l("文明实践"), _l("为老服务"), _l("便民服务"))


def phase(project: Project, now: datetime) -> str:
    """Where a project stands for someone looking at it: its status, refined by the clock and the counters."""
    if project.status in (ProjectStatus.DRAFT, ProjectStatus.CANCELLED):
        return project.status
    if now >= project.ends_at:
        return "ended"
    if project.status == ProjectStatus.CLOSED:
        return "closed"
    if project.publish_at is not None and project.publish_at > now:
        return "upcoming"
    if project.places_left <= 0 and project.waitlist_count >= project.waitlist_capacity:
        return "full"
    return "open"


@bp.app_template_filter("js_time")
def js_time(value: datetime) -> str:
    """An instant as JavaScript's Date.parse reads it (UTC, milliseconds)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


@bp.context_processor
def helpers() -> dict[str, Any]:
    return {"phase": phase, "phase_labels": PHASE_LABELS, "project_status_labels": PROJECT_STATUS_LABELS,
            "claim_status_labels": CLAIM_STATUS_LABELS, "runs_today": services.runs_today,
            "claim_cap_reached": claim_cap_reached}


def claim_cap_reached() -> int | None:
    """The signed-in volunteer's cap on confirmed claims when they have reached it (None otherwise): said beside
    the claim button before they tap, not only as a refusal after. Asked once a request."""
    if "claim_cap_reached" not in g:
        reached = None
        if current_user.is_authenticated and current_user.has_role(Role.VOLUNTEER):
            cap = get_policy()["max_active_claims"]
            reached = cap if services.active_claims(current_user, utcnow()) >= cap else None
        g.claim_cap_reached = reached
    return g.claim_cap_reached


def _when(value: datetime) -> str:
    return format_datetime(value, _("M月d日 EEE HH:mm"))


def _local_input(value: datetime | None) -> str:
    """The value a datetime-local input shows: the town's wall-clock time, to the minute."""
    return value.astimezone(local_zone()).strftime("%Y-%m-%dT%H:%M") if value else ""


def _act(action: Callable[[], Any], done: Callable[[Any], str], target: str):
    """Run one service action, commit, and go back to `target` with the outcome — or with the rule that
    refused it, as a flash rather than an error page."""
    try:
        result = action()
    except DomainError as exc:
        if exc.status != 409:
            raise
        db.session.rollback()
        flash(_refusal(exc), "error")
        return redirect(target)
    db.session.commit()
    flash(done(result), "success")
    return redirect(target)


def _refusal(exc: DomainError) -> str:
    """A refused claim or action in words a volunteer can act on."""
    if exc.code == "not_open" and exc.details.get("opens_at"):
        return _("还没到开放时间：%(time)s 开始认领，请到时再来。",
                 time=_when(datetime.fromisoformat(exc.details["opens_at"])))
    if exc.code == "suspended" and exc.details.get("until"):
        return _("因多次缺席，您的认领资格暂停至 %(time)s。", time=_when(datetime.fromisoformat(exc.details["until"])))
    if exc.code == "project_full":
        return _("来晚了一步：名额和候补都已满。看看其他项目吧。")
    if exc.code == "claim_limit":
        return _("认领已达上限。在“我的认领”取消不能去的项目后再来。")
    return str(exc.message)


# --- volunteers ----------------------------------------------------------------------------------------


class QueryArgs(PageArgs):
    """Query strings of pages people share and bookmark: unknown parameters (?lang=en, trackers) are ignored."""

    class Meta:
        unknown = EXCLUDE


class BrowseArgs(QueryArgs):
    category = Text(load_default="", validate=validate.Length(max=40))


class MyClaimsArgs(QueryArgs):
    status = fields.String(load_default="", validate=validate.OneOf(["", *ClaimStatus]))


def _live_claims(project_ids: list[int]) -> dict[int, Claim]:
    """The signed-in volunteer's live claim on each of these projects."""
    if not project_ids or not current_user.is_authenticated or not current_user.has_role(Role.VOLUNTEER):
        return {}
    claims = db.session.scalars(select(Claim).where(
        Claim.volunteer_id == current_user.id, Claim.project_id.in_(project_ids), Claim.status.in_(services.LIVE)))
    return {c.project_id: c for c in claims}


@bp.get("/projects")
def browse():
    """Projects open for claims now or soon, soonest first."""
    args = BrowseArgs().load(request.args)
    now = utcnow()
    current = services.visible_projects(current_user, status=ProjectStatus.PUBLISHED,
                                        category=args["category"] or None).where(Project.ends_at > now)
    page = paginate(current, args["page"], args["per_page"])
    categories = db.session.scalars(
        select(Project.category).where(Project.status == ProjectStatus.PUBLISHED, Project.ends_at > now)
        .distinct().order_by(Project.category)).all()
    mine = _live_claims([p.id for p in page["items"]])
    positions = {c.id: services.waitlist_position(c) for c in mine.values() if c.status == ClaimStatus.WAITLISTED}
    return render_template("projects/browse.html", page=page, now=now, category=args["category"],
                           categories=categories, mine=mine, positions=positions)


def _detail_context(project: Project) -> dict[str, Any]:
    mine = None
    if current_user.is_authenticated:
        mine = db.session.scalars(services.my_claims(current_user).where(Claim.project_id == project.id)
                                  .limit(1)).first()
    return {"project": project, "now": utcnow(), "mine": mine,
            "position": services.waitlist_position(mine) if mine else None,
            "manage": services.can_manage(project, current_user),
            "publish_default": _local_input(project.publish_at)}


@bp.get("/projects/<int:project_id>")
def detail(project_id: int):
    project = services.get_project(project_id, viewer=current_user)
    return render_template("projects/detail.html", errors={}, values={}, **_detail_context(project))


@bp.get("/projects/<int:project_id>/claim")
def claim_landing(project_id: int):
    """Where signing in sends someone who tapped 认领 while signed out: back to the project, to tap again."""
    return redirect(url_for(".detail", project_id=project_id))


@bp.post("/projects/<int:project_id>/claim")
@role_required(Role.VOLUNTEER)
def claim(project_id: int):
    """One tap: confirmed, or waitlisted with a position, shown at once on the project's page."""
    project = services.get_claimable(project_id)
    target = url_for(".detail" if project.status != ProjectStatus.DRAFT else ".browse", project_id=project_id)

    def outcome(new: Claim) -> str:
        if new.status == ClaimStatus.CONFIRMED:
            return _("认领成功！您已获得一个名额，请按时参加。")
        return _("名额已满，您在候补第 %(position)s 位，有人取消就按序递补。",
                 position=services.waitlist_position(new))

    return _act(lambda: services.claim_by_id(project_id, volunteer=current_user, count_attempt=count_claim),
                outcome, target)


@bp.get("/me/claims")
@role_required(Role.VOLUNTEER)
def my_claims():
    args = MyClaimsArgs().load(request.args)
    now = utcnow()
    page = paginate(services.my_claims(current_user, status=args["status"] or None, today_first=True, now=now),
                    args["page"], args["per_page"])
    positions = {c.id: services.waitlist_position(c) for c in page["items"] if c.status == ClaimStatus.WAITLISTED}
    return render_template("projects/my_claims.html", page=page, positions=positions, status=args["status"],
                           now=now)


@bp.post("/claims/<int:claim_id>/cancel")
@login_required
def cancel_claim(claim_id: int):
    claim = services.get_claim(claim_id, viewer=current_user)
    had_place = claim.status == ClaimStatus.CONFIRMED
    return _act(lambda: services.cancel_claim(claim, actor=current_user),
                lambda _claim: _("已取消认领，名额已让给下一位。") if had_place else _("已取消候补。"),
                local_next(url_for(".my_claims")))


# --- coordinators --------------------------------------------------------------------------------------


class DeskArgs(QueryArgs):
    status = fields.String(load_default="", validate=validate.OneOf(["", *ProjectStatus]))


class RosterArgs(QueryArgs):
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=100))


def _categories() -> list[str]:
    used = db.session.scalars(select(Project.category).distinct().order_by(Project.category).limit(50)).all()
    return list(dict.fromkeys([*map(str, CATEGORY_SUGGESTIONS), *used]))


@bp.get("/coordinate/projects")
@role_required(Role.COORDINATOR)
def desk():
    """The coordinator's own organisation's projects, every status: today's first, then latest first."""
    args = DeskArgs().load(request.args)
    now = utcnow()
    page = paginate(services.desk_projects(current_user, status=args["status"] or None, now=now), args["page"],
                    args["per_page"])
    return render_template("projects/desk.html", page=page, status=args["status"], now=now)


@bp.route("/coordinate/projects/new", methods=["GET", "POST"])
@role_required(Role.COORDINATOR)
def new_project():
    require_own_organization(current_user)  # what to ask the admin for, rather than a form that cannot be saved

    def create(data):
        project = services.create_project(data, actor=current_user)
        db.session.commit()
        flash(_("草稿已保存。检查无误后点“发布”，志愿者就能看到并认领。"), "success")
        return redirect(url_for(".detail", project_id=project.id))

    return form_view(ProjectIn(), "projects/form.html", create, project=None, initial={},
                     categories=_categories(), policy=get_policy())


@bp.route("/coordinate/projects/<int:project_id>/edit", methods=["GET", "POST"])
@role_required(Role.COORDINATOR)
def edit_project(project_id: int):
    project = services.get_project(project_id, viewer=current_user)
    services.require_manager(project, current_user)

    def save(changes):
        services.update_project(project, changes, actor=current_user)  # a field left blank asks for its default
        db.session.commit()
        flash(_("已保存。"), "success")
        return redirect(url_for(".detail", project_id=project.id))

    initial = {"title": project.title, "category": project.category, "description": project.description,
               "location": project.location, "starts_at": _local_input(project.starts_at),
               "ends_at": _local_input(project.ends_at), "publish_at": _local_input(project.publish_at),
               "capacity": project.capacity, "waitlist_capacity": project.waitlist_capacity,
               "block_minutes": project.block_minutes, "coins_per_block": project.coins_per_block}
    return form_view(ProjectPatchIn(partial=True), "projects/form.html", save, project=project, initial=initial,
                     categories=_categories(), policy=get_policy())


@bp.post("/coordinate/projects/<int:project_id>/publish")
@role_required(Role.COORDINATOR)
def publish_project(project_id: int):
    """Publish now, or at a set time (claims open then); a bad time re-renders the page with the error."""
    project = services.get_project(project_id, viewer=current_user)

    def publish(data):
        services.publish(project, actor=current_user, publish_at=data.get("publish_at"))
        db.session.commit()
        if project.publish_at > utcnow():
            flash(_("已发布，将于 %(time)s 开放认领。", time=_when(project.publish_at)), "success")
        else:
            flash(_("已发布，志愿者现在就可以认领。"), "success")
        return redirect(url_for(".detail", project_id=project.id))

    return form_view(PublishIn(), "projects/detail.html", publish, **_detail_context(project))


@bp.post("/coordinate/projects/<int:project_id>/close")
@role_required(Role.COORDINATOR)
def close_project(project_id: int):
    project = services.get_project(project_id, viewer=current_user)
    return _act(lambda: services.close(project, actor=current_user),
                lambda _p: _("已停止认领，已有的认领保持不变。"), url_for(".detail", project_id=project_id))


@bp.post("/coordinate/projects/<int:project_id>/cancel")
@role_required(Role.COORDINATOR)
def cancel_project(project_id: int):
    project = services.get_project(project_id, viewer=current_user)
    return _act(lambda: services.cancel_project(project, actor=current_user),
                lambda _p: _("项目已取消，所有认领随之取消。"), url_for(".detail", project_id=project_id))


def _roster_context(project_id: int) -> dict[str, Any]:
    project = services.get_project(project_id, viewer=current_user)
    args = RosterArgs().load(request.args)
    page = paginate(services.roster(project, actor=current_user), args["page"], args["per_page"])
    groups = [(status, list(rows)) for status, rows in itertools.groupby(page["items"], key=lambda c: c.status)]
    positions = {c.id: services.waitlist_position(c) for c in page["items"] if c.status == ClaimStatus.WAITLISTED}
    first = (args["page"] - 1) * args["per_page"]  # confirmed claims come first, so their rank is the row number
    ranks = {c.id: first + i + 1 for i, c in enumerate(page["items"]) if c.status == ClaimStatus.CONFIRMED}
    return {"project": project, "page": page, "groups": groups, "positions": positions, "ranks": ranks,
            "presence": services.presence(page["items"]), "now": utcnow()}


@bp.get("/coordinate/projects/<int:project_id>/roster")
@role_required(Role.COORDINATOR)
def roster(project_id: int):
    """Confirmed in order, the waitlist in order, then no-shows and cancellations, with who has checked in."""
    return render_template("projects/roster.html", **_roster_context(project_id))


@bp.get("/coordinate/projects/<int:project_id>/roster/live")
@role_required(Role.COORDINATOR)
def roster_live(project_id: int):
    """The roster page's feed (roster.js polls it): the same page of the roster, rendered, so new claims,
    check-ins and check-outs show without a reload."""
    context = _roster_context(project_id)
    p = context["project"]
    response = jsonify(html=render_template("projects/_roster_groups.html", **context),
                       confirmed=p.confirmed_count, waitlisted=p.waitlist_count)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/claims/<int:claim_id>/no-show")
@role_required(Role.COORDINATOR)
def mark_no_show(claim_id: int):
    claim = services.get_claim(claim_id, viewer=current_user)
    return _act(lambda: services.mark_no_show(claim, actor=current_user),
                lambda c: _("已将 %(name)s 标记为缺席。", name=c.volunteer.name),
                url_for(".roster", project_id=claim.project_id))
