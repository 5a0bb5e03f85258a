"""Ledger memos are written in Chinese, the language of the record, and read back in the reader's language."""

from __future__ import annotations

import re

import pytest
from flask_babel import force_locale

from credits.ledger import memos
from tests.web.test_translations import CJK

VALUES = {"project": "Project-A", "hours": "1.5", "year": "2025", "service": "Shop-B Wash", "merchant": "Shop-B",
          "coins": "17", "minutes": "45"}


@pytest.mark.parametrize("template", memos.TEMPLATES)
def test_each_memo_is_stored_in_chinese_and_shown_in_english_with_its_values(app, template):
    stored = memos.write(template, **VALUES)
    with app.test_request_context(), force_locale("en"):
        english = memos.shown(stored)
    with app.test_request_context(), force_locale("zh_CN"):
        chinese = memos.shown(stored)

    assert CJK.search(stored) and chinese == stored
    assert not CJK.search(english), english
    assert all(VALUES[name] in english for name in re.findall(r"%\((\w+)\)s", template))


def test_a_memo_typed_by_hand_is_shown_as_written(app):
    with app.test_request_context(), force_locale("en"):
        assert memos.shown("演示：社区表彰奖励") == "演示：社区表彰奖励"
        assert memos.shown("") == ""
