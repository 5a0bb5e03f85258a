"""Read and change policy settings; the schema holds every default and bound."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from credits.auth.audit import record_event
from credits.extensions import db
from credits.fields import WholeNumber
from credits.settings.models import PolicySetting


class PolicySchema(Schema):
    """Every policy setting of SPEC 2, its default and its bounds."""

    max_active_claims = WholeNumber(load_default=3, validate=validate.Range(1, 50),
                                       metadata={"label": _l("每人同时进行中的认领上限")})
    no_show_limit = WholeNumber(load_default=3, validate=validate.Range(1, 20),
                                   metadata={"label": _l("90 天内缺席几次暂停认领")})
    auto_approve_checkin = fields.Boolean(load_default=True,
                                          metadata={"label": _l("签到时长（当日≤8小时）自动通过")})
    block_minutes = WholeNumber(load_default=60, validate=validate.Range(1, 24 * 60),
                                   metadata={"label": _l("默认每满多少分钟发币")})
    coins_per_block = WholeNumber(load_default=1, validate=validate.Range(1, 1000),
                                     metadata={"label": _l("默认每个时段发多少公益币")})
    coin_expiry = fields.String(load_default="none", validate=validate.OneOf(["none", "end_of_next_year"]),
                                metadata={"label": _l("公益币有效期")})
    voucher_ttl_days = WholeNumber(load_default=7, validate=validate.Range(1, 365),
                                      metadata={"label": _l("兑换券有效天数")})


def get_policy() -> dict[str, Any]:
    """All settings: stored values over the defaults."""
    stored = {s.key: s.value for s in db.session.scalars(select(PolicySetting))}
    return PolicySchema().load({k: v for k, v in stored.items() if k in PolicySchema().fields})


def policy(key: str) -> Any:
    return get_policy()[key]


def update_policy(changes: dict[str, Any], *, actor) -> dict[str, Any]:
    """Validate and store changed settings. Raises marshmallow.ValidationError."""
    data = PolicySchema(partial=True).load(changes)
    for key, value in data.items():
        row = db.session.get(PolicySetting, key)
        if row is None:
            db.session.add(PolicySetting(key=key, value=value, updated_by_id=actor.id))
        else:
            row.value, row.updated_by_id = value, actor.id
    db.session.flush()
    record_event("policy.update", actor=actor, details=data)
    return get_policy()
