"""Home page, language switch, health check and the API reader."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from credits.database import rollback
from credits.extensions import db
from credits.ledger.services import find_user_account, wallet_figures
from credits.projects import services as projects
from credits.timeutil import utcnow

bp = Blueprint("web", __name__)


# Projects listed on the home page; the rest are a tap away on /projects.
HOME_PROJECTS = 5


@bp.get("/")
def home():
    """What a volunteer opens the site for: their coins, their next project and what opens soon; for everyone
    else, the projects open now."""
    now = utcnow()
    context = {"now": now, "open_now": projects.open_now(now, HOME_PROJECTS),
               "opening_soon": projects.opening_soon(now, HOME_PROJECTS), "balance": None, "next_claim": None}
    if current_user.is_authenticated and current_user.has_role("volunteer"):
        context["balance"] = wallet_figures(find_user_account(current_user.id))["balance"]
        context["next_claim"] = projects.next_confirmed(current_user, now)
    return render_template("web/home.html", **context)


@bp.get("/lang/<code>")
def set_language(code: str):
    if code in ("zh_CN", "en"):
        session["lang"] = code
        if current_user.is_authenticated and current_user.locale != code:
            current_user.locale = code  # their SMS are written in the language they chose to read the site in
            db.session.commit()
    return redirect(local_next(url_for("web.home")))


def local_next(default: str) -> str:
    """The `next` parameter if it is a path on this site, else `default`: never an open redirect."""
    target = request.args.get("next", "")
    # isprintable: browsers drop tabs and newlines inside a URL, so "/\t/evil.example" means "//evil.example".
    local = (target.startswith("/") and not target.startswith("//") and "\\" not in target
             and target.isprintable())
    return target if local else default


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except DBAPIError:
        rollback()
        return jsonify(status="unavailable", error={"code": "unavailable",
                                                    "message": "database does not answer"}), 503
    return jsonify(status="ok")


@bp.get("/api/docs")
def api_docs():
    return render_template("web/api_docs.html")


ROLE_LABELS = {"volunteer": _l("志愿者"), "coordinator": _l("协调员"), "merchant": _l("商户店员"),
               "admin": _l("管理员")}
ORG_KIND_LABELS = {"government": _l("党政机关"), "enterprise": _l("非公企业"), "social": _l("社会组织")}


@bp.app_context_processor
def labels():
    return {"role_label": lambda role: ROLE_LABELS.get(role, role),
            "org_kind_label": lambda kind: ORG_KIND_LABELS.get(kind, kind),
            "role_labels": ROLE_LABELS, "org_kind_labels": ORG_KIND_LABELS, "lang": str(get_locale())}


@bp.app_context_processor
def form_to_restore():
    """True on the page a refused form was posted from (errors.keep_form_for): app.js puts back what was typed."""
    restore = session.get("restore_form") == request.path
    if restore:
        session.pop("restore_form")
    return {"restore_form": restore}
