"""JSON API of SPEC 2.9: the posters and the 公示 figures (SPEC 3.2)."""

from __future__ import annotations

from flask_login import current_user
from flask_smorest import Blueprint

from credits.extensions import limiter
from credits.share import services, views
from credits.share.schemas import PublicSummaryOut

blp = Blueprint("share_api", __name__, description="Share posters and the public 公示 figures")

PNG = {"200": {"description": "The poster, 1080 px wide", "content": {
    "image/png": {"schema": {"type": "string", "format": "binary"}}}},
    "304": {"description": "Not modified: the poster the client holds (If-None-Match) is current"}}


@blp.route("/projects/<int:project_id>/poster.png", methods=["GET"])
@limiter.shared_limit(views.poster_limit, scope="poster")
@blp.doc(summary="A project's share poster", responses=PNG,
         description="Drafts are not found except by the organiser's coordinators; cancelled projects are marked.")
def project_poster(project_id):
    return views.project_poster_png(project_id, current_user)


@blp.route("/merchants/<int:merchant_id>/poster.png", methods=["GET"])
@limiter.shared_limit(views.poster_limit, scope="poster")
@blp.doc(summary="A merchant's counter poster", responses=PNG)
def merchant_poster(merchant_id):
    return views.merchant_poster_png(merchant_id)


@blp.get("/public/summary")
@blp.response(200, PublicSummaryOut)
def public_summary():
    """The 公示 figures: this year and all time, merchants, published review results. Cached a minute."""
    return services.cached_summary()
