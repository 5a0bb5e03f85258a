"""Demo data from the newspaper report the scheme comes from (奉贤区, 奉城镇 “党建+” 公益服务)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from credits.auth.models import Organization, OrgKind, Role, User
from credits.auth.services import create_user
from credits.extensions import db
from credits.hours import services as service_hours
from credits.merchants import services as merchants
from credits.projects import services as projects
from credits.projects.models import Claim, Project
from credits.reviews import services as reviews
from credits.timeutil import local_zone, utcnow

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
    ("13900000006", "赵协调", [Role.COORDINATOR], "海湾宝芳志愿服务中心党支部"),
]

# More volunteers from 两新组织, so that popular projects fill up and have a waitlist.
DEMO_VOLUNTEERS = [
    ("13900000101", "刘芳", "凯宝药业党委"),
    ("13900000102", "陈建国", "晨冠乳业党支部"),
    ("13900000103", "杨丽", "上海创元化妆品有限公司党支部"),
    ("13900000104", "黄伟", "青村镇满天星社工服务社党支部"),
    ("13900000105", "周敏", "柘林镇迎龙公益服务社"),
    ("13900000106", "吴强", "上海福鑫公益服务社"),
]


def seed_demo() -> bool:
    """Create the demo organisations, users and projects unless they exist. Returns whether anything was loaded."""
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
    users = {}
    for phone, name, roles, org_name in DEMO_USERS:
        users[name] = create_user(phone=phone, name=name, password=DEMO_PASSWORD, roles=roles,
                                  organization_id=orgs[org_name].id if org_name else None)
    for phone, name, org_name in DEMO_VOLUNTEERS:
        users[name] = create_user(phone=phone, name=name, password=DEMO_PASSWORD, roles=[Role.VOLUNTEER],
                                  organization_id=orgs[org_name].id)
    _seed_projects(users)
    _seed_merchants(users)
    _seed_review(users)
    return True


# key: organising coordinator, title, category, location, (days from today, hour, minute), hours, capacity,
# waitlist capacity (None: as many as places), description. The two held in the past earn 10 coins an hour (the
# policy's most), so the demo volunteers' coins are the ones their hours earned.
DEMO_PROJECTS = {
    "cleanup": ("王协调", "美丽庭院清洁日", "环境保护", "奉城镇洪庙村村民活动室", (14, 8, 0), 8, 10, None,
                "帮村里的老人清理庭院、疏通沟渠、修剪绿化，下午整理垃圾分类点。"),
    "health": ("王协调", "健康加油站", "健康服务", "奉城镇社区卫生服务中心门口", (3, 9, 0), 2.5, 10, 5,
               "为居民免费测量血压、血糖，讲解慢病预防和健康生活知识。志愿者协助登记、引导排队、发放宣传资料。"),
    "recycle": ("王协调", "变废为宝", "环境保护", "洪庙社区垃圾分类宣传点", (5, 14, 0), 2.5, 3, 3,
                "收集旧衣物、废旧电池和快递纸箱，教居民垃圾分类，并把旧物改造成环保袋和花盆。"),
    "woodpecker": ("王协调", "啄木鸟行动", "文明实践", "奉城老街（南门广场集合）", (2, 8, 30), 3, 20, 10,
                   "走街串巷，发现并随手拍下乱停车、乱堆物、破损设施等问题，当场上报网格员。"),
    "elderly": ("赵协调", "“365”关爱空巢老人", "为老服务", "奉城镇卫季村村委会", (7, 9, 0), 3, 6, None,
                "结对上门陪伴空巢老人：聊天、打扫、代购生活用品，检查水电煤安全。"),
    "haircut": ("王协调", "爱心理发服务", "便民服务", "奉城镇敬老院", (1, 9, 0), 4, 6, None,
                "为社区里行动不便的老人免费理发，志愿者负责预约、接送和现场秩序。"),
    "traffic": ("王协调", "文明交通志愿岗", "文明实践", "南奉公路与城中路路口", (4, 7, 0), 2, 8, None,
                "早高峰在路口劝导行人和非机动车遵守信号灯。"),
    "sorting": ("王协调", "垃圾分类桶边督导", "环境保护", "奉城镇新城小区投放点", (10, 18, 0), 2, 6, None,
                "晚间在小区投放点指导居民分类投放，记录混投情况。"),
}
PAST = ("cleanup", "haircut")


def _seed_projects(users: dict[str, User]) -> None:
    """Projects from the report in every state, claimed through the services so every counter is right."""
    now = utcnow()
    today = now.astimezone(local_zone()).date()

    def at(days: int, hour: int, minute: int = 0) -> datetime:
        return datetime(today.year, today.month, today.day, hour, minute, tzinfo=local_zone()) + timedelta(days=days)

    made: dict[str, Project] = {}
    for key, (coordinator, title, category, location, start, hours, capacity, waitlist, text) in DEMO_PROJECTS.items():
        starts_at = at(*start)
        rule = {"block_minutes": 60, "coins_per_block": 10} if key in PAST else {}
        made[key] = projects.create_project(
            {"title": title, "category": category, "description": text, "location": location,
             "starts_at": starts_at, "ends_at": starts_at + timedelta(hours=hours), "capacity": capacity,
             "waitlist_capacity": waitlist, **rule}, actor=users[coordinator])

    def publish(key: str, **kwargs) -> Project:
        return projects.publish(made[key], actor=users[DEMO_PROJECTS[key][0]], **kwargs)

    def claim(key: str, *names: str) -> list[Claim]:
        return [projects.claim(made[key], volunteer=users[name]) for name in names]

    publish("cleanup")  # held two weeks ago: where 李志愿 and 张晓明 earned most of their coins
    claim("cleanup", "李志愿", "张晓明", "周敏")
    _move_into_past(made["cleanup"], at(-14, 8))
    publish("health")  # open, places left
    claim("health", "李志愿", "张晓明")
    # Moved indoors after the claims: its two volunteers find the change in their messages (and their SMS).
    projects.update_project(made["health"], {"location": "奉城镇社区卫生服务中心一楼大厅"}, actor=users["王协调"])
    publish("recycle")  # three places taken, then two on the waitlist
    claim("recycle", "刘芳", "陈建国", "杨丽", "李志愿", "黄伟")
    publish("woodpecker", publish_at=now + timedelta(minutes=5))  # opens in a few minutes: 秒抢
    publish("elderly")
    claim("elderly", "周敏", "张晓明")
    projects.close(made["elderly"], actor=users["赵协调"])
    publish("haircut")  # held last week, with one volunteer who did not come
    absent = claim("haircut", "刘芳", "陈建国", "李志愿", "张晓明", "吴强")[-1]
    _move_into_past(made["haircut"], at(-6, 9))
    projects.mark_no_show(absent, actor=users["王协调"])
    _seed_hours(made, users)
    publish("traffic")
    claim("traffic", "张晓明", "杨丽")
    projects.cancel_project(made["traffic"], actor=users["王协调"])
    # "sorting" stays a draft


def _seed_hours(made: dict[str, Project], users: dict[str, User]) -> None:
    """Service records in every review state on the past projects, reviewed through the services so coins,
    clawbacks and approved minutes are the ledger's own. Each approval issues at most 40 coins, under the
    four-eyes threshold (SPEC 2.3), as a real day's records would."""
    reviewer = users["王协调"]

    def record(key: str, name: str, start_hour: float, end_hour: float, note: str = ""):
        project = made[key]
        claim = db.session.scalars(select(Claim).where(Claim.project_id == project.id,
                                                       Claim.volunteer_id == users[name].id)).one()
        start = project.starts_at + timedelta(hours=start_hour)
        return service_hours.file_manual(claim, {"started_at": start, "note": note,
                                                 "ended_at": start + timedelta(hours=end_hour - start_hour)},
                                         volunteer=users[name])

    for name in ("李志愿", "张晓明"):
        service_hours.approve(record("cleanup", name, 0, 4, "清理庭院、疏通沟渠"), reviewer=reviewer)
        service_hours.approve(record("cleanup", name, 4, 8, "整理垃圾分类点"), reviewer=reviewer)
        service_hours.approve(record("haircut", name, 0, 4, "预约、接送老人"), reviewer=reviewer)
    service_hours.approve(record("cleanup", "周敏", 0, 3, "修剪绿化"), reviewer=reviewer)
    service_hours.approve(record("haircut", "刘芳", 0, 2, "理发 6 位老人"), reviewer=reviewer)
    duplicate = record("haircut", "刘芳", 2, 3, "整理工具")
    service_hours.approve(duplicate, reviewer=reviewer)
    service_hours.revoke(duplicate, "与签到记录重复", reviewer=reviewer)
    service_hours.reject(record("haircut", "陈建国", 0, 0.5, "提前到场"), "活动尚未开始", reviewer=reviewer)
    record("haircut", "陈建国", 0.5, 3.5, "接送老人、维持秩序")  # waits for review


