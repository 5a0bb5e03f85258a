"""Pages and downloads for sharing: posters for anyone (a draft's only for its coordinators), the printable
check-in sheet for a project's coordinators, and the public 公示 page. A merchant's own page, which its counter
poster's QR opens, is merchants.detail."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from credits.auth.models import Role
from credits.auth.permissions import role_required
from credits.errors import NotFound
from credits.extensions import db, limiter
from credits.merchants.models import Merchant
from credits.projects.models import ProjectStatus
from credits.projects.services import get_project, require_manager
from credits.share import content, services
from credits.timeutil import hours_number

bp = Blueprint("share", __name__, template_folder="templates")


@bp.app_context_processor
def cards() -> dict[str, Any]:
    return {"project_card": content.project_card, "merchant_card": content.merchant_card,
            "certificate_card": content.certificate_card, "public_url": content.public_url}


def poster_limit() -> str:
    return current_app.config["POSTER_RATE_LIMIT"]


def public_merchant(merchant_id: int) -> Merchant:
    merchant = db.session.get(Merchant, merchant_id)
    if merchant is None or not merchant.active:
        raise NotFound(what="merchant")
    return merchant


def project_poster_png(project_id: int, viewer: Any):
    """Drafts only to the organiser's coordinators (a 404 for anyone else, as the project itself)."""
    project = get_project(project_id, viewer=viewer)
    return content.poster_response(content.project_poster(project), f"project-{project.id}.png",
                                   public=project.status != ProjectStatus.DRAFT)


def merchant_poster_png(merchant_id: int):
    merchant = public_merchant(merchant_id)
    return content.poster_response(content.merchant_poster(merchant), f"merchant-{merchant.id}.png", public=True)


@bp.get("/projects/<int:project_id>/poster.png")
@limiter.shared_limit(poster_limit, scope="poster")
def project_poster(project_id: int):
    return project_poster_png(project_id, current_user)


@bp.get("/merchants/<int:merchant_id>/poster.png")
@limiter.shared_limit(poster_limit, scope="poster")
def merchant_poster(merchant_id: int):
    return merchant_poster_png(merchant_id)


@bp.get("/coordinate/projects/<int:project_id>/checkin-sheet.png")
@role_required(Role.COORDINATOR)
@limiter.shared_limit(poster_limit, scope="poster")
def checkin_sheet(project_id: int):
    """The A4 sheet for places with no screen: a static QR to the check-in page (the code is still asked there)."""
    project = get_project(project_id, viewer=current_user)
    require_manager(project, current_user)
    return content.poster_response(content.checkin_sheet(project), f"checkin-{project.id}.png", public=False)


@bp.get("/public")
def public():
    """公示: the scheme's running totals for anyone, no sign-in."""
    summary = services.cached_summary()
    series = summary["series"]
    chart = {"id": "coins", "type": "bar", "labels": series["labels"],
             "datasets": [{"label": str(_l("发放")), "data": series["issued"]},
                          {"label": str(_l("兑换")), "data": series["redeemed"]}]}
    return render_template("share/public.html", summary=summary, chart=chart, hours=hours_number)
