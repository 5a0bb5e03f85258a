"""A small town built through the services, shared by the reports' API and page tests."""

from __future__ import annotations

import pytest

from credits.extensions import db
from credits.merchants import services as merchants
from credits.projects import services as projects
from tests.hours.helpers import approve, confirmed_claim, file, local_day, slot, started_project
from tests.merchants.helpers import give, make_service, make_shop, make_staff


@pytest.fixture
def town(make_user, make_org, coordinator, org):
    """Two organisations' projects, approved, pending and no-show service, a redeemed and an open voucher."""
    other_org = make_org("奉城镇社区党委", kind="government")
    other_coordinator = make_user("coordinator", "volunteer", name="赵协调", organization=other_org)
    volunteers = [make_user(name=name, organization=org) for name in ("李志愿", "王热心", "陈建国")]
    health = started_project(coordinator, title="健康加油站", capacity=5, block_minutes=60, coins_per_block=2)
    clean = started_project(other_coordinator, title="变废为宝", capacity=4)
    claims = [confirmed_claim(health, v) for v in volunteers]
    coins = [approve(file(claims[0], volunteers[0], slot(3, 150)), coordinator),
             approve(file(claims[1], volunteers[1], slot(3, 90)), coordinator)]
    file(claims[2], volunteers[2], slot(2, 60))  # stays pending
    absent = confirmed_claim(clean, volunteers[0])
    projects.mark_no_show(absent, actor=other_coordinator)
    db.session.commit()

    shop = make_shop(coordinator, name="奉城老街洗车行")
    staff = make_staff(shop, coordinator)
    wash = make_service(shop, coordinator, price=2)
    give(volunteers[2], 5)
    redeemed = merchants.take_voucher(wash, volunteer=volunteers[0])
    db.session.commit()
    merchants.redeem(redeemed, staff=staff)
    merchants.take_voucher(wash, volunteer=volunteers[2])  # still open: its coins sit in escrow
    db.session.commit()
    return {"volunteers": volunteers, "coins": coins, "health": health, "clean": clean, "shop": shop,
            "org": org, "other_org": other_org, "minutes": [150, 90], "price": wash.price}


def this_period() -> dict[str, str]:
    """The last hundred days: every slot the town's service took place in."""
    return {"from": local_day(100).isoformat(), "to": local_day(0).isoformat()}
