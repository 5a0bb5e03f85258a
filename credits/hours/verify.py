"""Invariant 5: each (volunteer, project) issued_net matches its approved minutes under its rule."""

from __future__ import annotations

from sqlalchemy import func, select

from credits.extensions import db
from credits.hours.models import CreditState, RecordStatus, ServiceRecord
from credits.hours.services import earned_coins
from credits.ledger.models import Account, Entry, Transaction, TxKind
from credits.ledger.verify import Breach


def _pairs(stmt) -> dict[tuple[int, int], int]:
    return {(volunteer, project): int(total) for volunteer, project, total in db.session.execute(stmt)}


def check_credit_states() -> list[Breach]:
    """Each state's minutes equal its approved records; its issued_net equals the issue and clawback entries
    posted for its records, and is never below what the minutes earn (above it is debt still to net)."""
    approved = _pairs(select(ServiceRecord.volunteer_id, ServiceRecord.project_id, func.sum(ServiceRecord.minutes))
                      .where(ServiceRecord.status == RecordStatus.APPROVED)
                      .group_by(ServiceRecord.volunteer_id, ServiceRecord.project_id))
    posted = _pairs(
        select(ServiceRecord.volunteer_id, ServiceRecord.project_id, func.sum(Entry.amount))
        .join(Transaction, (Transaction.ref_type == "service_record") & (Transaction.ref_id == ServiceRecord.id))
        .join(Entry, Entry.transaction_id == Transaction.id)
        .join(Account, (Account.id == Entry.account_id) & (Account.user_id == ServiceRecord.volunteer_id))
        .where(Transaction.kind.in_((TxKind.ISSUE, TxKind.CLAWBACK)))
        .group_by(ServiceRecord.volunteer_id, ServiceRecord.project_id))
    breaches = []
    states = {(s.volunteer_id, s.project_id): s for s in db.session.scalars(select(CreditState))}
    for key in set(approved) | set(posted) | set(states):
        state = states.get(key)
        label = f"volunteer {key[0]} project {key[1]}"
        minutes, issued = (state.approved_minutes, state.issued_net) if state else (0, 0)
        if minutes != approved.get(key, 0):
            breaches.append(Breach(5, label, f"credit state has {minutes} approved minutes, records "
                                             f"{approved.get(key, 0)}"))
        if issued != posted.get(key, 0):
            breaches.append(Breach(5, label, f"issued_net {issued} but the ledger holds {posted.get(key, 0)}"))
        if state and issued < earned_coins(minutes, state.project):
            breaches.append(Breach(5, label, f"issued_net {issued} is below the "
                                             f"{earned_coins(minutes, state.project)} coins its minutes earn"))
    return breaches
