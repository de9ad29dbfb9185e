"""The demo institution: a county rural commercial bank with some history.

``huinong demo load`` (and ``make run`` on an empty database) creates 示范县农村商业银行 with a
head office, branches and outlets, a staff user for each kind of work (``DEMO_STAFF``, all with
the published ``DEMO_PASSWORD``), its chart of accounts and opening capital in the vault,
a few hundred customers (farmers with valid resident ID numbers, shops with unified social
credit codes), their deposit accounts, and ninety days of teller cash, transfers with fees and
a few reversals. Everything goes through the same services as the API, one transaction per
business event, with the clock set back to when the event happened — so the ledger, the
statements and ``ledger verify`` see a real history. The village end (``_village_end``) and
the credit models and village campaign (``demo_credit``) follow. The data are random but
reproducible (``seed``); the names and numbers belong to nobody.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from rich.progress import Progress
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huinong import clock, demo_credit
from huinong.db import run_in_transaction
from huinong.errors import HuinongError
from huinong.institutions import service as institutions
from huinong.institutions.models import Institution, OfficeKind
from huinong.ledger import service as ledger
from huinong.ledger.chart import AccountCode
from huinong.ledger.types import TransferInput
from huinong.parties import rules as party_rules
from huinong.parties import service as parties
from huinong.parties.geography import service as geography
from huinong.parties.models import CustomerKind
from huinong.payments import service as payments
from huinong.payments.bills import billers
from huinong.payments.bills import intake as bill_intake
from huinong.payments.bills import paying as bill_paying
from huinong.payments.bills.models import Bill
from huinong.payments.codes import TransferCode
from huinong.payments.service_points import points as service_points
from huinong.payments.subsidies import approval, disbursement, importing
from huinong.security.identities import staff_users
from huinong.security.identities.models import StaffUser

DEMO_CODE = "DEMO-RCB"
DEMO_NAME = "示范县农村商业银行 Demo County Rural Commercial Bank"
OPENING_CAPITAL_FEN = 5_000_000_000  # 50,000,000.00 yuan in the vault
HISTORY_DAYS = 90

OFFICES: tuple[tuple[str, str, OfficeKind, str | None], ...] = (
    ("HQ", "总行营业部 Head office", OfficeKind.head, None),
    ("CG", "城关支行 Chengguan branch", OfficeKind.branch, "HQ"),
    ("DZ", "东镇支行 Dongzhen branch", OfficeKind.branch, "HQ"),
    ("XX", "西乡支行 Xixiang branch", OfficeKind.branch, "HQ"),
    ("CG-01", "城关南街网点 South Street outlet", OfficeKind.outlet, "CG"),
    ("CG-02", "城关集贸市场网点 Market outlet", OfficeKind.outlet, "CG"),
    ("DZ-01", "东镇李家庄网点 Lijiazhuang outlet", OfficeKind.outlet, "DZ"),
    ("DZ-02", "东镇果园村网点 Guoyuan village outlet", OfficeKind.outlet, "DZ"),
    ("XX-01", "西乡河湾网点 Hewan outlet", OfficeKind.outlet, "XX"),
)
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "建国秀英桂兰志强海燕春华玉梅德胜丽娟金凤永红立新淑珍文军小平红梅长青国庆"
SHOPS = ("农资店", "百货超市", "蓝莓合作社", "粮油店", "家庭农场", "果品收购站", "养殖场")
AREA_CODES = ("370281", "370282", "370283", "370211")
# Demo sign-ins, one per kind of staff work. The password is published in the README: these
# users exist only in a demo database, never in a real institution.
DEMO_PASSWORD = "Demo-2026!"
DEMO_STAFF: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("admin", "系统管理员 Administrator", ("admin",), "HQ"),
    ("teller", "柜员 Teller", ("teller",), "CG-01"),
    ("manager", "客户经理 Account manager", ("account_manager",), "DZ-02"),
    ("approver", "审批员 Approver", ("approver",), "HQ"),
    ("risk", "风险经理 Risk officer", ("risk_officer",), "HQ"),
    ("auditor", "审计员 Auditor", ("auditor",), "HQ"),
    ("cadre1", "村干部 Village cadre 1", ("reviewer",), "DZ-02"),
    ("cadre2", "村干部 Village cadre 2", ("reviewer",), "DZ-02"),
    ("cadre3", "外部关键人 Key person", ("reviewer",), "DZ-02"),
)
T = TypeVar("T")


@dataclass
class _Customer:
    id: uuid.UUID
    account_number: str
    kind: CustomerKind


def is_empty(factory: sessionmaker[Session]) -> bool:
    with factory() as session:
        return session.scalar(select(Institution.id).limit(1)) is None


def _resident_id(rng: random.Random) -> str:
    born = datetime(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
    body = f"{rng.choice(AREA_CODES)}{born:%Y%m%d}{rng.randrange(1, 999):03d}"
    return body + party_rules.resident_id_check_char(body)


def _credit_code(rng: random.Random) -> str:
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "92" + rng.choice(AREA_CODES) + "".join(rng.choice(chars) for _ in range(9))
    return body + party_rules.uscc_check_char(body)


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(0, 10**9):09d}"


def _name(rng: random.Random) -> str:
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    return rng.choice(SURNAMES) + given


def _at(moment: datetime, factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """Run one business event as if it happened at ``moment``."""
    with clock.frozen(moment):
        return run_in_transaction(factory, work)


def load(
    factory: sessionmaker[Session],
    *,
    customers: int = 300,
    seed: int = 2026,
    progress: Progress | None = None,
) -> str:
    """Create the demo institution and its history; returns the institution code."""
    rng = random.Random(seed)
    start = clock.now().replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(
        days=HISTORY_DAYS
    )

    def found(session: Session) -> uuid.UUID:
        institution = institutions.create_institution(
            session,
            code=DEMO_CODE,
            name=DEMO_NAME,
            business_date=clock.local_date(clock.now()),
        )
        ledger.create_chart_of_accounts(session, institution_id=institution.id, ledger="CNY")
        offices = {
            code: institutions.create_office(
                session,
                institution_id=institution.id,
                code=code,
                name=name,
                kind=kind,
                parent_code=parent,
            ).id
            for code, name, kind, parent in OFFICES
        }
        for username, display_name, roles, office in DEMO_STAFF:
            staff_users.create_staff_user(
                session,
                institution_id=institution.id,
                username=username,
                display_name=display_name,
                roles=roles,
                password=DEMO_PASSWORD,
                office_id=offices[office],
                must_change_password=False,
            )
        vault = ledger.system_account(
            session, institution_id=institution.id, code=AccountCode.cash_in_vault
        )
        capital = ledger.system_account(
            session, institution_id=institution.id, code=AccountCode.paid_in_capital
        )
        ledger.create_transfers(
            session,
            institution_id=institution.id,
            batch=[
                TransferInput(
                    id=uuid.uuid5(payments.TRANSFER_ID_NAMESPACE, f"{institution.id}/cap"),
                    debit_account_id=vault.id,
                    credit_account_id=capital.id,
                    amount=OPENING_CAPITAL_FEN,
                    ledger="CNY",
                    code=TransferCode.opening_capital,
                    reference="opening capital",
                )
            ],
        )
        return institution.id

    institution_id = _at(start, factory, found)
    events = customers * 7
    task = (
        progress.add_task("demo bank: customers and history", total=customers + events)
        if progress
        else None
    )

    opened: list[_Customer] = []
    for index in range(customers):
        moment = start + timedelta(minutes=index * 37 % (HISTORY_DAYS * 24 * 60 // 3))
        is_shop = index % 12 == 0
        open_one = partial(
            _open_customer,
            institution_id=institution_id,
            kind=CustomerKind.merchant if is_shop else CustomerKind.individual,
            name=(_name(rng)[:1] + "记" + rng.choice(SHOPS)) if is_shop else _name(rng),
            id_number=_credit_code(rng) if is_shop else _resident_id(rng),
            phone=_phone(rng),
            client_id=f"demo-open-{index}",
            amount=rng.randrange(50_000, 5_000_000 if is_shop else 800_000, 100),
        )
        with contextlib.suppress(HuinongError):  # a random ID number may repeat: skip it
            opened.append(_at(moment, factory, open_one))
        if progress and task is not None:
            progress.advance(task)

    span = HISTORY_DAYS * 24 * 3600 - 30 * 86400 - 3600
    moments = sorted(start + timedelta(days=30, seconds=rng.randrange(span)) for _ in range(events))
    reversible: list[uuid.UUID] = []
    for number, moment in enumerate(moments):
        payer, payee = rng.sample(opened, 2)
        roll = rng.random()
        key = f"demo-{number}"
        common = {"institution_id": institution_id, "client_id": key}
        if roll < 0.35:
            work = partial(
                payments.cash_deposit,
                account_number=payer.account_number,
                amount=rng.randrange(1_000, 300_000, 100),
                **common,
            )
        elif roll < 0.6:
            work = partial(
                payments.cash_withdrawal,
                account_number=payer.account_number,
                amount=rng.randrange(1_000, 100_000, 100),
                **common,
            )
        elif roll < 0.98 or not reversible:
            work = partial(
                payments.transfer,
                from_account_number=payer.account_number,
                to_account_number=payee.account_number,
                amount=rng.randrange(100, 200_000),
                fee=rng.choice((0, 0, 0, 200, 500)),
                memo=rng.choice((None, "化肥款", "蓝莓收购款", "还款", "生活费")),
                **common,
            )
        else:
            work = partial(
                payments.reverse,
                payment_id=reversible.pop(rng.randrange(len(reversible))),
                memo="柜员冲正 teller reversal",
                **common,
            )
        try:
            payment = _at(moment, factory, work)
        except HuinongError:  # insufficient funds and the like: a teller would refuse it too
            payment = None
        if payment is not None and payment.kind != "reversal":
            reversible.append(payment.id)
        if progress and task is not None:
            progress.advance(task)
    batch_id = _at(
        clock.now(), factory, partial(_village_end, institution_id=institution_id, opened=opened)
    )
    disbursement.run_disbursement(factory, institution_id=institution_id, batch_id=batch_id)
    run_in_transaction(
        factory,
        partial(
            demo_credit.models_in_force, institution_id=institution_id, institution_code=DEMO_CODE
        ),
    )
    run_in_transaction(
        factory, partial(demo_credit.village_campaign, institution_id=institution_id, seed=seed)
    )
    return DEMO_CODE


DEMO_VILLAGES = ("370281102200", "370281102220", "370281102222", "370281102240")
DEMO_BILLS = "reference,period,amount,due_date\n" + "".join(
    f"37028110{n:02d},2026-10,{n * 13 + 40}.50,2026-11-30\n" for n in range(1, 9)
)


def _village_end(
    session: Session, *, institution_id: uuid.UUID, opened: list[_Customer]
) -> uuid.UUID:
    """The village end of the demo bank: the standard divisions and a SAMPLE county's villages,
    customers placed in them, a grid for the account manager, a service point with a funded
    float, an electricity biller with a bill file (one bill paid), and an approved subsidy
    batch from the county's agriculture bureau, whose id is returned for disbursement."""
    geography.load_standard(session)
    geography.load_sample(session)
    for index, customer in enumerate(opened):
        parties.set_customer_village(
            session,
            institution_id=institution_id,
            customer_id=customer.id,
            village_code=DEMO_VILLAGES[index % len(DEMO_VILLAGES)],
        )
    offices = {
        office.code: office.id
        for office in institutions.list_offices(session, institution_id=institution_id)
    }
    manager = session.scalar(
        select(StaffUser.id).where(
            StaffUser.institution_id == institution_id, StaffUser.username == "manager"
        )
    )
    assert manager is not None
    geography.create_grid(
        session,
        institution_id=institution_id,
        code="G-DZ02",
        name="果园村网格 Guoyuan grid",
        outlet_id=offices["DZ-02"],
        manager_id=manager,
        village_codes=DEMO_VILLAGES,
    )
    shop = next(c for c in opened if c.kind == CustomerKind.merchant)
    point = service_points.create_service_point(
        session,
        institution_id=institution_id,
        code="SP-GUOYUAN",
        name="果园村助农服务点 Guoyuan village service point",
        outlet_id=offices["DZ-02"],
        agent_customer_id=shop.id,
        village_code=DEMO_VILLAGES[0],
    )
    float_number = service_points.float_account(session, point=point).account_number
    assert float_number is not None
    payments.cash_deposit(
        session,
        institution_id=institution_id,
        client_id="demo-float-topup",
        account_number=float_number,
        amount=2_000_000,
        memo="备付金 float top-up",
    )
    biller = billers.create_biller(
        session,
        institution_id=institution_id,
        code="DEMO-POWER",
        name="国网示范县供电公司 County Power Supply",
        kind="electricity",
    )
    imported = bill_intake.import_bill_file(
        session, institution_id=institution_id, biller_id=biller.id, data=DEMO_BILLS.encode()
    )
    first = session.scalar(
        select(Bill)
        .where(Bill.bill_file_id == imported.bill_file.id)
        .order_by(Bill.reference)
        .limit(1)
    )
    assert first is not None
    bill_paying.pay_bill_from_account_number(
        session,
        institution_id=institution_id,
        client_id="demo-bill-1",
        bill_id=first.id,
        account_number=opened[1].account_number,
        amount=first.amount_due,
        channel="counter",
    )
    return _subsidy_batch(session, institution_id=institution_id, opened=opened)


