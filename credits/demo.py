"""Demo data from the newspaper report the scheme comes from (奉贤区, 奉城镇 “党建+” 公益服务)."""

from __future__ import annotations

from sqlalchemy import select

from credits.auth.models import Organization, OrgKind, Role, User
from credits.auth.services import create_user
from credits.extensions import db

DEMO_PASSWORD = "gongyi2026"

ORGANIZATIONS = [
    ("奉城镇党委", OrgKind.GOVERNMENT),
    ("奉贤区社会工作党委", OrgKind.GOVERNMENT),
    ("伽蓝集团党委", OrgKind.ENTERPRISE),
    ("凯宝药业党委", OrgKind.ENTERPRISE),
    ("上海创元化妆品有限公司党支部", OrgKind.ENTERPRISE),
    ("晨冠乳业党支部", OrgKind.ENTERPRISE),
    ("海湾宝芳志愿服务中心党支部", OrgKind.SOCIAL),
    ("青村镇满天星社工服务社党支部", OrgKind.SOCIAL),
    ("柘林镇迎龙公益服务社", OrgKind.SOCIAL),
    ("上海福鑫公益服务社", OrgKind.SOCIAL),
]

# phone, name, roles, organisation
DEMO_USERS = [
    ("13900000001", "管理员", [Role.ADMIN], "奉城镇党委"),
    ("13900000002", "王协调", [Role.COORDINATOR, Role.VOLUNTEER], "奉城镇党委"),
    ("13900000003", "李志愿", [Role.VOLUNTEER], "伽蓝集团党委"),
    ("13900000004", "张晓明", [Role.VOLUNTEER], "海湾宝芳志愿服务中心党支部"),
    ("13900000005", "陈店员", [Role.MERCHANT], None),
]


def seed_demo() -> bool:
    """Create the demo organisations and users unless they exist. Returns whether anything was loaded."""
    if db.session.scalar(select(User.id).where(User.phone == DEMO_USERS[0][0])) is not None:
        return False
    orgs = {}
    for name, kind in ORGANIZATIONS:
        org = db.session.scalars(select(Organization).where(Organization.name == name)).one_or_none()
        if org is None:
            org = Organization(name=name, kind=kind)
            db.session.add(org)
        orgs[name] = org
    db.session.flush()
    for phone, name, roles, org_name in DEMO_USERS:
        create_user(phone=phone, name=name, password=DEMO_PASSWORD, roles=roles,
                    organization_id=orgs[org_name].id if org_name else None)
    return True
