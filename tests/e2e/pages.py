"""The one list of the site's pages that the accessibility check opens, and the GET routes it leaves out and why.

test_a11y.py fails when a GET route of the app is in neither: a new page cannot be forgotten. Each page names who
opens it (a signed-in role, or "guest") and the arguments of its route, read from the tour's world.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Page:
    endpoint: str
    who: str  # "guest", "volunteer" (陈晨), "staff" (王店员), "coordinator" (李协调) or "admin"
    args: Callable[[Any], dict] = field(default=lambda world: {})
    query: dict = field(default_factory=dict)


PAGES = [
    Page("web.home", "guest"),
    Page("auth.login", "guest"),
    Page("auth.register", "guest"),
    Page("projects.browse", "guest"),
    Page("projects.detail", "guest", lambda w: {"project_id": w.health.id}),
    Page("merchants.browse", "guest"),
    Page("hours.verify_certificate", "guest", lambda w: {"number": w.certificate}),
    Page("merchants.detail", "guest", lambda w: {"merchant_id": w.shop.id}),
    Page("share.public", "guest"),
    Page("auth.password_reset", "guest"),
    Page("organizations.activate", "guest", lambda w: {"token": w.activation_token}),

    Page("web.home", "volunteer"),
    Page("projects.detail", "volunteer", lambda w: {"project_id": w.health.id}),
    Page("projects.my_claims", "volunteer"),
    Page("hours.checkin_page", "volunteer", lambda w: {"project_id": w.recycle.id}),
    Page("hours.manual_record", "volunteer", lambda w: {"claim_id": w.recycle_claim}),
    Page("hours.my_hours", "volunteer"),
    Page("hours.wallet", "volunteer"),
    Page("hours.certificates", "volunteer"),
    Page("hours.certificate", "volunteer", lambda w: {"number": w.certificate}),
    Page("merchants.browse", "volunteer"),
    Page("merchants.my_vouchers", "volunteer"),
    Page("merchants.voucher", "volunteer", lambda w: {"voucher_id": w.voucher}),
    Page("auth.account", "volunteer"),
    Page("auth.password", "volunteer"),
    Page("auth.change_phone", "volunteer"),
    Page("auth.join_organization", "volunteer"),
    Page("notifications.inbox", "volunteer"),
    Page("notifications.settings", "volunteer"),
    Page("organizations.invitations", "volunteer"),

    Page("merchants.shop", "staff"),
    Page("merchants.redeem_screen", "staff"),
    Page("merchants.shop_services", "staff"),

    Page("projects.desk", "coordinator"),
    Page("projects.new_project", "coordinator"),
    Page("projects.edit_project", "coordinator", lambda w: {"project_id": w.health.id}),
    Page("projects.roster", "coordinator", lambda w: {"project_id": w.health.id}),
    Page("hours.checkin_screen", "coordinator", lambda w: {"project_id": w.recycle.id}),
    Page("hours.review_queue", "coordinator"),
    Page("merchants.coordinate", "coordinator"),
    Page("merchants.coordinate_merchant", "coordinator", lambda w: {"merchant_id": w.shop.id}),
    Page("reviews.reviews", "coordinator"),
    Page("reviews.review", "coordinator", lambda w: {"review_id": w.review}),
    Page("reviews.ranking", "coordinator", lambda w: {"review_id": w.review}),
    Page("reports.dashboard", "coordinator"),
    *(Page("reports.table", "coordinator", lambda w, name=name: {"name": name})
      for name in ("projects", "organizations", "merchants", "volunteers", "records")),
    Page("reports.quarter", "coordinator", lambda w: {"year": w.quarter[0], "q": w.quarter[1]}),
    Page("auth.join_requests", "coordinator", lambda w: {"org_id": w.coordinator.organization_id}),
    Page("organizations.import_page", "coordinator", lambda w: {"org_id": w.coordinator.organization_id}),
    Page("organizations.import_preview", "coordinator",
         lambda w: {"org_id": w.coordinator.organization_id, "import_id": w.roster_import}),
    Page("auth.organization_members", "coordinator", lambda w: {"org_id": w.coordinator.organization_id}),
    Page("reports.participation", "coordinator"),

    Page("admin.users", "admin"),
    Page("admin.user_new", "admin"),
    Page("admin.user_edit", "admin", lambda w: {"user_id": w.chen.id}),
    Page("admin.organizations", "admin"),
    Page("admin.organization_edit", "admin", lambda w: {"org_id": w.coordinator.organization_id}),
    Page("admin.policy", "admin"),
    Page("admin.audit", "admin"),
    Page("notifications.admin_deliveries", "admin"),
    Page("admin.issuance_report", "admin"),
    Page("merchants.admin_merchants", "admin"),
    Page("merchants.settle", "admin", lambda w: {"merchant_id": w.shop.id}),
]

# GET routes that are not pages a person reads, each with its reason. Everything under /api/ is JSON (the fuzz
# suite checks it against the OpenAPI document), as is /api/docs (Swagger UI's own page, for developers).
EXCLUDED = {
    "static": "files: the CSS and scripts the pages use",
    "web.set_language": "redirects back to the page it was tapped on",
    "projects.claim_landing": "redirects to the project's page (checked)",
    "web.healthz": "JSON for the load balancer",
    "share.project_poster": "a PNG image to post in chat groups",
    "share.merchant_poster": "a PNG image for the shop's counter",
    "share.checkin_sheet": "a PNG image to print",
    "calendar.feed": "iCalendar text for phone calendars",
    "projects.roster_live": "JSON the roster polls",
    "observability.livez": "plain text for the process supervisor",
    "observability.metrics": "Prometheus text for the scraper",
    "hours.checkin_code": "JSON the check-in screen polls",
    "merchants.voucher_status": "JSON the voucher page polls",
    "merchants.statement_csv": "a CSV download",
    "reviews.ranking_download": "a CSV/XLSX download",
    "organizations.import_template": "an XLSX download (the empty roster template)",
    "organizations.my_import": "redirects to the coordinator's organisation's import page",
}
