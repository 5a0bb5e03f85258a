"""HTML pages for the annual review: the list and the form to open one, a review's candidates, reviewers and score
forms beside each project's figures, and the ranking with its CSV and XLSX downloads.

Every page calls the same service functions as the JSON API (credits.reviews.api), so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import EXCLUDE

from credits.auth.models import Role
from credits.auth.permissions import role_required
from credits.errors import DomainError, NotFound
from credits.extensions import db
from credits.pagination import PageArgs, paginate
from credits.projects.models import Project
from credits.reports.exports import FORMATS
from credits.reviews import services
from credits.reviews.api import ranking_export
from credits.reviews.models import Review, ReviewStatus
from credits.reviews.schemas import ReviewCandidatesIn, ReviewersIn, ReviewIn, ReviewScoreIn
from credits.timeutil import local_zone, utcnow
from credits.web.forms import form_view

bp = Blueprint("reviews", __name__, template_folder="templates")


@bp.route("/coordinate/reviews", methods=["GET", "POST"])
@role_required(Role.COORDINATOR, Role.ADMIN)
def reviews():
    """Every review, and the form to open one (this year by default)."""
    def create(data):
        review = services.open_review(data["year"], data["title"], by=current_user)
        db.session.commit()
        flash(_("已开启评审：%(title)s。下一步：添加候选项目，邀请评审人。", title=review.title), "success")
        return redirect(url_for(".review", review_id=review.id))

    args = PageArgs(unknown=EXCLUDE).load(request.args)
    this_year = utcnow().astimezone(local_zone()).year
    return form_view(ReviewIn(), "reviews/list.html", create,
                     page=paginate(services.all_reviews(), args["page"], args["per_page"]),
                     defaults={"year": str(this_year), "title": _("%(year)s年度优秀服务项目评审", year=this_year)})


def _review_context(review: Review) -> dict[str, Any]:
    is_open = review.status == ReviewStatus.OPEN
    return {"review": review, "is_open": is_open, "can_manage": services.can_manage(review, current_user),
            "rows": sorted(services.ranking(review), key=lambda row: row.project.id),
            "mine": services.scores_by(review, current_user),
            "is_reviewer": services.is_reviewer(review, current_user),
            "reviewers": services.review_reviewers(review),
            "addable": services.addable_projects(review) if is_open else [],
            "invitable": services.invitable_coordinators(review) if is_open else []}


@bp.get("/coordinate/reviews/<int:review_id>")
@role_required(Role.COORDINATOR, Role.ADMIN)
def review(review_id: int):
    review = services.get_review(review_id, viewer=current_user)
    return render_template("reviews/review.html", errors={}, values={}, form=None, **_review_context(review))


@bp.post("/coordinate/reviews/<int:review_id>/candidates")
@role_required(Role.COORDINATOR, Role.ADMIN)
def add_candidates(review_id: int):
    review = services.get_review(review_id, viewer=current_user)

    def add(data):
        added = services.add_candidates(review, data["project_ids"], actor=current_user)
        db.session.commit()
        flash(_("已添加 %(n)s 个候选项目。", n=len(added)), "success")
        return redirect(url_for(".review", review_id=review.id))

    return form_view(ReviewCandidatesIn(), "reviews/review.html", add, form="candidates", **_review_context(review))


@bp.post("/coordinate/reviews/<int:review_id>/reviewers")
@role_required(Role.COORDINATOR, Role.ADMIN)
def invite_reviewers(review_id: int):
    review = services.get_review(review_id, viewer=current_user)

    def invite(data):
        invited = services.invite_reviewers(review, data["user_ids"], actor=current_user)
        db.session.commit()
        flash(_("已邀请 %(n)s 位评审人。", n=len(invited)), "success")
        return redirect(url_for(".review", review_id=review.id))

    return form_view(ReviewersIn(), "reviews/review.html", invite, form="reviewers", **_review_context(review))


@bp.post("/coordinate/reviews/<int:review_id>/scores/<int:project_id>")
@role_required(Role.COORDINATOR)
def score(review_id: int, project_id: int):
    review = services.get_review(review_id, viewer=current_user)
    project = db.session.get(Project, project_id)
    if project is None:
        raise NotFound(what="project")

    def save(data):
        services.score(review, project, data["score"], data["comment"], reviewer=current_user)
        db.session.commit()
        flash(_("已保存对“%(title)s”的评分：%(score)s 分。", title=project.title, score=data["score"]), "success")
        return redirect(url_for(".review", review_id=review.id, _anchor=f"p{project.id}"))

    return form_view(ReviewScoreIn(), "reviews/review.html", save, form=f"score-{project.id}",
                     **_review_context(review))


def _act(review_id: int, action, done: str):
    """A button with no input: do it, or show why not (409) on the review page."""
    review = services.get_review(review_id, viewer=current_user)
    try:
        action(review)
        db.session.commit()
        flash(done, "success")
    except DomainError as exc:
        if exc.status not in (404, 409):
            raise
        db.session.rollback()
        flash(str(exc.message), "error")
    return redirect(url_for(".review", review_id=review_id))


@bp.post("/coordinate/reviews/<int:review_id>/candidates/<int:project_id>/remove")
@role_required(Role.COORDINATOR, Role.ADMIN)
def remove_candidate(review_id: int, project_id: int):
    return _act(review_id, lambda review: services.remove_candidate(review, project_id, actor=current_user),
                _("已移除该候选项目及其评分。"))


@bp.post("/coordinate/reviews/<int:review_id>/close")
@role_required(Role.COORDINATOR, Role.ADMIN)
def close_review(review_id: int):
    return _act(review_id, lambda review: services.close_review(review, actor=current_user),
                _("评审已结束，评分不再修改。"))


@bp.get("/coordinate/reviews/<int:review_id>/ranking")
@role_required(Role.COORDINATOR)
def ranking(review_id: int):
    review = services.get_review(review_id, viewer=current_user)
    return render_template("reviews/ranking.html", review=review, rows=services.ranking(review),
                           reviewers=len(services.review_reviewers(review)))


@bp.get("/coordinate/reviews/<int:review_id>/ranking.<fmt>")
@role_required(Role.COORDINATOR)
def ranking_download(review_id: int, fmt: str):
    if fmt not in FORMATS:
        abort(404)
    review = services.get_review(review_id, viewer=current_user)
    return ranking_export(review, services.ranking(review), fmt)
