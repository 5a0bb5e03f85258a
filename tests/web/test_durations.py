"""How a length of service reads: minutes under an hour, otherwise hours to one decimal, one rounding rule."""

from __future__ import annotations

import pytest
from flask import render_template_string

from credits.timeutil import duration


@pytest.mark.parametrize(("minutes", "shown"), [(0, "0 分钟"), (1, "1 分钟"), (10, "10 分钟"), (59, "59 分钟"),
                                                (60, "1 小时"), (66, "1.1 小时"), (90, "1.5 小时"),
                                                (6 + 6, "12 分钟"), (62, "1 小时"), (65, "1 小时"),
                                                (5980, "99.6 小时")])
def test_a_duration_reads_in_minutes_under_an_hour_and_in_tenths_of_an_hour_after(app, minutes, shown):
    with app.test_request_context():
        assert duration(minutes) == shown
        assert render_template_string("{{ m|duration }}", m=minutes) == shown


def test_a_sum_is_formatted_once_from_minutes_not_added_up_from_formatted_parts(app):
    with app.test_request_context():
        assert duration(6 + 6) == "12 分钟"
        assert duration(40 + 40) == "1.3 小时"


def test_service_done_rounds_down_and_what_is_left_rounds_up(app):
    """A certificate never states more than was served; 20 minutes done and 99.7 hours to go reach the 100."""
    with app.test_request_context():
        assert duration(119) == "1.9 小时" and duration(5980, up=True) == "99.7 小时"
        assert render_template_string("{{ m|duration(up=True) }}", m=65) == "1.1 小时"


def test_issuance_memos_read_like_durations_including_ones_written_before(app):
    from credits.ledger import memos

    assert memos.issued("健康加油站", 10) == "健康加油站 满 10 分钟"
    assert memos.issued("健康加油站", 135) == "健康加油站 满 2.2 小时"
    with app.test_request_context():
        assert memos.shown("健康加油站 满 0.166667 小时") == "健康加油站 满 10 分钟"
        assert memos.shown("健康加油站 满 2.25 小时") == "健康加油站 满 2.2 小时"
        assert memos.shown("健康加油站 满 3 小时") == "健康加油站 满 3 小时"
