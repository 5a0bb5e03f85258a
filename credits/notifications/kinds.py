"""The kinds of message, their texts (zh msgids, rendered in the reader's language) and SMS defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from credits.timeutil import duration, local_zone


@dataclass(frozen=True)
class Kind:
    label: LazyString  # for the settings page
    title: LazyString
    body: LazyString  # %(name)s placeholders filled from the message's params
    sms: bool  # SMS by default, until the person says otherwise
    # Quiet hours hold SMS until 08:00, except when the event this close ahead would be missed by then.
    urgent_within: timedelta | None = None


# Lazy texts: each is looked up when rendered, inside force_locale(reader's locale).
KINDS: dict[str, Kind] = {
    "promotion": Kind(_l("候补转正"), _l("您已从候补转为正式报名"),
                      _l("您已获得「%(title)s」的名额：%(starts_at)s，%(location)s。不能参加请在“我的认领”中取消。"),
                      sms=True, urgent_within=timedelta(hours=12)),
    "project_changed": Kind(_l("项目变更"), _l("您报名的项目有变更"),
                            _l("「%(title)s」已变更：%(starts_at)s，%(location)s。不能参加请在“我的认领”中取消。"),
                            sms=True),
    "project_cancelled": Kind(_l("项目取消"), _l("您报名的项目已取消"),
                              _l("「%(title)s」（%(starts_at)s）已取消，您的报名随之取消。"), sms=True),
    "reminder": Kind(_l("服务提醒"), _l("服务即将开始"),
                     _l("「%(title)s」将于 %(starts_at)s 开始，地点：%(location)s。"), sms=True),
    "hours_approved": Kind(_l("时长通过"), _l("服务时长已通过审核"),
                           _l("「%(title)s」的 %(duration)s 服务已通过审核，获得 %(coins)s 公益币。"), sms=False),
    "hours_rejected": Kind(_l("时长驳回"), _l("服务时长未通过审核"),
                           _l("「%(title)s」的服务记录未通过审核，原因：%(reason)s"), sms=False),
    "voucher_expiring": Kind(_l("兑换券到期"), _l("兑换券即将到期"),
                             _l("您在「%(merchant)s」兑换的「%(service)s」将于 %(expires_at)s 到期，请及时使用。"),
                             sms=True),
    "coins_expiring": Kind(_l("公益币到期"), _l("公益币即将到期"),
                           _l("您有 %(coins)s 公益币将于 %(expires_at)s 到期，请及时使用。"), sms=True),
    "redemption": Kind(_l("兑换回执"), _l("兑换成功"),
                       _l("您已在「%(merchant)s」使用「%(service)s」，支付 %(coins)s 公益币。"), sms=False),
    "organization_invitation": Kind(_l("组织邀请"), _l("邀请您加入组织"),
                                    _l("「%(organization)s」邀请您成为其成员。请打开“组织邀请”确认或拒绝。"),
                                    sms=False),
}


def to_params(ctx: dict) -> dict:
    """The template context as JSON: times as ISO strings (shown in local time when rendered)."""
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in ctx.items()}


def _shown(key: str, value):
    if key.endswith("_at") and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return moment.astimezone(local_zone()).strftime("%m-%d %H:%M")
    return value


class _Params(dict):
    def __missing__(self, key):  # a template newer than the message it renders: a gap, not a crash
        return "…"


def render(kind: str, params: dict, locale: str | None) -> tuple[str, str]:
    """(title, body) of a message in the given locale. A kind this code no longer knows shows its params."""
    spec = KINDS.get(kind)
    shown = _Params({key: _shown(key, value) for key, value in params.items()})
    with force_locale(locale or "zh_CN"):
        if "minutes" in shown:
            shown["duration"] = duration(int(shown["minutes"]))
        if spec is None:
            return kind, ", ".join(f"{k}: {v}" for k, v in sorted(shown.items()))
        return str(spec.title), str(spec.body) % shown
