"""What the posters and share cards say about a project or a merchant, and the absolute URLs they point to."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Response, current_app, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _

from credits.errors import Unavailable
from credits.merchants.models import Merchant
from credits.projects.models import Project, ProjectStatus
from credits.share import posters
from credits.timeutil import utcnow

log = logging.getLogger(__name__)

# A merchant poster lists this many services; the rest are counted.
SERVICES_SHOWN = 6


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute URL for people outside the site (QR codes, share cards): under PUBLIC_BASE_URL when it is set,
    since behind a proxy the request's own host may be an internal name; else the request's host."""
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    if base:
        return base + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def _when(value: datetime) -> str:
    return format_datetime(value, _("M月d日 EEE HH:mm"))


def project_period(project: Project) -> str:
    same_day = project.starts_at.date() == project.ends_at.date()
    end = format_datetime(project.ends_at, "HH:mm") if same_day else _when(project.ends_at)
    return f"{_when(project.starts_at)}–{end}"


def project_places(project: Project) -> str:
    return _("共 %(capacity)s 个，剩余 %(left)s 个", capacity=project.capacity, left=max(project.places_left, 0))


def project_opening(project: Project, now: datetime) -> str:
    if project.status == ProjectStatus.DRAFT or project.publish_at is None:
        return _("尚未发布")
    if project.publish_at <= now:
        return _("已开放认领")
    return _when(project.publish_at)


def project_description(project: Project) -> str:
    """The share card's one line: time, place, places left."""
    return _("%(time)s · %(place)s · %(places)s", time=project_period(project), place=project.location,
             places=project_places(project))


def project_poster(project: Project) -> posters.Poster:
    return posters.Poster(
        kind="project", heading=_("公益币 · 奉城镇党建+公益服务"), title=project.title,
        rows=((_("时间"), project_period(project)), (_("地点"), project.location),
              (_("名额"), project_places(project)), (_("开放认领"), project_opening(project, utcnow()))),
        url=public_url("projects.detail", project_id=project.id), qr_caption=_("扫码查看项目、认领名额"),
        stamp=_("已取消") if project.status == ProjectStatus.CANCELLED else "",
        footer=_("名额有限，先到先得"))


def merchant_services(merchant: Merchant) -> list[Any]:
    return [s for s in merchant.services if s.active]


def merchant_poster(merchant: Merchant) -> posters.Poster:
    services = merchant_services(merchant)
    more = len(services) - SERVICES_SHOWN
    return posters.Poster(
        kind="merchant", heading=_("公益币 · 奉城镇党建+公益服务"), lead=_("本店为商业街公益联盟商户"),
        title=merchant.name, rows=((_("地址"), merchant.address),),
        items=tuple((s.name, _("%(n)s 公益币", n=s.price)) for s in services[:SERVICES_SHOWN]),
        more=_("另有 %(n)s 项服务", n=more) if more > 0 else "",
        url=public_url("merchants.detail", merchant_id=merchant.id), qr_caption=_("扫码查看本店可兑换的服务"),
        footer=_("志愿服务攒公益币，到本店免费兑换"))


def checkin_sheet(project: Project) -> posters.Poster:
    return posters.Poster(
        kind="sheet", heading=_("现场签到"), title=project.title,
        rows=((_("时间"), project_period(project)), (_("地点"), project.location)),
        url=public_url("hours.checkin_page", project_id=project.id),
        qr_caption=_("志愿者扫码打开签到页，再输入协调员出示的 6 位签到码"),
        stamp=_("已取消") if project.status == ProjectStatus.CANCELLED else "",
        footer=_("签到码每分钟更换，请向现场协调员索取"))


def poster_response(poster: posters.Poster, filename: str, *, public: bool) -> Response:
    """The poster's PNG, cached on disk by its content; the hash is its ETag, so a phone that has it gets a 304."""
    try:
        font = posters.find_cjk_font(current_app.config.get("POSTER_FONT"))
    except posters.FontMissing as exc:  # the host's set-up, not the request: a 503 that says so in the log
        log.error("poster: %s", exc)
        raise Unavailable() from exc
    cache_dir = Path(current_app.config.get("POSTER_CACHE_DIR") or Path(current_app.instance_path) / "posters")
    data, digest = posters.png(poster, font, cache_dir)
    response = Response(data, mimetype="image/png")
    response.set_etag(digest)
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    # A draft's poster is for its coordinators only; a public one may be kept by shared caches, but checked again
    # (the places left change with every claim).
    response.headers["Cache-Control"] = "public, no-cache" if public else "private, no-cache"
    # Opened on its own, the browser shows the image in a page of its own making, styled inline: the site's
    # policy would block that styling, and an image needs nothing else.
    response.headers["Content-Security-Policy"] = ("default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
                                                   "frame-ancestors 'none'")
    return response.make_conditional(request)


def project_card(project: Project) -> dict[str, str]:
    image = (public_url("share.project_poster", project_id=project.id)
             if project.status != ProjectStatus.DRAFT else "")
    return {"title": project.title, "description": project_description(project),
            "url": public_url("projects.detail", project_id=project.id), "image": image}


def merchant_card(merchant: Merchant) -> dict[str, str]:
    names = "、".join(s.name for s in merchant_services(merchant)[:SERVICES_SHOWN])
    return {"title": _("%(name)s · 商业街公益联盟商户", name=merchant.name),
            "description": _("%(address)s。可用公益币兑换：%(services)s", address=merchant.address,
                             services=names or _("暂无")),
            "url": public_url("merchants.detail", merchant_id=merchant.id),
            "image": public_url("share.merchant_poster", merchant_id=merchant.id)}


def certificate_card(number: str) -> dict[str, str]:
    # Says nothing of whose certificate it is: a card may be seen by anyone in the chat.
    return {"title": _("志愿服务证明核验 %(number)s", number=number),
            "description": _("核验奉城镇公益币平台出具的志愿服务证明是否真实、有无撤销的时长。"),
            "url": public_url("hours.verify_certificate", number=number), "image": ""}
