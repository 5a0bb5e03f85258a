"""`flask credits seed-scale`: a year of the scheme at town scale, written in bulk and consistent with every rule.

The services post one transaction per request, which would take hours for a million records. This module
replays the same rules in Python instead — claims within capacity and the claim limit, no overlapping records,
the daily limit and the check-in auto-approval, the cumulative coin rule, vouchers held in escrow and redeemed
— walking the projects in time order and keeping each account's running balance in memory, and writes the rows
in batches (COPY on PostgreSQL, the driver's executemany on SQLite). The ledger it writes is what `post` would
have written: the same kinds, keys, fingerprints, seq numbers and running balances, so `verify-ledger` checks it
like any other.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import func, select, text

from credits.auth.models import Organization, OrgKind, Role, User, UserRole
from credits.auth.passwords import hash_password
from credits.database import in_transaction
from credits.extensions import db
from credits.hours.models import CreditState, RecordSource, RecordStatus, ServiceRecord
from credits.hours.services import AUTO_APPROVE_MINUTES, DAILY_LIMIT_MINUTES, earned_coins
from credits.ledger import memos
from credits.ledger.models import Account, AccountKind, Entry, SystemAccount, Transaction, TxKind
from credits.ledger.services import DEBT_PAYING_KINDS, DEBT_REF, _fingerprint, system_account
from credits.merchants.models import Merchant, Service, ServiceDay, Voucher, VoucherStatus
from credits.merchants.services import CODE_LENGTH, CROCKFORD
from credits.projects.models import Claim, ClaimStatus, Project, ProjectStatus
from credits.reports.services import roll_up_ledger
from credits.settings.services import get_policy
from credits.timeutil import local_zone, utcnow

SCALE_PASSWORD = "gongyi-scale-2026"
COORDINATOR_PHONE = "13700000001"
LONG_HISTORY_PHONE = "15000000000"
BATCH_ROWS = 50_000

ORGANIZATIONS = [
    ("奉城镇党委", OrgKind.GOVERNMENT), ("奉贤区社会工作党委", OrgKind.GOVERNMENT),
    ("奉城镇洪庙社区党总支", OrgKind.GOVERNMENT), ("奉城镇卫季村党支部", OrgKind.GOVERNMENT),
    ("奉城镇南门社区党总支", OrgKind.GOVERNMENT), ("奉贤区东方美谷产业促进中心党支部", OrgKind.GOVERNMENT),
    ("伽蓝集团党委", OrgKind.ENTERPRISE), ("凯宝药业党委", OrgKind.ENTERPRISE),
    ("莱士血液党总支", OrgKind.ENTERPRISE), ("晨冠乳业党支部", OrgKind.ENTERPRISE),
    ("上海创元化妆品有限公司党支部", OrgKind.ENTERPRISE), ("莹特非勒党支部", OrgKind.ENTERPRISE),
    ("如新公司党支部", OrgKind.ENTERPRISE), ("东方美谷生物科技园区党委", OrgKind.ENTERPRISE),
    ("奉城镇工业园区联合党支部", OrgKind.ENTERPRISE), ("上海奉城物流有限公司党支部", OrgKind.ENTERPRISE),
    ("奉贤农商银行奉城支行党支部", OrgKind.ENTERPRISE), ("奉城老街商户联合党支部", OrgKind.ENTERPRISE),
    ("海湾宝芳志愿服务中心党支部", OrgKind.SOCIAL), ("青村镇满天星社工服务社党支部", OrgKind.SOCIAL),
    ("柘林镇迎龙公益服务社", OrgKind.SOCIAL), ("上海福鑫公益服务社", OrgKind.SOCIAL),
    ("奉城镇红色志愿者协会", OrgKind.SOCIAL), ("奉贤区青年志愿者协会奉城分会", OrgKind.SOCIAL),
    ("奉城镇老年协会", OrgKind.SOCIAL), ("思贤生活驿站志愿服务队", OrgKind.SOCIAL),
    ("奉城镇妇女儿童之家", OrgKind.SOCIAL), ("奉贤区心理咨询志愿者服务社", OrgKind.SOCIAL),
    ("奉城镇文明实践所志愿服务队", OrgKind.SOCIAL), ("奉城镇环保志愿者联合会", OrgKind.SOCIAL),
]
COORDINATING_ORGS = 15  # the first 15 organisations run projects; everyone's members volunteer
# Organisations' sizes (SPEC 2.8's participation report): 20 to 2,000 members, spread log-uniformly (many small
# 两新 branches, a few large ones), until this share of the volunteers belongs to one; the rest belong to none.
# Past the named organisations, more are made up (奉城两新组织第 N 党支部) until the share is reached.
MEMBERS_MIN, MEMBERS_MAX, MEMBER_SHARE = 20, 2_000, 0.6
PARTY_SHARE = (0.1, 0.6)  # each organisation's share of party members is drawn from this range

ACTIVITIES = [  # title, category, location
    ("健康加油站", "健康服务", "奉城镇社区卫生服务中心门口"),
    ("变废为宝", "环境保护", "洪庙社区垃圾分类宣传点"),
    ("啄木鸟行动", "文明实践", "奉城老街南门广场"),
    ("“365”关爱空巢老人", "为老服务", "奉城镇卫季村村委会"),
    ("爱心理发服务", "便民服务", "奉城镇敬老院"),
    ("文明交通志愿岗", "文明实践", "南奉公路与城中路路口"),
    ("垃圾分类桶边督导", "环境保护", "奉城镇新城小区投放点"),
    ("东方美谷健康讲座", "健康服务", "东方美谷生物科技园区报告厅"),
    ("思贤生活驿站值守", "便民服务", "思贤生活驿站"),
    ("河道清洁行动", "环境保护", "奉城镇金汇港沿岸"),
    ("四点半课堂", "助学支教", "奉城镇社区文化活动中心"),
    ("反诈宣传进社区", "平安建设", "奉城镇南门社区"),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"  # noqa: E501
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国文斌宇浩凯晨晓婷雪琳欣怡子涵佳俊峰志鑫"
MERCHANTS = [  # name, category, [(service, price, daily quota)]
    ("奉城老街洗车行", "car_wash", [("洗车", 10, None), ("内饰清洁", 20, 10)]),
    ("南门快洁汽车美容", "car_wash", [("洗车", 8, None), ("打蜡", 25, 5), ("内饰清洁", 18, None)]),
    ("洪庙汽车服务站", "car_wash", [("洗车", 10, None), ("轮胎检查", 5, None)]),
    ("金汇港洗车坊", "car_wash", [("洗车", 9, None), ("精洗", 16, 8)]),
    ("奉城车管家", "car_wash", [("洗车", 10, 30), ("空调清洗", 30, 4)]),
    ("小太阳早教中心", "early_education", [("早教体验课", 30, 10), ("亲子阅读课", 15, None)]),
    ("贝贝乐早教", "early_education", [("早教体验课", 25, None), ("音乐启蒙课", 20, 6)]),
    ("启明星亲子园", "early_education", [("亲子游戏课", 20, None), ("绘本课", 12, None)]),
    ("奉城小书虫绘本馆", "early_education", [("绘本课", 10, None), ("手工课", 15, 8)]),
    ("七彩贝儿早教", "early_education", [("早教体验课", 28, 5), ("感统训练课", 35, 3)]),
    ("童趣儿童摄影", "children_photography", [("儿童写真", 40, 3), ("证件照", 8, None)]),
    ("宝贝时光影像馆", "children_photography", [("儿童写真", 45, 2), ("全家福", 50, 2)]),
    ("奉城老街照相馆", "children_photography", [("证件照", 6, None), ("全家福", 35, 4)]),
    ("小脚丫儿童摄影", "children_photography", [("儿童写真", 38, None), ("成长纪念照", 30, 4)]),
    ("萌宝影楼", "children_photography", [("证件照", 7, None), ("儿童写真", 42, 3)]),
    ("丽人美容美发", "hair_beauty", [("洗剪吹", 10, None), ("护理", 20, 10)]),
    ("南门理发店", "hair_beauty", [("理发", 6, None), ("洗剪吹", 9, None)]),
    ("美谷美容院", "hair_beauty", [("面部护理", 30, 6), ("美甲", 15, None), ("洗剪吹", 12, None)]),
    ("阿芳美发工作室", "hair_beauty", [("理发", 5, None), ("烫染护理", 40, 2)]),
    ("奉城老街发艺", "hair_beauty", [("理发", 6, None), ("洗剪吹", 10, 20)]),
]
RULES = [(60, 1)] * 14 + [(30, 1), (90, 2), (120, 3), (60, 2), (45, 1), (180, 4)]  # block_minutes, coins
SLOTS = [(8, 0), (8, 30), (9, 0), (13, 0), (13, 30), (14, 0)]  # local start times; projects run 4½–6 h


class ScaleRefused(Exception):
    """The database is not empty enough: seed-scale never mixes invented data into real data."""


@dataclass(frozen=True)
class Scale:
    volunteers: int = 100_000
    projects: int = 2_000
    records: int = 1_000_000
    seed: int = 1


class Rule(NamedTuple):
    block_minutes: int
    coins_per_block: int


# --- bulk writer ---------------------------------------------------------------------------------------------


class _Writer:
    """Buffers rows per table and writes them parents first, so foreign keys hold at every flush. PostgreSQL gets
    COPY (the rows are already the database's types); SQLite gets the driver's executemany."""

    ORDER = [User, UserRole, Account, Project, Claim, ServiceRecord, CreditState, Voucher, Transaction, Entry,
             ServiceDay]

    def __init__(self) -> None:
        self.tables = [m.__table__ for m in self.ORDER]
        self.rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in self.tables}
        self.written: dict[str, int] = defaultdict(int)
        self.pending = 0
        self.postgres = db.engine.dialect.name == "postgresql"

    def add(self, model: type, row: dict[str, Any]) -> None:
        self.rows[model.__tablename__].append(row)
        self.pending += 1
        if self.pending >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        for table in self.tables:
            rows = self.rows[table.name]
            if not rows:
                continue
            if self.postgres:
                self._copy(table.name, rows)
            else:
                self._executemany(table, rows)
            self.written[table.name] += len(rows)
            rows.clear()
        self.pending = 0
        db.session.commit()

    def update(self, model: type, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """Set `columns` of the rows with the ids given first in each tuple: through a temporary table filled by
        COPY on PostgreSQL (one statement instead of 100,000), by executemany on SQLite."""
        table = model.__tablename__
        cursor = db.session.connection().connection.dbapi_connection.cursor()
        if not self.postgres:
            assignments = ", ".join(f"{c} = ?" for c in columns)
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE id = ?", [(*r[1:], r[0]) for r in rows])
            return
        cursor.execute(f"CREATE TEMP TABLE scale_update (id integer PRIMARY KEY, "
                       f"{', '.join(f'{c} integer' for c in columns)}) ON COMMIT DROP")
        with cursor.copy(f"COPY scale_update (id, {', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        assignments = ", ".join(f"{c} = scale_update.{c}" for c in columns)
        cursor.execute(f"UPDATE {table} SET {assignments} FROM scale_update WHERE {table}.id = scale_update.id")
        cursor.execute("DROP TABLE scale_update")

    @staticmethod
    def _executemany(table, rows: list[dict[str, Any]]) -> None:
        """The driver's executemany with the columns' own bind processors (so datetimes are stored exactly as the
        ORM stores them), without Core's per-row parameter compilation, which cost more than the inserts."""
        columns = list(rows[0])
        dialect = db.engine.dialect
        processors = [(i, p) for i, c in enumerate(columns) if (p := table.c[c].type.bind_processor(dialect))]
        params = []
        for row in rows:
            values = [row[c] for c in columns]
            for i, process in processors:
                if values[i] is not None:
                    values[i] = process(values[i])
            params.append(values)
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        db.session.connection().connection.dbapi_connection.cursor().executemany(sql, params)

    @staticmethod
    def _copy(table: str, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        cursor = db.session.connection().connection.dbapi_connection.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])


