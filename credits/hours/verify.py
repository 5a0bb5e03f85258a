"""Invariant 5: each (volunteer, project) issued_net matches its approved minutes under its rule; and each
volunteer's debt is the shortfalls of their revocations less the payments posted (SPEC 2.3)."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select, union

from credits.extensions import db
from credits.hours.models import CreditState, RecordStatus, ServiceRecord
from credits.ledger.models import Account, AccountKind, Entry, Transaction, TxKind
from credits.ledger.services import DEBT_REF
from credits.ledger.verify import Breach
from credits.projects.models import Project


def check_credit_states() -> list[Breach]:
    """Each state's minutes equal its approved records; its issued_net equals the issue and clawback entries
    posted for its records; and issued_net less the shortfall moved to the volunteer's debt is exactly what the
    minutes earn. One query returns only the pairs in breach, so memory stays flat at any scale."""
    approved = (select(ServiceRecord.volunteer_id.label("v"), ServiceRecord.project_id.label("p"),
                       func.sum(ServiceRecord.minutes).label("total"))
                .where(ServiceRecord.status == RecordStatus.APPROVED)
                .group_by(ServiceRecord.volunteer_id, ServiceRecord.project_id).subquery())
    posted = (
        select(ServiceRecord.volunteer_id.label("v"), ServiceRecord.project_id.label("p"),
               func.sum(Entry.amount).label("total"))
        .join(Transaction, (Transaction.ref_type == "service_record") & (Transaction.ref_id == ServiceRecord.id))
        .join(Entry, Entry.transaction_id == Transaction.id)
        .join(Account, (Account.id == Entry.account_id) & (Account.user_id == ServiceRecord.volunteer_id))
        .where(Transaction.kind.in_((TxKind.ISSUE, TxKind.CLAWBACK)))
        .group_by(ServiceRecord.volunteer_id, ServiceRecord.project_id).subquery())
    keys = union(select(approved.c.v, approved.c.p), select(posted.c.v, posted.c.p),
                 select(CreditState.volunteer_id, CreditState.project_id)).subquery()
    minutes = func.coalesce(CreditState.approved_minutes, 0)
    issued = func.coalesce(CreditState.issued_net, 0)
    shortfall = func.coalesce(CreditState.shortfall, 0)
    records, ledger = func.coalesce(approved.c.total, 0), func.coalesce(posted.c.total, 0)
    earned = minutes // Project.block_minutes * Project.coins_per_block
    rows = db.session.execute(
        select(keys.c.v, keys.c.p, minutes, issued, records, ledger, CreditState.volunteer_id.is_not(None), earned,
               shortfall)
        .outerjoin(CreditState, (CreditState.volunteer_id == keys.c.v) & (CreditState.project_id == keys.c.p))
        .outerjoin(approved, (approved.c.v == keys.c.v) & (approved.c.p == keys.c.p))
        .outerjoin(posted, (posted.c.v == keys.c.v) & (posted.c.p == keys.c.p))
        .join(Project, Project.id == keys.c.p)
        .where(or_(minutes != records, issued != ledger,
                   and_(CreditState.volunteer_id.is_not(None), issued - shortfall != earned)))
        .order_by(keys.c.v, keys.c.p))
    breaches = []
    for volunteer, project, minutes, issued, records, ledger, has_state, earned, shortfall in rows:
        label = f"volunteer {volunteer} project {project}"
        if minutes != records:
            breaches.append(Breach(5, label, f"credit state has {minutes} approved minutes, records {records}"))
        if issued != ledger:
            breaches.append(Breach(5, label, f"issued_net {issued} but the ledger holds {ledger}"))
        if has_state and issued - shortfall != earned:
            breaches.append(Breach(5, label, f"issued_net {issued} less shortfall {shortfall} is not the {earned} "
                                             "coins its minutes earn"))
    return breaches


def check_debts() -> list[Breach]:
    """Each volunteer account's debt equals the shortfalls recorded on its credit states less the debt payments
    posted from it — and only volunteer accounts owe. One query returns only the accounts in breach."""
    owed = (select(CreditState.volunteer_id.label("user_id"), func.sum(CreditState.shortfall).label("total"))
            .group_by(CreditState.volunteer_id).subquery())
    paid = (select(Entry.account_id, (-func.sum(Entry.amount)).label("total"))
            .join(Transaction, Transaction.id == Entry.transaction_id)
            .where(Transaction.kind == TxKind.CLAWBACK, Transaction.ref_type == DEBT_REF)
            .group_by(Entry.account_id).subquery())
    owed_total, paid_total = func.coalesce(owed.c.total, 0), func.coalesce(paid.c.total, 0)
    rows = db.session.execute(
        select(Account, owed_total, paid_total)
        .outerjoin(owed, owed.c.user_id == Account.user_id).outerjoin(paid, paid.c.account_id == Account.id)
        .where(Account.kind == AccountKind.VOLUNTEER, Account.debt != owed_total - paid_total)
        .order_by(Account.id)).all()
    return [Breach(5, f"account {account.id} (volunteer {account.user_id})",
                   f"debt {account.debt} but shortfalls {owed_t} less payments {paid_t} leave {owed_t - paid_t}")
            for account, owed_t, paid_t in rows]
