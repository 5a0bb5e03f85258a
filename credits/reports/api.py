"""JSON API for reports: the dashboard's figures and the tables, as JSON pages or CSV/XLSX downloads."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_smorest import Blueprint

from credits.auth.models import Role
from credits.auth.permissions import BEARER, role_required
from credits.extensions import db
from credits.hours.views import RECORD_STATUS_LABELS, SOURCE_LABELS
from credits.merchants.views import CATEGORY_LABELS
from credits.pagination import page_schema, paginate
from credits.projects.views import PHASE_LABELS, PROJECT_STATUS_LABELS
from credits.reports import services
from credits.reports.exports import Hours, Percent, export_response
from credits.reports.schemas import ROWS, ParticipationRowOut, PeriodArgs, SummaryOut, table_args
from credits.web.views import ORG_KIND_LABELS

blp = Blueprint("reports_api", __name__, description="Figures, tables and exports for coordinators")
DOWNLOADS = {"text/csv": {"schema": {"type": "string"}},
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
                 {"schema": {"type": "string", "format": "binary"}}}


@blp.get("/reports/summary")
@role_required(Role.COORDINATOR)
@blp.arguments(PeriodArgs, location="query")
@blp.response(200, SummaryOut)
@blp.doc(security=BEARER)
def report_summary(args):
    """The dashboard's figures for a period (`from`/`to`, or `period=month|quarter|year`; default this year)."""
    return services.summary(args["period"])

COLUMN_LABELS = {
    "id": _l("编号"), "title": _l("项目"), "organization": _l("组织"), "category": _l("类别"),
    "starts_at": _l("开始时间"), "ended_at": _l("结束时间"), "started_at": _l("开始时间"), "status": _l("状态"),
    "capacity": _l("名额"), "confirmed": _l("已认领"), "fill_rate": _l("认领率"), "volunteers": _l("服务人数"),
    "approved_minutes": _l("已核定分钟"), "no_shows": _l("爽约"), "name": _l("名称"), "kind": _l("类型"),
    "members": _l("成员"), "projects": _l("项目数"), "services": _l("服务项目"), "vouchers_issued": _l("领取券数"),
    "vouchers_redeemed": _l("核销券数"), "coins_redeemed": _l("核销公益币"), "vouchers_outstanding": _l("未使用券数"),
    "volunteer_no": _l("志愿者编号"), "volunteer": _l("志愿者"), "project": _l("项目"), "records": _l("记录数"),
    "lifetime_minutes": _l("累计分钟"), "balance": _l("余额"), "minutes": _l("分钟"), "source": _l("来源"),
    "reviewed_at": _l("审核时间"), "party_members": _l("党员"), "activated": _l("已激活"),
    "served": _l("参与服务人数"), "participation_rate": _l("参与率"), "coins_earned": _l("获得公益币"),
}

# Which codes a column holds, and the labels the other pages already give them (in the reader's language).
CODE_LABELS = {("projects", "status"): {**PROJECT_STATUS_LABELS, "ended": PHASE_LABELS["ended"]},
               ("organizations", "kind"): ORG_KIND_LABELS, ("participation", "kind"): ORG_KIND_LABELS,
               ("merchants", "category"): CATEGORY_LABELS, ("records", "status"): RECORD_STATUS_LABELS,
               ("records", "source"): SOURCE_LABELS}
# Minutes are stored; pages and downloads speak hours.
HOUR_COLUMNS = {"approved_minutes": _l("已核定时长（小时）"), "lifetime_minutes": _l("累计时长（小时）"),
                "minutes": _l("时长（小时）")}
DATETIME_COLUMNS = frozenset({"starts_at", "started_at", "ended_at", "reviewed_at"})
RATE_COLUMNS = frozenset({"fill_rate", "participation_rate"})


def column_label(key: str) -> str:
    return str(HOUR_COLUMNS.get(key) or COLUMN_LABELS[key])


def export_cell(name: str, key: str, value: Any) -> Any:
    """One value of a table as a download gives it: what the page shows, in the reader's language."""
    if value is None:
        return None
    if key in HOUR_COLUMNS:
        return Hours(value)
    if key in RATE_COLUMNS:
        return Percent(value)
    labels = CODE_LABELS.get((name, key))
    if labels is not None:
        return str(labels[value]) if value in labels else value
    return value


def table_page_or_download(name: str, args: dict[str, Any], **options) -> dict[str, Any] | Response:
    """One page of a report table, or all of it as a download: the same query either way; `options` choose
    the rows the reader may see (TableSpec.query)."""
    period, spec = args["period"], services.TABLES[name]
    stmt = spec.query(period, args.get("sort"), args.get("order"), **options)
    count = spec.rows(period, **options) if spec.rows else None
    if args.get("format", "json") == "json":
        return paginate(stmt, args["page"], args["per_page"], scalars=False, count=count)
    keys = list(stmt.selected_columns.keys())  # noqa: SIM118 (a ColumnCollection)

    def rows():
        for row in db.session.execute(stmt.execution_options(yield_per=2000)):
            yield [export_cell(name, key, value) for key, value in zip(keys, row, strict=True)]

    return export_response(f"{name}-{period.first}-{period.last}", [column_label(key) for key in keys], rows,
                           args["format"])


def _register_table(name: str) -> None:
    """One route per table, so each has its own row schema and sort columns in the OpenAPI document."""

    @blp.route(f"/reports/{name}", methods=["GET"], endpoint=f"report_{name}")
    @role_required(Role.COORDINATOR)
    @blp.arguments(table_args(name), location="query")
    @blp.response(200, page_schema(ROWS[name]))
    @blp.doc(security=BEARER, summary=f"The {name} table for a period",
             description="`format=json` (default) is one page; `csv` and `xlsx` download every row.",
             responses={"200": {"description": "One page, or every row as a download", "content": {
                 "application/json": {"schema": {"$ref": f"#/components/schemas/{page_schema(ROWS[name]).__name__}"}},
                 **DOWNLOADS}}})
    def table(args):
        return table_page_or_download(name, args)


for _name in ROWS:
    _register_table(_name)


PARTICIPATION_ARGS = table_args("participation")


@blp.get("/reports/participation")
@role_required(Role.COORDINATOR, Role.ADMIN)
@blp.arguments(PARTICIPATION_ARGS, location="query")
@blp.response(200, page_schema(ParticipationRowOut))
@blp.doc(security=BEARER, description=(
    "两新组织参与社区活动 (SPEC 2.8), per organisation for the period: current members (membership today), party "
    "members, activated members, members who served (approved hours in the period), participation rate "
    "(served / members), approved minutes, projects served in, coins earned (issued less clawed back) and coins "
    "redeemed by its members. Coordinators of a government organisation and admins see every organisation, "
    "other coordinators their own. `format=csv|xlsx` downloads every row."),
    responses={"200": {"description": "One page, or every row as a download", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/ParticipationRowPage"}}, **DOWNLOADS}}})
def report_participation(args):
    return table_page_or_download("participation", args, **services.participation_scope(current_user))
