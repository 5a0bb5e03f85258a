"""HTML pages for coordinators: the dashboard with its charts, the report tables with their exports, and the
printable quarterly summary.

The figures come from the same functions as the JSON API (credits.reports.services, and api.table_page_or_download
for the tables and their downloads), so a page, its export and the API cannot disagree.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request
from flask_babel import format_datetime
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import EXCLUDE, Schema, ValidationError

from credits.auth.models import Role
from credits.auth.permissions import role_required
from credits.errors import localize
from credits.pagination import paginate
from credits.reports import services
from credits.reports.api import (
    CODE_LABELS,
    DATETIME_COLUMNS,
    HOUR_COLUMNS,
    PARTICIPATION_ARGS,
    RATE_COLUMNS,
    column_label,
    table_page_or_download,
)
from credits.reports.schemas import PeriodArgs, QuarterArgs, table_args, today
from credits.reports.services import TABLES, Period
from credits.timeutil import hours_number

bp = Blueprint("reports", __name__, url_prefix="/reports", template_folder="templates")

TABLE_NAMES = ("projects", "organizations", "merchants", "volunteers", "records")
TABLE_TITLES = {"projects": _l("项目统计"), "organizations": _l("组织统计"), "merchants": _l("商户统计"),
                "volunteers": _l("志愿者统计"), "records": _l("服务记录"),
                "participation": _l("两新组织参与社区活动")}
# The names of query arguments, as an error message names them.
FIELD_LABELS = {"from": _l("开始日期"), "to": _l("结束日期"), "period": _l("时间段"), "sort": _l("排序"),
                "order": _l("顺序"), "page": _l("页码"), "per_page": _l("每页条数"), "format": _l("格式"),
                "year": _l("年份"), "q": _l("季度"), "_schema": _l("输入")}
PERIOD_LABELS = {"month": _l("本月"), "quarter": _l("本季度"), "year": _l("本年")}
# Left-aligned; every other column is a figure, right-aligned so digits line up.
TEXT_COLUMNS = frozenset({"title", "name", "organization", "category", "status", "kind", "volunteer", "project",
                          "source", "volunteer_no"}) | DATETIME_COLUMNS
# Built once: each call of table_args makes a new schema class.
TABLE_ARGS = {name: table_args(name) for name in TABLE_NAMES}
QUARTER_TOP = 10
QUARTER_TABLES = ("projects", "organizations", "merchants", "volunteers")


def hours(minutes: int) -> str:
    """A cell of a column headed in hours."""
    return hours_number(minutes)


def percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"


@bp.context_processor
def helpers() -> dict[str, Any]:
    return {"percent": percent, "table_names": TABLE_NAMES, "table_titles": TABLE_TITLES,
            "period_labels": PERIOD_LABELS, "column_label": column_label, "cell": _cell,
            "text_columns": TEXT_COLUMNS, "field_labels": FIELD_LABELS}


def _cell(name: str, key: str, value: Any) -> Any:
    """How one value of a table reads on the page (api.export_cell says the same to a download)."""
    if value is None:
        return "—"
    if key in DATETIME_COLUMNS:
        return format_datetime(value, "yyyy-MM-dd HH:mm")
    if key in HOUR_COLUMNS:
        return hours(value)
    if key in RATE_COLUMNS:
        return percent(value)
    labels = CODE_LABELS.get((name, key))
    if labels is not None:
        return labels.get(value, value)
    return value


def _query_args() -> dict[str, str]:
    """The query string without blank fields: an empty date box means "not given", not "invalid"."""
    return {key: value for key, value in request.args.items() if value != ""}


def _load(schema: Schema) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The parsed arguments, or the field errors to show on the page."""
    try:
        return schema.load(_query_args()), {}
    except ValidationError as exc:
        return None, localize(exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages})


def _period_query(period: Period) -> dict[str, str]:
    """What keeps the period in every link: its days, so a link means the same tomorrow."""
    return {"from": period.first.isoformat(), "to": period.last.isoformat()}


