"""HTML pages for merchants, vouchers and redemption."""

from flask import Blueprint

bp = Blueprint("merchants", __name__, template_folder="templates")
