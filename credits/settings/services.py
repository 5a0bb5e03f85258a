"""Read and change policy settings; the schema holds every default and bound."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from credits.auth.audit import record_event
from credits.auth.services import require_admin
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
    # SPEC 2.3 "No one person can mint": the bounds on what a coordinator alone can make a project or an approval
    # issue. Only admins change policy, so only an admin raises them.
    max_coins_per_hour = WholeNumber(load_default=10, validate=validate.Range(1, 1000),
                                     metadata={"label": _l("项目发币规则上限（每小时最多公益币）")})
    min_block_minutes = WholeNumber(load_default=15, validate=validate.Range(1, 24 * 60),
                                    metadata={"label": _l("项目发币时段下限（分钟）")})
    backdate_days = WholeNumber(load_default=7, validate=validate.Range(0, 366),
                                metadata={"label": _l("项目开始时间最多可早于今天几天")})
    manual_record_days = WholeNumber(load_default=30, validate=validate.Range(1, 366),
                                     metadata={"label": _l("补录须在服务后几天内提交")})
    second_approval_coins = WholeNumber(load_default=50, validate=validate.Range(1, 1_000_000),
                                        metadata={"label": _l("单次发币超过多少需第二人复核")})
    daily_issue_limit = WholeNumber(load_default=500, validate=validate.Range(1, 10_000_000),
                                    metadata={"label": _l("每位协调员每天审核发币上限（超出需第二人复核）")})
    session_idle_days = WholeNumber(load_default=7, validate=validate.Range(1, 90),
                                    metadata={"label": _l("网页登录闲置多少天后自动退出")})
    admin_session_idle_hours = WholeNumber(load_default=12, validate=validate.Range(1, 168),
                                           metadata={"label": _l("管理员网页登录闲置多少小时后自动退出")})
    # SPEC 2.7: `off` only for a deployment without SMS; the admin pages flag it.
    phone_verification = fields.String(
        load_default=lambda: current_app.config["PHONE_VERIFICATION_DEFAULT"],
        validate=validate.OneOf(["required", "off"]), metadata={"label": _l("注册、找回密码和更换手机号需短信验证码")})


def rule_problem(block_minutes: int, coins_per_block: int, policy: dict[str, Any]) -> tuple[str, str] | None:
    """Why a credit rule is outside the policy's bounds, as (field, message), or None when it is within them."""
    if block_minutes < policy["min_block_minutes"]:
        return "block_minutes", str(_l("发币时段不能短于 %(n)s 分钟。", n=policy["min_block_minutes"]))
    if coins_per_block * 60 > policy["max_coins_per_hour"] * block_minutes:
        return "coins_per_block", str(_l("发币规则不能超过每小时 %(n)s 枚公益币。", n=policy["max_coins_per_hour"]))
    return None


# Built once: a winning claim reads the policy, and a schema's construction cost more than its load.
_POLICY = PolicySchema()
_STORED = select(PolicySetting.key, PolicySetting.value)


def get_policy() -> dict[str, Any]:
    """All settings: stored values over the defaults."""
    return policy_from(db.session.execute(_STORED).all())


def policy_from(stored: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """All settings from stored (key, value) pairs, the defaults for the others."""
    return _POLICY.load({key: value for key, value in stored if key in _POLICY.fields})


def stored_setting(key: str):
    """A column for another module's statement: one setting's stored value, NULL when it is not stored. Read with
    that statement's own columns, in its round trip, and given to `policy_from`."""
    return select(PolicySetting.value).where(PolicySetting.key == key).scalar_subquery().label(key)


def policy(key: str) -> Any:
    return get_policy()[key]


def update_policy(changes: dict[str, Any], *, actor) -> dict[str, Any]:
    """Validate and store changed settings; admins only. Raises Forbidden, marshmallow.ValidationError."""
    require_admin(actor)
    data = PolicySchema(partial=True).load(changes)
    merged = {**get_policy(), **data}
    # The default credit rule must itself be one a project may carry, whichever of the four settings changed.
    if data and (problem := rule_problem(merged["block_minutes"], merged["coins_per_block"], merged)):
        field, message = problem
        raise ValidationError({field if field in data else next(iter(data)): [message]})
    for key, value in data.items():
        row = db.session.get(PolicySetting, key)
        if row is None:
            db.session.add(PolicySetting(key=key, value=value, updated_by_id=actor.id))
        else:
            row.value, row.updated_by_id = value, actor.id
    db.session.flush()
    record_event("policy.update", actor=actor, details=data)
    return get_policy()
