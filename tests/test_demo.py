"""The demo bank loads through the real services and leaves a clean, lively ledger."""

from __future__ import annotations

from sqlalchemy import func, select

from huinong import demo
from huinong.db import transaction
from huinong.institutions.models import Institution, Office
from huinong.ledger.models import Account, Transfer
from huinong.ledger.verify import verify
from huinong.parties.geography.models import Grid
from huinong.parties.models import Customer
from huinong.payments.bills.models import Bill
from huinong.payments.models import Payment
from huinong.payments.service_points.models import ServicePoint
from huinong.payments.subsidies.models import SubsidyBatch
from huinong.security.identities import sessions


def test_demo_bank_has_offices_customers_and_history(factory):
    code = demo.load(factory, customers=40, seed=7)
    assert not demo.is_empty(factory)
    with factory() as session:
        institution = session.scalar(select(Institution).where(Institution.code == code))
        assert institution is not None
        iid = institution.id
        offices = session.scalars(select(Office.kind).where(Office.institution_id == iid)).all()
        assert sorted(set(offices)) == ["branch", "head", "outlet"]
        deposit_accounts = session.scalar(
            select(func.count()).where(Account.institution_id == iid, Account.code == 2011)
        )
        assert deposit_accounts >= 38
        kinds = dict(
            session.execute(
                select(Payment.kind, func.count())
                .where(Payment.institution_id == iid)
                .group_by(Payment.kind)
            ).all()
        )
        assert kinds.get("transfer", 0) > 50 and kinds.get("cash_withdrawal", 0) > 20
        first, last = session.execute(
            select(func.min(Transfer.timestamp), func.max(Transfer.timestamp)).where(
                Transfer.institution_id == iid
            )
        ).one()
        assert (last - first).days >= 60  # the history is spread over months
        assert verify(session, institution_id=iid) == []
    with factory() as session:
        points = session.scalars(
            select(ServicePoint).where(ServicePoint.institution_id == iid)
        ).all()
        assert [p.village_code for p in points] == [demo.DEMO_VILLAGES[0]]
        grids = session.scalars(select(Grid).where(Grid.institution_id == iid)).all()
        assert len(grids) == 1
        placed = session.scalar(
            select(func.count()).where(
                Customer.institution_id == iid, Customer.village_code.in_(demo.DEMO_VILLAGES)
            )
        )
        assert placed >= 38
        statuses = session.scalars(select(Bill.status).where(Bill.institution_id == iid)).all()
        assert sorted(statuses).count("paid") == 1 and len(statuses) == 8
        batch = session.scalars(
            select(SubsidyBatch).where(SubsidyBatch.institution_id == iid)
        ).one()
        assert batch.status == "disbursed", batch.status
        assert verify(session, institution_id=iid) == []
    for username, _, roles, _ in demo.DEMO_STAFF:
        with transaction(factory) as session:
            signed_in = sessions.sign_in_staff(
                session, institution_code=code, username=username, password=demo.DEMO_PASSWORD
            )
        assert isinstance(signed_in, sessions.TokenPair), signed_in
        assert signed_in.principal.roles == set(roles)
