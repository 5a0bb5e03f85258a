"""HTML pages for check-in, hours, review, wallet and certificates."""

from flask import Blueprint

bp = Blueprint("hours", __name__, template_folder="templates")


@bp.get("/certificates/<number>")
def verify_certificate(number: str):
    raise NotImplementedError
