"""Each volunteer's private calendar feed (SPEC 2.7): their confirmed claims as iCalendar, which phone calendars
subscribe to, with reminders (VALARM) 24 h and 2 h before, as the SMS reminders. Built with the `icalendar`
library. The feed's URL carries a secret token; only its SHA-256 is stored (users.calendar_token_hash), so the URL
is shown once, when made. Making a new one, or revoking, ends the old URL (404)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask_babel import force_locale
from flask_babel import gettext as _
from icalendar import Alarm, Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from credits.auth.audit import record_event
from credits.auth.models import User
from credits.auth.services import token_hash
from credits.errors import NotFound
from credits.extensions import db
from credits.projects.models import Claim, ClaimStatus, Project, ProjectStatus
from credits.timeutil import utcnow

ALARMS = (timedelta(hours=24), timedelta(hours=2))
PAST = timedelta(days=30)  # how far back the feed keeps projects, so that it stays small


def new_token(*, actor: User) -> str:
    """A new secret token for the actor's feed, replacing any earlier one. Returned once; flushed."""
    token = secrets.token_urlsafe(24)
    actor.calendar_token_hash = token_hash(token)
    db.session.flush()
    record_event("calendar.token_create", actor, actor=actor)
    return token


def revoke_token(*, actor: User) -> None:
    actor.calendar_token_hash = None
    db.session.flush()
    record_event("calendar.token_revoke", actor, actor=actor)


def feed_owner(token: str) -> User:
    """The active user whose feed this token opens. Raises NotFound (unknown or revoked token)."""
    user = db.session.scalars(select(User).where(User.calendar_token_hash == token_hash(token))).one_or_none()
    if user is None or not user.is_active_user:
        raise NotFound()
    return user


def feed(user: User, *, base_url: str) -> bytes:
    """The user's confirmed claims of projects not cancelled, from PAST ago on, as an iCalendar document."""
    claims = db.session.scalars(
        select(Claim).options(joinedload(Claim.project)).join(Project, Project.id == Claim.project_id)
        .where(Claim.volunteer_id == user.id, Claim.status == ClaimStatus.CONFIRMED,
               Project.status != ProjectStatus.CANCELLED, Project.ends_at > utcnow() - PAST)
        .order_by(Project.starts_at)).all()
    with force_locale(user.locale or "zh_CN"):
        calendar = Calendar()
        calendar.add("prodid", "-//gongyi credits//calendar//ZH")
        calendar.add("version", "2.0")
        calendar.add("x-wr-calname", _("公益币 · 我的志愿服务"))
        now = utcnow()
        for claim in claims:
            project = claim.project
            event = Event()
            event.add("uid", f"claim-{claim.id}@credits")
            event.add("dtstamp", now)
            event.add("dtstart", project.starts_at)
            event.add("dtend", project.ends_at)
            event.add("summary", project.title)
            event.add("location", project.location)
            event.add("url", f"{base_url}/projects/{project.id}")
            for before in ALARMS:
                alarm = Alarm()
                alarm.add("action", "DISPLAY")
                alarm.add("description", _("「%(title)s」即将开始", title=project.title))
                alarm.add("trigger", -before)
                event.add_component(alarm)
            calendar.add_component(event)
    return calendar.to_ical()