def _move_into_past(project: Project, starts_at: datetime) -> None:
    """Turn a freshly claimed project into last week's, so the demo has an ended project with its history.
    Only the times move; the claims and counters are the ones the services wrote."""
    shift = project.starts_at - starts_at
    project.starts_at -= shift
    project.ends_at -= shift
    project.publish_at = starts_at - timedelta(days=3)
    project.created_at = project.publish_at
    for c in db.session.scalars(select(Claim).where(Claim.project_id == project.id)):
        c.created_at = c.confirmed_at = project.publish_at + timedelta(seconds=30 + c.id)
    db.session.flush()


# The shops of 奉城老街 that take 公益币, with the four services of the report: name, address, category,
# description, [(service, price, daily quota)]
DEMO_MERCHANTS = [
    ("奉城老街洗车行", "奉城老街 18 号", "car_wash", "手工精洗，老街口停车方便。",
     [("洗车", 20, None), ("内饰清洁", 40, 3)]),
    ("小太阳早教中心", "奉城老街 56 号二楼", "early_education", "0–6 岁亲子早教。",
     [("早教体验课", 50, 5)]),
    ("童趣儿童摄影", "奉城老街 72 号", "children_photography", "儿童写真、全家福。",
     [("儿童摄影", 80, 2)]),
    ("丽人美容美发", "奉城老街 101 号", "hair_beauty", "洗剪吹、护理。",
     [("美容美发", 30, 10)]),
]