# --- the seeding -------------------------------------------------------------------------------------------


def check_empty() -> None:
    """Raise ScaleRefused unless there are no projects, shops or ledger transactions yet."""
    found = {name: db.session.scalar(select(func.count()).select_from(model))
             for name, model in (("projects", Project), ("merchants", Merchant),
                                 ("ledger transactions", Transaction))}
    if any(found.values()):
        present = ", ".join(f"{n} {name}" for name, n in found.items() if n)
        raise ScaleRefused(f"seed-scale fills an empty database, but this one has {present}; "
                           "use a new database (and `flask db upgrade`) for benchmarks")


class _Seeder:
    def __init__(self, scale: Scale, echo: Callable[[str], None]) -> None:
        self.scale, self.echo = scale, echo
        self.rng = random.Random(scale.seed)
        self.out = _Writer()
        self.zone = local_zone()
        self.now = utcnow()
        self.started = time.monotonic()
        self.events: list[tuple] = []
        self.event_seq = 0
        self.balance: dict[int, int] = defaultdict(int)
        self.debt: dict[int, int] = defaultdict(int)  # by volunteer account: unpaid clawbacks, paid from coins received
        self.entries: dict[int, int] = defaultdict(int)
        self.approved_minutes: dict[int, int] = defaultdict(int)
        self.codes: set[str] = set()
        self.quota_taken: dict[tuple[int, date], int] = defaultdict(int)
        self.counts: dict[str, int] = defaultdict(int)
        self.ttl = timedelta(days=get_policy()["voucher_ttl_days"])
        self.merchant_account: dict[int, int] = {}

    def next_id(self, model: type) -> int:
        return (db.session.scalar(select(func.max(model.id))) or 0) + 1

    # --- people, shops, accounts ---

    def people(self) -> None:
        s = self.scale
        existing = {o.name: o for o in db.session.scalars(select(Organization))}
        self.orgs = []
        sizes = self.organization_sizes()
        named = ORGANIZATIONS + [(f"奉城两新组织第{i}党支部", (OrgKind.ENTERPRISE, OrgKind.SOCIAL)[i % 2])
                                 for i in range(1, len(sizes) - len(ORGANIZATIONS) + 1)]
        for name, kind in named:
            org = existing.get(name) or Organization(name=name, kind=kind, created_at=self.now - timedelta(days=900))
            db.session.add(org)
            self.orgs.append(org)
        self.shops = []
        for i, (name, category, offered) in enumerate(MERCHANTS):
            shop = Merchant(name=name, address=f"奉城老街 {8 + 6 * i} 号", category=category,
                            description="商业街公益联盟商户，接受公益币兑换。",
                            created_at=self.now - timedelta(days=800))
            shop.services = [Service(name=n, price=p, daily_quota=q, description="", created_at=shop.created_at)
                             for n, p, q in offered]
            db.session.add(shop)
            self.shops.append(shop)
        self.issuance = system_account(SystemAccount.ISSUANCE).id
        self.escrow = system_account(SystemAccount.ESCROW).id
        system_account(SystemAccount.EXPIRED)
        system_account(SystemAccount.SETTLED)
        db.session.flush()

        phones = [COORDINATOR_PHONE] + [f"1370000{i:04d}" for i in range(2, COORDINATING_ORGS + 1)]
        phones += [f"1360000{i:04d}" for i in range(1, len(self.shops) + 1)]
        phones += [f"15{i:09d}" for i in range(s.volunteers)]
        taken = set(db.session.scalars(select(User.phone).where(User.phone.in_(phones[:200])))) | set(
            db.session.scalars(select(User.phone).where(User.phone.like("15%"))))
        if taken & set(phones):
            raise ScaleRefused(f"phone numbers seed-scale uses are taken: {sorted(taken & set(phones))[:5]}")

        password = hash_password(SCALE_PASSWORD)  # one argon2 hash for every invented user: hashing is slow
        user_id, account_id = self.next_id(User), self.next_id(Account)
        start = datetime(self.now.year - 3, 1, 1, tzinfo=UTC)

        def user(phone: str, name: str, roles: list[str], org_id: int | None, created: datetime,
                 merchant_id: int | None = None, volunteer: bool = False, party: bool = False) -> int:
            nonlocal user_id
            uid, user_id = user_id, user_id + 1
            self.out.add(User, {"id": uid, "phone": phone, "name": name, "password_hash": password,
                                "organization_id": org_id, "volunteer_no": f"FC{uid:07d}" if volunteer else None,
                                "merchant_id": merchant_id, "active": True, "session_version": 1,
                                "approved_minutes": 0, "created_at": created, "password_changed_at": created,
                                "party_member": party, "pending_activation": False})
            for role in roles:
                self.out.add(UserRole, {"user_id": uid, "role": role})
            return uid

        self.coordinators = {}  # organisation id -> coordinator user id
        for i, phone in enumerate(phones[:COORDINATING_ORGS]):
            org = self.orgs[i]
            self.coordinators[org.id] = user(phone, self.name(), [Role.COORDINATOR], org.id, start)
        self.staff = {}
        for shop, phone in zip(self.shops, phones[COORDINATING_ORGS:COORDINATING_ORGS + len(self.shops)],
                               strict=True):
            self.staff[shop.id] = user(phone, self.name(), [Role.MERCHANT], None, shop.created_at,
                                       merchant_id=shop.id)
            self.out.add(Account, {"id": account_id, "kind": AccountKind.MERCHANT.value, "user_id": None,
                                   "merchant_id": shop.id, "system_code": None, "balance": 0, "entry_count": 0,
                                   "debt": 0, "created_at": shop.created_at})
            self.merchant_account[shop.id] = account_id
            account_id += 1

        # Most volunteers registered in earlier years, a fifth during this one; nobody claims before registering.
        self.year_start = self.period_start()
        span_before = (self.year_start - start).total_seconds()
        span_during = (self.now - self.year_start).total_seconds() * 0.8
        self.volunteer_user, self.volunteer_account, self.registered = [], [], []
        membership: list[int | None] = [org.id for org, size in zip(self.orgs, sizes, strict=True)
                                        for _ in range(size)]
        membership += [None] * (s.volunteers - len(membership))
        self.rng.shuffle(membership)
        party_share = {org.id: self.rng.uniform(*PARTY_SHARE) for org in self.orgs}
        for i, phone in enumerate(phones[COORDINATING_ORGS + len(self.shops):]):
            if i > 0 and self.rng.random() < 0.2:
                created = self.year_start + timedelta(seconds=self.rng.random() * span_during)
            else:
                created = start + timedelta(seconds=self.rng.random() * span_before)
            org_id = membership[i]
            party = org_id is not None and self.rng.random() < party_share[org_id]
            uid = user(phone, self.name(), [Role.VOLUNTEER], org_id, created, volunteer=True, party=party)
            self.out.add(Account, {"id": account_id, "kind": AccountKind.VOLUNTEER.value, "user_id": uid,
                                   "merchant_id": None, "system_code": None, "balance": 0, "entry_count": 0,
                                   "debt": 0, "created_at": created})
            self.volunteer_user.append(uid)
            self.volunteer_account.append(account_id)
            self.registered.append(created.timestamp())
            account_id += 1
        self.services = [(svc.id, svc.price, svc.daily_quota, shop.id, svc.name, shop.name)
                         for shop in self.shops for svc in shop.services]
        self.out.flush()
        self.progress(f"{s.volunteers} volunteers, {len(self.shops)} shops, {len(self.services)} services")

    def organization_sizes(self) -> list[int]:
        """How many volunteers each organisation gets: the named ones first, then made-up ones while the share
        of volunteers in organisations is not reached. A small seeding scales the named ones' sizes down."""
        wanted = int(self.scale.volunteers * MEMBER_SHARE)

        def size() -> int:
            return round(MEMBERS_MIN * (MEMBERS_MAX / MEMBERS_MIN) ** self.rng.random())

        sizes = [size() for _ in ORGANIZATIONS]
        if sum(sizes) > wanted:
            return [int(n * wanted / sum(sizes)) for n in sizes]
        while sum(sizes) < wanted:  # the last may pass the share a little, never the number of volunteers
            sizes.append(min(size(), self.scale.volunteers - sum(sizes)))
        return sizes

    def name(self) -> str:
        given = self.rng.choice(GIVEN) + (self.rng.choice(GIVEN) if self.rng.random() < 0.7 else "")
        return self.rng.choice(SURNAMES) + given

    def period_start(self) -> datetime:
        """1 January of this year (local time), or of last year in the first weeks of January."""
        today = self.now.astimezone(self.zone).date()
        year = today.year if (today - date(today.year, 1, 1)).days >= 28 else today.year - 1
        return datetime(year, 1, 1, tzinfo=self.zone)

    def progress(self, what: str) -> None:
        self.echo(f"[{time.monotonic() - self.started:7.1f} s] {what}")

    # --- projects, claims, records ---

    def projects(self) -> None:
        s = self.scale
        today = self.now.astimezone(self.zone).date()
        first = self.year_start.date()
        days = max(1, (today - first).days)  # up to yesterday
        # Evenly over the days, so that no day is so crowded that its projects cannot find volunteers.
        starts = sorted((first + timedelta(days=int((i + self.rng.random()) * days / s.projects)),
                         self.rng.randrange(len(SLOTS))) for i in range(s.projects))
        per_project = [s.records // s.projects + (1 if i < s.records % s.projects else 0) for i in range(s.projects)]
        project_id, claim_id, record_id = self.next_id(Project), self.next_id(Claim), self.next_id(ServiceRecord)
        self.tx_id, self.entry_id, self.voucher_id = (self.next_id(Transaction), self.next_id(Entry),
                                                      self.next_id(Voucher))
        # Per volunteer: end of their last record (no overlap), the local day and minutes of it (daily limit,
        # auto-approval), the end times of their claims (claim limit) and their recent no-shows (suspension).
        n = s.volunteers
        last_end = [0.0] * n
        day_of = [0] * n
        day_minutes = [0] * n
        day_checkin = [0] * n
        claim_ends: dict[int, list[float]] = defaultdict(list)
        no_shows: dict[int, list[float]] = defaultdict(list)
        policy = get_policy()
        max_active, no_show_limit = policy["max_active_claims"], policy["no_show_limit"]
        coordinator_orgs = list(self.coordinators)

        for index, ((day, slot), records) in enumerate(zip(starts, per_project, strict=True)):
            hour, minute = SLOTS[slot]
            starts_at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone).astimezone(UTC)
            self.run_events(until=starts_at)
            ends_at = starts_at + timedelta(minutes=self.rng.choice((270, 300, 330, 360)))
            publish_at = starts_at - timedelta(days=1)  # a fixed lead, so claims come in project order
            claim_time = publish_at.timestamp()
            org_id = coordinator_orgs[index % len(coordinator_orgs)]
            coordinator = self.coordinators[org_id]
            rule = Rule(*self.rng.choice(RULES))
            activity, category, location = ACTIVITIES[self.rng.randrange(len(ACTIVITIES))]
            title = f"{activity}（{day.month}月{day.day}日）"
            local_day = day.toordinal()
            no_show_count = max(0, round(records * self.rng.uniform(0, 0.02)))
            chosen: list[tuple[int, int, int]] = []  # volunteer, record start offset, minutes

            def fits(v: int, begin: float, minutes: int, claim_time: float = claim_time,
                     local_day: int = local_day) -> bool:
                if self.registered[v] >= claim_time or last_end[v] > begin:
                    return False
                if day_of[v] == local_day and day_minutes[v] + minutes > DAILY_LIMIT_MINUTES:
                    return False
                ends = claim_ends.get(v)
                if ends:
                    ends[:] = [e for e in ends if e > claim_time]
                    if len(ends) >= max_active:
                        return False
                return True

            picked: set[int] = set()
            wanted = records + no_show_count
            fallback = None
            while len(chosen) < wanted:
                offset = self.rng.choice((0, 0, 0, 10, 15, 30))
                minutes = self.rng.randint(120, 240)
                begin = starts_at.timestamp() + offset * 60
                end = begin + minutes * 60
                if len(chosen) == 0 and fits(0, begin, minutes):
                    v = 0  # the long-history volunteer joins every project the rules let them
                else:
                    v = None
                    for _ in range(50):
                        c = self.rng.randrange(n)
                        if c not in picked and fits(c, begin, minutes):
                            v = c
                            break
                    if v is None:  # small populations: walk everyone once before giving up
                        fallback = fallback or iter(self.rng.sample(range(n), n))
                        v = next((c for c in fallback if c not in picked and fits(c, begin, minutes)), None)
                        if v is None:
                            raise ScaleRefused(f"{n} volunteers cannot fill project {index + 1} with {wanted} "
                                               "claims within the rules; ask for more volunteers or fewer records")
                picked.add(v)
                chosen.append((v, offset, minutes))
                claim_ends[v].append(ends_at.timestamp())
                if len(chosen) > records:  # the last few are no-shows
                    if len([t for t in no_shows[v] if t > claim_time - 90 * 86400]) >= no_show_limit - 1:
                        picked.discard(v)
                        chosen.pop()
                        claim_ends[v].pop()
                        continue
                    no_shows[v].append(starts_at.timestamp())
                    continue
                last_end[v] = end
                if day_of[v] != local_day:
                    day_of[v], day_minutes[v], day_checkin[v] = local_day, 0, 0
                day_minutes[v] += minutes

            capacity = wanted + self.rng.choice((0, 0, 0, 5, 10, 20))
            created = publish_at - timedelta(hours=self.rng.randint(2, 72))
            self.out.add(Project, {
                "id": project_id, "title": title, "category": category, "description": f"{activity}：{location}",
                "location": location, "organization_id": org_id, "created_by_id": coordinator,
                "starts_at": starts_at, "ends_at": ends_at, "publish_at": publish_at,
                "status": ProjectStatus.CLOSED.value if self.rng.random() < 0.3 else ProjectStatus.PUBLISHED.value,
                "capacity": capacity, "waitlist_capacity": capacity, "block_minutes": rule.block_minutes,
                "coins_per_block": rule.coins_per_block, "confirmed_count": wanted, "waitlist_count": 0,
                "waitlist_seq": 0, "created_at": created})
            for k, (v, offset, minutes) in enumerate(chosen):
                claimed_at = publish_at + timedelta(milliseconds=200 + 37 * k + self.rng.randrange(30))
                no_show = k >= records
                self.out.add(Claim, {
                    "id": claim_id, "project_id": project_id, "volunteer_id": self.volunteer_user[v],
                    "status": (ClaimStatus.NO_SHOW if no_show else ClaimStatus.CONFIRMED).value,
                    "waitlist_seq": None, "created_at": claimed_at, "confirmed_at": claimed_at, "cancelled_at": None,
                    "no_show_at": starts_at + timedelta(hours=1) if no_show else None})
                if not no_show:
                    checkin_ok = day_checkin[v] + minutes <= AUTO_APPROVE_MINUTES
                    source = self.record(record_id, claim_id, v, project_id, starts_at + timedelta(minutes=offset),
                                         minutes, rule, title, coordinator, checkin_ok)
                    if source == RecordSource.CHECKIN:
                        day_checkin[v] += minutes
                    record_id += 1
                claim_id += 1
            self.counts["claims"] += len(chosen)
            self.counts["no_shows"] += len(chosen) - records
            project_id += 1
            if (index + 1) % max(1, s.projects // 20) == 0:
                self.progress(f"projects {index + 1}/{s.projects}, records {self.counts['records']}, "
                              f"transactions {self.tx_id - 1}, vouchers {self.counts['vouchers']}")
        self.run_events(until=self.now)

    def record(self, record_id: int, claim_id: int, v: int, project_id: int, started_at: datetime, minutes: int,
               rule: Rule, title: str, coordinator: int, checkin_ok: bool) -> RecordSource:
        """One service record with its review. Check-ins that keep the day within 8 h are approved at check-out;
        manual records and longer check-ins wait for the organiser's coordinator, who may not have got to them."""
        rng = self.rng
        ended_at = started_at + timedelta(minutes=minutes)
        source = RecordSource.CHECKIN if rng.random() < 0.8 else RecordSource.MANUAL
        row = {"id": record_id, "claim_id": claim_id, "volunteer_id": self.volunteer_user[v],
               "project_id": project_id, "started_at": started_at, "ended_at": ended_at, "minutes": minutes,
               "note": "" if source == RecordSource.CHECKIN else "补录：现场签到未成功", "source": source.value,
               "status": RecordStatus.APPROVED.value, "reason": None, "reviewed_by_id": None, "reviewed_at": ended_at,
               "created_at": started_at if source == RecordSource.CHECKIN else ended_at + timedelta(hours=2)}
        self.counts["records"] += 1
        if source == RecordSource.MANUAL or not checkin_ok:
            reviewed = row["created_at"] + timedelta(hours=rng.uniform(1, 96))
            if reviewed >= self.now:
                row.update(status=RecordStatus.PENDING.value, reviewed_at=None)
                self.out.add(ServiceRecord, row)
                return source
            row.update(reviewed_by_id=coordinator, reviewed_at=reviewed)
            if rng.random() < 0.15:
                row.update(status=RecordStatus.REJECTED.value, reason="与签到表不符，请核对后重新补录")
                self.out.add(ServiceRecord, row)
                return source
        earned = earned_coins(minutes, rule)
        approved = row["reviewed_at"]
        revoke_at = approved + timedelta(days=rng.uniform(1, 20)) if rng.random() < 0.004 else None
        if revoke_at is not None and revoke_at < self.now:
            row.update(status=RecordStatus.REVOKED.value, reason="重复记录，撤销", reviewed_by_id=coordinator,
                       reviewed_at=revoke_at)
        else:
            revoke_at = None
            self.out.add(CreditState, {"volunteer_id": self.volunteer_user[v], "project_id": project_id,
                                       "approved_minutes": minutes, "issued_net": earned, "shortfall": 0})
            self.approved_minutes[self.volunteer_user[v]] += minutes
        self.out.add(ServiceRecord, row)
        actor = row["reviewed_by_id"] if source == RecordSource.MANUAL or not checkin_ok else None
        if earned > 0:
            memo = memos.issued(title, earned // rule.coins_per_block * rule.block_minutes)
            self.push(approved, "issue", (record_id, v, earned, actor, memo))
            appetite = 0.6 if v == 0 else 0.09
            if rng.random() < appetite:
                self.push(approved + timedelta(hours=rng.uniform(1, 240)), "take", (v,))
        if revoke_at is not None:
            self.push(revoke_at, "revoke", (record_id, v, project_id, earned, coordinator, title))
        return source

    # --- the ledger, in time order ---

    def push(self, at: datetime, kind: str, payload: tuple) -> None:
        if at < self.now:
            self.event_seq += 1
            heapq.heappush(self.events, (at, self.event_seq, kind, payload))

    def run_events(self, until: datetime) -> None:
        """Post every event due before `until`, the start of the next project: everything still to come happens
        after it, so transactions are written in time order."""
        while self.events and self.events[0][0] < until:
            at, _, kind, payload = heapq.heappop(self.events)
            getattr(self, f"on_{kind}")(at, *payload)

    def post(self, kind: TxKind, source: int, target: int, amount: int, at: datetime, *, actor: int | None,
             memo: str, ref: tuple[str, int], key: str) -> None:
        """What ledger.services.post writes for one move, with the balances kept here instead of by UPDATE."""
        net = {source: -amount, target: amount}
        if self.balance[source] < amount and source != self.issuance:
            raise AssertionError(f"account {source} would go negative")  # a bug here, never bad input
        tx = self.tx_id
        self.tx_id += 1
        self.out.add(Transaction, {
            "id": tx, "kind": kind.value, "idempotency_key": key,
            "fingerprint": _fingerprint(kind.value, {a: (None, n) for a, n in net.items()}, ref),
            "actor_id": actor, "created_at": at, "amount": amount, "memo": memo, "ref_type": ref[0],
            "ref_id": ref[1]})
        for account in sorted(net):
            self.balance[account] += net[account]
            self.entries[account] += 1
            self.out.add(Entry, {"id": self.entry_id, "transaction_id": tx, "account_id": account,
                                 "amount": net[account], "balance_after": self.balance[account],
                                 "seq": self.entries[account]})
            self.entry_id += 1
        self.counts[f"tx_{kind.value}"] += 1
        if kind.value in DEBT_PAYING_KINDS and (pay := min(self.debt[target], amount)) > 0:
            # As ledger.services.post does: coins a volunteer in debt receives pay the debt first.
            self.debt[target] -= pay
            self.post(TxKind.CLAWBACK, target, self.issuance, pay, at, actor=actor,
                      memo=memos.write(memos.DEBT_PAID, coins=pay), ref=(DEBT_REF, tx), key=f"debt:{tx}:{target}")

    def on_issue(self, at: datetime, record_id: int, v: int, coins: int, actor: int | None, memo: str) -> None:
        self.post(TxKind.ISSUE, self.issuance, self.volunteer_account[v], coins, at, actor=actor, memo=memo,
                  ref=("service_record", record_id), key=f"hours:{record_id}:approve")

    def on_revoke(self, at: datetime, record_id: int, v: int, project_id: int, earned: int, actor: int,
                  title: str) -> None:
        """The cumulative rule after a revocation: claw back up to the balance; the rest stays as debt."""
        claw = min(earned, self.balance[self.volunteer_account[v]])
        if claw > 0:
            self.post(TxKind.CLAWBACK, self.volunteer_account[v], self.issuance, claw, at, actor=actor,
                      memo=memos.write(memos.CLAWED_BACK, project=title), ref=("service_record", record_id),
                      key=f"hours:{record_id}:revoke")
        self.debt[self.volunteer_account[v]] += earned - claw
        self.out.add(CreditState, {"volunteer_id": self.volunteer_user[v], "project_id": project_id,
                                   "approved_minutes": 0, "issued_net": earned - claw, "shortfall": earned - claw})

    def on_take(self, at: datetime, v: int) -> None:
        account = self.volunteer_account[v]
        day = at.astimezone(self.zone).date()
        affordable = [s for s in self.services if s[1] <= self.balance[account]
                      and (s[2] is None or self.quota_taken[(s[0], day)] < s[2])]
        if not affordable:
            return
        service_id, price, quota, shop_id, service_name, shop_name = self.rng.choice(affordable)
        if quota is not None:
            self.quota_taken[(service_id, day)] += 1
        voucher = self.voucher_id
        self.voucher_id += 1
        self.post(TxKind.HOLD, account, self.escrow, price, at, actor=self.volunteer_user[v],
                  memo=memos.write(memos.HELD, service=f"{shop_name} {service_name}"), ref=("voucher", voucher),
                  key=f"voucher:{voucher}:hold")
        row = {"id": voucher, "code": self.code(), "volunteer_id": self.volunteer_user[v], "service_id": service_id,
               "merchant_id": shop_id, "coins": price, "status": VoucherStatus.ISSUED.value, "day": day,
               "issued_at": at, "expires_at": at + self.ttl, "redeemed_at": None, "redeemed_by_id": None,
               "closed_at": None, "issue_key": None, "redeem_key": None, "settlement_id": None}
        self.counts["vouchers"] += 1
        fate = self.rng.random()
        if fate < 0.9:
            close, kind = at + timedelta(minutes=self.rng.uniform(10, 6 * 24 * 60)), "redeem"
        elif fate < 0.96:
            close, kind = at + timedelta(hours=self.rng.uniform(1, 48)), "cancel"
        else:
            close, kind = row["expires_at"] + timedelta(minutes=self.rng.uniform(0, 60)), "expire"
            if row["expires_at"] <= self.now <= close:
                close = self.now - timedelta(seconds=1)  # the hourly expiry job has run since
        if close < self.now:
            self.push(close, kind, (row, service_name, v))
        else:
            self.out.add(Voucher, row)  # still outstanding: its coins stay in escrow

    def code(self) -> str:
        while (code := "".join(self.rng.choice(CROCKFORD) for _ in range(CODE_LENGTH))) in self.codes:
            pass
        self.codes.add(code)
        return code

    def on_redeem(self, at: datetime, row: dict[str, Any], service_name: str, v: int) -> None:
        staff = self.staff[row["merchant_id"]]
        self.post(TxKind.REDEEM, self.escrow, self.merchant_account[row["merchant_id"]], row["coins"], at,
                  actor=staff, memo=memos.write(memos.REDEEMED, service=service_name), ref=("voucher", row["id"]),
                  key=f"voucher:{row['id']}:redeem")
        row.update(status=VoucherStatus.REDEEMED.value, redeemed_at=at, redeemed_by_id=staff)
        self.out.add(Voucher, row)

    def on_cancel(self, at: datetime, row: dict[str, Any], service_name: str, v: int,
                  status: VoucherStatus = VoucherStatus.CANCELLED) -> None:
        self.post(TxKind.RELEASE, self.escrow, self.volunteer_account[v], row["coins"], at,
                  actor=row["volunteer_id"] if status == VoucherStatus.CANCELLED else None,
                  memo=memos.CANCELLED if status == VoucherStatus.CANCELLED else memos.LAPSED,
                  ref=("voucher", row["id"]), key=f"voucher:{row['id']}:release")
        if self.quota_of(row["service_id"]) is not None:
            self.quota_taken[(row["service_id"], row["day"])] -= 1  # a closed voucher gives its place back
        row.update(status=status.value, closed_at=at)
        self.out.add(Voucher, row)

    def on_expire(self, at: datetime, row: dict[str, Any], service_name: str, v: int) -> None:
        self.on_cancel(at, row, service_name, v, status=VoucherStatus.EXPIRED)

    def quota_of(self, service_id: int) -> int | None:
        return next(s[2] for s in self.services if s[0] == service_id)

    # --- what is cached: balances, approved minutes, quota counters ---

    def finish(self) -> None:
        for (service_id, day), taken in self.quota_taken.items():
            if taken:
                self.out.add(ServiceDay, {"service_id": service_id, "day": day, "taken": taken})
        self.out.flush()
        self.out.update(Account, ("balance", "entry_count", "debt"),
                        [(a, self.balance[a], n, self.debt[a]) for a, n in self.entries.items()])
        self.out.update(User, ("approved_minutes",), list(self.approved_minutes.items()))
        db.session.commit()
        self.progress("balances and approved minutes written")
        if self.out.postgres:
            for table in self.out.tables:  # the ids were given explicitly, so move the sequences past them
                if "id" in table.c:
                    db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                            f"(SELECT max(id) FROM {table.name}))"))
            db.session.commit()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")  # index-only scans need the visibility map
        else:
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        self.progress("statistics gathered (ANALYZE)")


def seed_scale(scale: Scale, *, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Fill an empty database with `scale` volunteers, projects and service records and the matching ledger.
    Raises ScaleRefused when the database already has projects, shops or ledger transactions. Commits as it
    goes (a failed run leaves a partial database: start again with a new one)."""
    check_empty()
    if db.engine.dialect.name == "sqlite":
        # A bigger page cache: the indexes on volunteer ids take inserts in random order.
        db.session.execute(text("PRAGMA cache_size = -262144"))
    seeder = _Seeder(scale, echo)
    seeder.people()
    seeder.projects()
    seeder.finish()
    # As the hourly `flask credits rollup` would have done by now: finished days summed for the dashboard.
    days = in_transaction(lambda: roll_up_ledger(utcnow()))
    echo(f"ledger days summed: {days}")
    return {"rows": dict(seeder.out.written), "elapsed": time.monotonic() - seeder.started,
            "escrow": seeder.balance[seeder.escrow],
            "long_history_entries": seeder.entries[seeder.volunteer_account[0]], **seeder.counts}
