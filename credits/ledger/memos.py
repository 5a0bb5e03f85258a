"""Ledger memos: written in Chinese, the language of the record, and shown in the reader's language.

Every memo the app writes is one of these templates filled in. The ledger keeps the Chinese text, so the record
reads the same whoever looks at it and whenever; a page matches a stored memo back to its template and shows the
template's translation with the same values. A memo typed by hand (an admin's adjustment) is shown as written.
"""

from __future__ import annotations

import re

from flask_babel import gettext

from credits.timeutil import hours_number


def N_(template: str) -> str:
    """Marks a template for the message catalog; the memo itself is written untranslated."""
    return template


ISSUED = N_("%(project)s 满 %(hours)s 小时")
ISSUED_MINUTES = N_("%(project)s 满 %(minutes)s 分钟")
CLAWED_BACK = N_("撤销 %(project)s 时长")
EXPIRED = N_("%(year)s 年及以前发放的公益币到期")
HELD = N_("兑换 %(service)s")
CANCELLED = N_("兑换券取消，退回公益币")
LAPSED = N_("兑换券过期，退回公益币")
REDEEMED = N_("%(service)s 兑换")
SETTLED = N_("%(merchant)s 结算")
DEBT_PAID = N_("抵扣欠币 %(coins)s 枚")
TEMPLATES = (ISSUED, ISSUED_MINUTES, CLAWED_BACK, EXPIRED, HELD, CANCELLED, LAPSED, REDEEMED, SETTLED, DEBT_PAID)

_PATTERNS = [(re.compile("^" + re.sub(r"%\\\((\w+)\\\)s", r"(?P<\1>.+)", re.escape(template)) + "$", re.S), template)
             for template in TEMPLATES]


def write(template: str, **values: object) -> str:
    """The memo to store: the Chinese template with its values."""
    return template % values


def issued(project: str, minutes: int) -> str:
    """The memo of an issuance that reached `minutes` of approved service, read as the pages read durations."""
    if minutes < 60:
        return write(ISSUED_MINUTES, project=project, minutes=minutes)
    return write(ISSUED, project=project, hours=hours_number(minutes))


def shown(memo: str) -> str:
    """The stored memo in the current language."""
    for pattern, template in _PATTERNS:
        if match := pattern.match(memo):
            values = match.groupdict()
            if template == ISSUED:
                template, values = _reread_issued(values)
            return gettext(template, **values)
    return memo


def _reread_issued(values: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Memos written before issued() carry hours as a float (满 0.166667 小时): read them as it writes them."""
    try:
        minutes = round(float(values["hours"]) * 60)
    except ValueError:
        return ISSUED, values
    if minutes < 60:
        return ISSUED_MINUTES, {"project": values["project"], "minutes": str(minutes)}
    return ISSUED, {"project": values["project"], "hours": hours_number(minutes)}