def _seed_merchants(users: dict[str, User]) -> None:
    """Shops and services onboarded by a coordinator, a staff member at the first shop and vouchers in every state,
    paid with the coins the volunteers' hours earned, all through the services."""
    coordinator, staff = users["王协调"], users["陈店员"]
    shops = []
    for name, address, category, text, offered in DEMO_MERCHANTS:
        shop = merchants.create_merchant({"name": name, "address": address, "category": category,
                                          "description": text}, actor=coordinator)
        for service, price, quota in offered:
            merchants.create_service(shop, {"name": service, "price": price, "daily_quota": quota},
                                     actor=coordinator)
        shops.append(shop)
    staff.merchant_id = shops[0].id
    db.session.flush()

    def service(shop: int, index: int = 0):
        return shops[shop].services[index]

    li, zhang = users["李志愿"], users["张晓明"]
    merchants.redeem(merchants.take_voucher(service(0), volunteer=li), staff=staff)  # redeemed today
    merchants.take_voucher(service(3), volunteer=li)  # issued
    merchants.take_voucher(service(0), volunteer=zhang)  # issued, for the till to redeem
    merchants.cancel_voucher(merchants.take_voucher(service(1), volunteer=zhang), volunteer=zhang)
    expired = merchants.take_voucher(service(2), volunteer=zhang)
    expired.expires_at = utcnow() - timedelta(hours=1)
    db.session.flush()
    merchants.expire_if_due(expired)


def _seed_review(users: dict[str, User]) -> None:
    """This year's 优秀服务项目评审, open: every eligible demo project a candidate, both coordinators invited,
    and 王协调's first scores in."""
    chair, other = users["王协调"], users["赵协调"]
    review = reviews.open_review(utcnow().astimezone(local_zone()).year, "年度优秀服务项目评审（演示）", by=chair)
    candidates = list(db.session.scalars(reviews.eligible_projects(review)))
    reviews.add_candidates(review, [p.id for p in candidates], actor=chair)
    reviews.invite_reviewers(review, [chair.id, other.id], actor=chair)
    comments = {"爱心理发服务": (92, "老人们很满意，预约和接送安排得细致。"),
                "健康加油站": (85, "参与面广，宣传资料实用。")}
    for project in candidates:
        if project.title in comments:
            reviews.score(review, project, *comments[project.title], reviewer=chair)
