"""HTML pages for projects and claims."""

from flask import Blueprint

bp = Blueprint("projects", __name__, template_folder="templates")
