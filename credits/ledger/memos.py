"""Ledger memos: written in Chinese, the language of the record, and shown in the reader's language.

Every memo the app writes is one of these templates filled in. The ledger keeps the Chinese text, so the record
reads the same whoever looks at it and whenever; a page matches a stored memo back to its template and shows the
template's translation with the same values. A memo typed by hand (an admin's adjustment) is shown as written.
"""

from __future__ import annotations

import re

from flask_babel import gettext


def N_(template: str) -> str:
    """Marks a template for the message catalog; the memo itself is written untranslated."""
    return template


ISSUED = N_("%(project)s 满 %(hours)s 小时")
CLAWED_BACK = N_("撤销 %(project)s 时长")
EXPIRED = N_("%(year)s 年及以前发放的公益币到期")
HELD = N_("兑换 %(service)s")
CANCELLED = N_("兑换券取消，退回公益币")
LAPSED = N_("兑换券过期，退回公益币")
REDEEMED = N_("%(service)s 兑换")
SETTLED = N_("%(merchant)s 结算")
DEBT_PAID = N_("抵扣欠币 %(coins)s 枚")
TEMPLATES = (ISSUED, CLAWED_BACK, EXPIRED, HELD, CANCELLED, LAPSED, REDEEMED, SETTLED, DEBT_PAID)

_PATTERNS = [(re.compile("^" + re.sub(r"%\\\((\w+)\\\)s", r"(?P<\1>.+)", re.escape(template)) + "$", re.S), template)
             for template in TEMPLATES]


def write(template: str, **values: object) -> str:
    """The memo to store: the Chinese template with its values."""
    return template % values


def shown(memo: str) -> str:
    """The stored memo in the current language."""
    for pattern, template in _PATTERNS:
        if match := pattern.match(memo):
            return gettext(template, **match.groupdict())
    return memo
