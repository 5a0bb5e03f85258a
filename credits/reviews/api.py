"""JSON API for the annual review: open, pick candidates, invite reviewers, score, close, rank and export."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest import Blueprint

from credits.auth.models import Role, User
from credits.auth.permissions import BEARER, role_required
from credits.errors import NotFound
from credits.extensions import db
from credits.pagination import PageArgs, page_schema, paginate
from credits.projects.models import Project
from credits.reports.exports import Hours, Percent, export_response
from credits.reviews import services
from credits.reviews.models import Review
from credits.reviews.schemas import (
    ReviewCandidatesIn,
    ReviewDetailOut,
    ReviewersIn,
    ReviewIn,
    ReviewOut,
    ReviewRankingArgs,
    ReviewRankingOut,
    ReviewScoreIn,
    ReviewScoreOut,
)

blp = Blueprint("reviews_api", __name__, description="The annual review of projects (优秀服务项目评审)")


def detail(review: Review, viewer: User) -> dict:
    """The review with its candidates' figures, reviewers and the viewer's own scores."""
    mine = services.scores_by(review, viewer)
    return {**{name: getattr(review, name) for name in ReviewOut().fields},
            "candidates": [{"project": row.project, "figures": row.figures, "scores": row.scores,
                            "my_score": mine.get(row.project.id)}
                           for row in sorted(services.ranking(review), key=lambda row: row.project.id)],
            "reviewers": services.review_reviewers(review),
            "is_reviewer": services.is_reviewer(review, viewer)}


def export_headers() -> list[str]:
    return [_("排名"), _("项目"), _("组织"), _("开始时间"), _("平均分"), _("评分人数"), _("核定时长（小时）"),
            _("志愿者人数"), _("名额"), _("已确认"), _("满员率"), _("缺席人次"), _("评语")]


def export_rows(rows: list[services.RankingRow]):
    for row in rows:
        figures = row.figures
        yield [row.rank, row.project.title, row.project.organization.name, row.project.starts_at, row.mean_score,
               row.scores, Hours(figures.approved_minutes), figures.volunteers, figures.capacity,
               figures.confirmed, Percent(figures.fill_rate), figures.no_shows,
               "；".join(f"{r.reviewer}（{r.score}）：{r.comment}" if r.comment else f"{r.reviewer}（{r.score}）"
                        for r in row.remarks)]


def ranking_export(review: Review, rows: list[services.RankingRow], fmt: str):
    # A ranking is a few dozen rows: made into plain values now, while the request's session still holds them.
    table = list(export_rows(rows))
    name = _("评审排名")
    return export_response(f"{name}-{review.year}-{review.id}", export_headers(), lambda: table, fmt)


@blp.post("/reviews")
@role_required(Role.COORDINATOR)
@blp.arguments(ReviewIn)
@blp.response(201, ReviewOut)
@blp.doc(security=BEARER)
def open_review(data):
    """Open a review for a year."""
    review = services.open_review(data["year"], data["title"], by=current_user)
    db.session.commit()
    return review


@blp.get("/reviews")
@role_required(Role.COORDINATOR, Role.ADMIN)
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(ReviewOut))
@blp.doc(security=BEARER)
def list_reviews(args):
    return paginate(services.all_reviews(), args["page"], args["per_page"])


@blp.get("/reviews/<int:review_id>")
@role_required(Role.COORDINATOR, Role.ADMIN)
@blp.response(200, ReviewDetailOut)
@blp.doc(security=BEARER)
def get_review(review_id):
    return detail(services.get_review(review_id, viewer=current_user), current_user)


@blp.post("/reviews/<int:review_id>/candidates")
@role_required(Role.COORDINATOR, Role.ADMIN)
@blp.arguments(ReviewCandidatesIn)
@blp.response(200, ReviewDetailOut)
@blp.doc(security=BEARER)
def add_candidates(data, review_id):
    """Add projects that started in the review's year (not draft or cancelled); already added ones are kept."""
    review = services.get_review(review_id, viewer=current_user)
    services.add_candidates(review, data["project_ids"], actor=current_user)
    db.session.commit()
    return detail(review, current_user)


@blp.delete("/reviews/<int:review_id>/candidates/<int:project_id>")
@role_required(Role.COORDINATOR, Role.ADMIN)
@blp.response(204)
@blp.doc(security=BEARER)
def remove_candidate(review_id, project_id):
    """Take a project off the list, with its scores."""
    services.remove_candidate(services.get_review(review_id, viewer=current_user), project_id, actor=current_user)
    db.session.commit()


@blp.post("/reviews/<int:review_id>/reviewers")
@role_required(Role.COORDINATOR, Role.ADMIN)
@blp.arguments(ReviewersIn)
@blp.response(200, ReviewDetailOut)
@blp.doc(security=BEARER)
def invite_reviewers(data, review_id):
    """Invite coordinators to score; already invited ones are kept."""
    review = services.get_review(review_id, viewer=current_user)
    services.invite_reviewers(review, data["user_ids"], actor=current_user)
    db.session.commit()
    return detail(review, current_user)


@blp.put("/reviews/<int:review_id>/scores/<int:project_id>")
@role_required(Role.COORDINATOR)
@blp.arguments(ReviewScoreIn)
@blp.response(200, ReviewScoreOut)
@blp.doc(security=BEARER)
def score(data, review_id, project_id):
    """An invited reviewer's score (0–100) and comment for a candidate; scoring again replaces it."""
    review = services.get_review(review_id, viewer=current_user)
    project = db.session.get(Project, project_id)
    if project is None:
        raise NotFound(what="project")
    result = services.score(review, project, data["score"], data["comment"], reviewer=current_user)
    db.session.commit()
    return result


@blp.post("/reviews/<int:review_id>/close")
@role_required(Role.COORDINATOR, Role.ADMIN)
@blp.response(200, ReviewOut)
@blp.doc(security=BEARER)
def close_review(review_id):
    review = services.close_review(services.get_review(review_id, viewer=current_user), actor=current_user)
    db.session.commit()
    return review


@blp.get("/reviews/<int:review_id>/ranking")
@role_required(Role.COORDINATOR, Role.ADMIN)
@blp.arguments(ReviewRankingArgs, location="query")
@blp.response(200, ReviewRankingOut)
@blp.doc(security=BEARER)
def ranking(args, review_id):
    """Candidates by mean score, then approved hours; unscored ones last. `format=csv|xlsx` downloads every row."""
    review = services.get_review(review_id, viewer=current_user)
    rows = services.ranking(review)
    if args["format"] != "json":
        return ranking_export(review, rows, args["format"])
    first = (args["page"] - 1) * args["per_page"]
    return {"review": review, "items": rows[first:first + args["per_page"]], "page": args["page"],
            "per_page": args["per_page"], "total": len(rows)}