def _subsidy_batch(
    session: Session, *, institution_id: uuid.UUID, opened: list[_Customer]
) -> uuid.UUID:
    body = "11370281MB0000001"
    bureau = parties.create_customer(
        session,
        institution_id=institution_id,
        kind=CustomerKind.government,
        name="示范县农业农村局 County Bureau of Agriculture",
        id_number=body + party_rules.uscc_check_char(body),
    )
    payer = payments.open_deposit_account(
        session, institution_id=institution_id, customer_id=bureau.id
    )
    assert payer.account_number is not None
    lines = ["姓名,身份证号,账号,金额,补贴类型,年度"]
    total = 0
    for index, customer in enumerate(opened[:40]):
        record = parties.get_customer(
            session, institution_id=institution_id, customer_id=customer.id
        )
        if record.kind != CustomerKind.individual:
            continue
        identifiers = parties.identifiers(session, record)
        amount = 8_000 + index * 250
        total += amount
        lines.append(
            f"{record.name},{identifiers.id_number},{customer.account_number},"
            f"{amount // 100}.{amount % 100:02d},耕地地力保护补贴,2026"
        )
    payments.cash_deposit(
        session,
        institution_id=institution_id,
        client_id="demo-subsidy-funds",
        account_number=payer.account_number,
        amount=total,
        memo="耕地地力保护补贴资金 subsidy funds",
    )
    users = dict(
        session.execute(
            select(StaffUser.username, StaffUser.id).where(
                StaffUser.institution_id == institution_id,
                StaffUser.username.in_(("teller", "approver")),
            )
        ).all()
    )
    batch = importing.import_batch(
        session,
        institution_id=institution_id,
        maker_id=users["teller"],
        payer_account_number=payer.account_number,
        file_name="2026耕地地力保护补贴.csv",
        content="\r\n".join(lines).encode(),
    )
    approval.submit_batch(
        session, institution_id=institution_id, batch_id=batch.id, actor_id=users["teller"]
    )
    approval.approve_batch(
        session, institution_id=institution_id, batch_id=batch.id, checker_id=users["approver"]
    )
    return batch.id


def _open_customer(
    session: Session,
    *,
    institution_id: uuid.UUID,
    kind: CustomerKind,
    name: str,
    id_number: str,
    phone: str,
    client_id: str,
    amount: int,
) -> _Customer:
    customer = parties.create_customer(
        session,
        institution_id=institution_id,
        kind=kind,
        name=name,
        id_number=id_number,
        phone=phone,
    )
    account = payments.open_deposit_account(
        session, institution_id=institution_id, customer_id=customer.id
    )
    assert account.account_number is not None
    payments.cash_deposit(
        session,
        institution_id=institution_id,
        client_id=client_id,
        account_number=account.account_number,
        amount=amount,
    )
    return _Customer(customer.id, account.account_number, kind)
