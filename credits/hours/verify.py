"""Invariant 5: each (volunteer, project) issued_net matches its approved minutes under its rule."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select, union

from credits.extensions import db
from credits.hours.models import CreditState, RecordStatus, ServiceRecord
from credits.ledger.models import Account, Entry, Transaction, TxKind
from credits.ledger.verify import Breach
from credits.projects.models import Project


def check_credit_states() -> list[Breach]:
    """Each state's minutes equal its approved records; its issued_net equals the issue and clawback entries
    posted for its records, and is never below what the minutes earn (above it is debt still to net). One
    query returns only the pairs in breach, so memory stays flat at any scale."""
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
    records, ledger = func.coalesce(approved.c.total, 0), func.coalesce(posted.c.total, 0)
    earned = minutes // Project.block_minutes * Project.coins_per_block
    rows = db.session.execute(
        select(keys.c.v, keys.c.p, minutes, issued, records, ledger, CreditState.volunteer_id.is_not(None), earned)
        .outerjoin(CreditState, (CreditState.volunteer_id == keys.c.v) & (CreditState.project_id == keys.c.p))
        .outerjoin(approved, (approved.c.v == keys.c.v) & (approved.c.p == keys.c.p))
        .outerjoin(posted, (posted.c.v == keys.c.v) & (posted.c.p == keys.c.p))
        .join(Project, Project.id == keys.c.p)
        .where(or_(minutes != records, issued != ledger,
                   and_(CreditState.volunteer_id.is_not(None), issued < earned)))
        .order_by(keys.c.v, keys.c.p))
    breaches = []
    for volunteer, project, minutes, issued, records, ledger, has_state, earned in rows:
        label = f"volunteer {volunteer} project {project}"
        if minutes != records:
            breaches.append(Breach(5, label, f"credit state has {minutes} approved minutes, records {records}"))
        if issued != ledger:
            breaches.append(Breach(5, label, f"issued_net {issued} but the ledger holds {ledger}"))
        if has_state and issued < earned:
            breaches.append(Breach(5, label, f"issued_net {issued} is below the {earned} coins its minutes earn"))
    return breaches