def _chooser(period: Period | None) -> dict[str, Any]:
    today_ = today()
    # A chip shows as chosen whenever the days match, however they were chosen.
    current = next((name for name in PERIOD_LABELS if Period.named(name, today_) == period), None)
    # The quarter of the period's last day, or of today while the period runs: 本年 in December is Q4, not Q1.
    anchor = min(period.last, today_) if period else today_
    return {"period": period, "current_period": current,
            "quarter_link": {"year": anchor.year, "q": (anchor.month - 1) // 3 + 1},
            "period_query": _period_query(period) if period else {}}


def _series_charts(series: dict[str, Any]) -> list[dict[str, Any]]:
    """What each chart draws, handed to reports.js through a data attribute (the CSP allows no inline script);
    the same numbers are printed in a table beside the chart."""
    labels = series["labels"]
    return [
        {"id": "hours", "type": "bar", "title": str(_l("核定时长（小时）")), "labels": labels,
         "datasets": [{"label": str(_l("小时")),
                       "data": [float(hours_number(m)) for m in series["approved_minutes"]]}]},
        {"id": "coins", "type": "line", "title": str(_l("公益币发放与兑换")), "labels": labels,
         "datasets": [{"label": str(_l("发放")), "data": series["coins_issued"]},
                      {"label": str(_l("兑换")), "data": series["coins_redeemed"]}]},
        {"id": "volunteers", "type": "bar", "title": str(_l("新注册志愿者")), "labels": labels,
         "datasets": [{"label": str(_l("人数")), "data": series["volunteers_registered"]}]},
    ]


@bp.get("/")
@role_required(Role.COORDINATOR)
def dashboard():
    """The figures of a period (this year unless chosen) with charts over time."""
    args, errors = _load(PeriodArgs(unknown=EXCLUDE))
    if errors:
        return render_template("reports/dashboard.html", errors=errors, values=request.args, figures=None,
                               charts=[], **_chooser(None)), 422
    figures = services.summary(args["period"])
    return render_template("reports/dashboard.html", errors={}, values=_period_query(args["period"]),
                           figures=figures, charts=_series_charts(figures["series"]), **_chooser(args["period"]))


@bp.get("/<any(projects, organizations, merchants, volunteers, records):name>")
@role_required(Role.COORDINATOR)
def table(name: str):
    """One page of a report table, sortable by its columns; format=csv|xlsx downloads every row."""
    args, errors = _load(TABLE_ARGS[name](unknown=EXCLUDE))
    spec = TABLES[name]
    if errors:
        return render_template("reports/table.html", name=name, errors=errors, values=request.args, page=None,
                               columns=[], **_chooser(None)), 422
    result = table_page_or_download(name, args)
    if isinstance(result, Response):
        return result
    sort = args.get("sort") or spec.default_sort
    order = args.get("order") or spec.default_order
    columns = list(spec.build(args["period"]).selected_columns.keys())  # noqa: SIM118 (a ColumnCollection)
    return render_template("reports/table.html", name=name, errors={}, values=_period_query(args["period"]),
                           page=result, columns=columns, sortable=spec.sortable, sort=sort, order=order,
                           per_page=args["per_page"], **_chooser(args["period"]))


@bp.get("/quarter")
@role_required(Role.COORDINATOR)
def quarter():
    """The quarter's figures and the top rows of each table, laid out to print."""
    args, errors = _load(QuarterArgs())
    if errors:
        return render_template("reports/quarter.html", errors=errors, figures=None, period=None), 422
    today_ = today()
    year, number = args.get("year", today_.year), args.get("q", (today_.month - 1) // 3 + 1)
    period = Period.quarter(year, number)
    tops = {}
    for name in QUARTER_TABLES:
        stmt = TABLES[name].query(period)
        tops[name] = {"page": paginate(stmt, 1, QUARTER_TOP, scalars=False),
                      "columns": list(stmt.selected_columns.keys())}  # noqa: SIM118 (a ColumnCollection)
    previous = (year, number - 1) if number > 1 else (year - 1, 4)
    following = (year, number + 1) if number < 4 else (year + 1, 1)
    return render_template("reports/quarter.html", errors={}, figures=services.summary(period), period=period,
                           year=year, q=number, tops=tops, previous=previous, following=following,
                           generated_on=today_, period_query=_period_query(period))


@bp.get("/participation")
@role_required(Role.COORDINATOR, Role.ADMIN)
def participation():
    """两新组织参与社区活动: per organisation, its members' participation in the period, laid out to print;
    format=csv|xlsx downloads it. Scoped as the API is (services.participation_scope)."""
    args, errors = _load(PARTICIPATION_ARGS(unknown=EXCLUDE))
    if errors:
        return render_template("reports/participation.html", errors=errors, values=request.args, page=None,
                               columns=[], **_chooser(None)), 422
    result = table_page_or_download("participation", args, **services.participation_scope(current_user))
    if isinstance(result, Response):
        return result
    columns = list(TABLES["participation"].build(args["period"]).selected_columns.keys())  # noqa: SIM118
    return render_template("reports/participation.html", errors={}, values=_period_query(args["period"]),
                           page=result, columns=columns, per_page=args["per_page"], generated_on=today(),
                           **_chooser(args["period"]))
