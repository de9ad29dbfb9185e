"""Institution isolation, route by route: nobody of institution A — a user holding every
staff role, a partner system — can read or change anything of institution B.

Institution B is given one of everything (a customer, a funded deposit account, a payment, a
ledger account and transfer, an office, a staff user, a terminal, a consent). Then every
guarded route of the OpenAPI document is called as A's callers, with B's identifiers in the
path and in the body wherever the route takes one. Each answer must be a refusal or hold
nothing of B's, and at the end B's data must be exactly as they were. A route whose path
names an object this test does not know fails the test, so a new route must join it.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from huinong.credit import service as credit
from huinong.credit.campaigns import service as campaigns
from huinong.credit.models import SubjectKind
from huinong.db import run_in_transaction
from huinong.security.crypto import SM2PrivateKey
from huinong.security.identities.models import SignInSession, StaffUser
from huinong.security.principals import Role
from huinong.security.terminals.client import TerminalClient, UnsignedResponse
from tests.api.conftest import API, Bank, new_bank, resident_id, snapshot, transfer
from tests.api.test_consent_api import body as consent_body
from tests.api.test_households import survey
from tests.api.test_route_permissions import GUARDED
from tests.api.test_service_points import credit_code
from tests.api.test_terminals import enrol, platform_key
from tests.credit.test_registry_and_decisions import AS_OF, rule_document
from tests.credit.test_registry_and_decisions import trained as trained_scorecard

PARAMETER = re.compile(r"\{([a-z_]+)\}")
# Administrative divisions are national reference data, the same for every institution.
SHARED_DIVISION = "370281000000"
SHARED_PARAMETERS = {"account_number", "division_code"}


CREDIT_DATA = Path(__file__).parents[1] / "data" / "credit"
pytestmark = pytest.mark.usefixtures("sample_villages")


@dataclass
class Victim:
    bank: Bank
    ids: dict[str, str]  # path parameter name -> B's object
    secrets: set[str]  # strings of B's that must never appear in an answer to A

    def state(self) -> dict[str, Any]:
        return {**snapshot(self.bank.factory, self.bank.id), **_security_counts(self.bank)}


def _security_counts(bank: Bank) -> dict[str, Any]:
    with bank.factory() as session:
        users = session.execute(
            select(StaffUser.id, StaffUser.status, StaffUser.failed_sign_ins)
            .where(StaffUser.institution_id == bank.id)
            .order_by(StaffUser.id)
        ).all()
        sessions = session.scalar(
            select(func.count())
            .select_from(SignInSession)
            .where(SignInSession.institution_id == bank.id, SignInSession.revoked_at.is_(None))
        )
    return {"staff_users": [tuple(u) for u in users], "live_sessions": sessions}


def credit_objects(factory: sessionmaker[Session], bank: Bank) -> dict[str, str]:
    """B's scorecard, rule set and one decision (made through the service: training is a CLI
    job, not a route)."""
    model = trained_scorecard()

    def work(s: Session) -> dict[str, str]:
        scorecard = credit.register_scorecard(
            s, institution_id=bank.id, model=model, metrics={}, created_by=None
        )
        rules = credit.add_rule_set(
            s,
            institution_id=bank.id,
            institution_code=bank.code,
            document=rule_document(bank.code),
            created_by=None,
        )
        inputs = [{name: None for name in model.feature_names}]
        outcomes = credit.decide_batch(model, credit.compiled_rules(rules), inputs)
        [decision] = credit.store_decisions(
            s,
            institution_id=bank.id,
            subjects=[credit.Subject(SubjectKind.household, reference="B-SURVEY-1")],
            inputs=inputs,
            outcomes=outcomes,
            scorecard=scorecard,
            rule_set=rules,
            as_of=AS_OF,
            decided_by=None,
        )
        campaign = campaigns.create_campaign(
            s,
            institution_id=bank.id,
            code="B-ZC-1",
            name="B的整村授信",
            village_codes=["370281105201"],
            scorecard_name=model.name,
            rule_set_name="household_standard",
            created_by=None,
        )
        survey = campaigns.import_survey(
            s,
            institution_id=bank.id,
            campaign_id=campaign.id,
            file_name="survey.csv",
            content=(CREDIT_DATA / "survey_village.csv").read_bytes(),
            surveyed_on=AS_OF,
        )
        return {
            "scorecard_id": str(scorecard.id),
            "rule_set_id": str(rules.id),
            "decision_id": str(decision),
            "campaign_id": str(campaign.id),
            "import_id": str(survey.survey_import.id),
            "campaign_household_id": str(survey.imported[0].id),
        }

    return run_in_transaction(factory, work)


def victim_of(client: TestClient, factory: sessionmaker[Session]) -> Victim:
    bank = new_bank(client, factory, prefix="VIC")
    office = bank.ok(bank.post("/offices", {"code": "HQ", "name": "总行", "kind": "head"}), 201)
    bank.ok(
        bank.post(
            "/offices", {"code": "B1", "name": "支行", "kind": "branch", "parent_code": "HQ"}
        ),
        201,
    )
    outlet = bank.ok(
        bank.post(
            "/offices", {"code": "O1", "name": "网点", "kind": "outlet", "parent_code": "B1"}
        ),
        201,
    )
    manager = bank.ok(
        bank.post(
            "/staff-users",
            {
                "username": "b.manager",
                "display_name": "B客户经理",
                "roles": ["account_manager"],
                "password": "Nongshang-2026!",
            },
        ),
        201,
    )
    grid = bank.ok(
        bank.post(
            "/grids",
            {
                "code": "G1",
                "name": "B网格",
                "outlet_id": outlet["id"],
                "manager_id": manager["id"],
                "village_codes": [],
            },
        ),
        201,
    )
    agent = bank.customer(name="B的代理商", kind="merchant", id_number=credit_code())
    point = bank.ok(
        bank.post(
            "/service-points",
            {
                "code": "B-SP1",
                "name": "B服务点",
                "outlet_id": outlet["id"],
                "agent_customer_id": agent["id"],
            },
        ),
        201,
    )
    id_number, phone = resident_id(), "13811112222"
    customer = bank.customer(name="受害人", id_number=id_number, phone=phone)
    account = bank.funded_account(50_000)
    payment = bank.deposit(account["account_number"], 1_000)
    vault = bank.system_account(1001)
    ledger_account = bank.open_ledger_account(name="B ledger account")
    moved = bank.transfers(transfer(vault["id"], ledger_account["id"], 500))
    assert moved[0]["result"] == "ok"
    teller = bank.as_role(Role.teller)
    users = bank.ok(bank.get("/staff-users", limit=500))["items"]
    user_id = next(u["id"] for u in users if u["username"] == teller.username)
    terminal = bank.ok(
        bank.post(
            "/terminals",
            {
                "code": "B-POS1",
                "kind": "pos",
                "binding_kind": "service_point",
                "binding_reference": "SP-1",
                "public_key": SM2PrivateKey.generate().public_key.to_hex(),
            },
        ),
        201,
    )
    consent = bank.ok(bank.post(f"/customers/{customer['id']}/consents", consent_body()), 201)
    biller = bank.ok(
        bank.post("/billers", {"code": "B-GRID", "name": "B 供电", "kind": "electricity"}), 201
    )
    bill_file = b"reference,period,amount,due_date\n3301001,2026-10,1.00,2026-11-30\n"
    imported = client.post(
        f"{API}/billers/{biller['id']}/bill-files",
        content=bill_file,
        headers={**bank.headers, "Content-Type": "text/csv"},
    )
    assert imported.status_code < 300, imported.text
    bill = bank.ok(bank.get("/bills", biller_id=biller["id"]))["items"][0]
    paid_bill = bank.ok(
        bank.post(
            "/bill-payments",
            {"bill_id": bill["id"], "account_number": account["account_number"], "amount": 100},
            key=str(uuid.uuid4()),
        ),
        201,
    )
    reconciled = client.post(
        f"{API}/billers/{biller['id']}/reconciliations",
        params={"date": paid_bill["business_date"]},
        content=f"payment_id,amount\n{paid_bill['id']},1.00\n".encode(),
        headers={**bank.headers, "Content-Type": "text/csv"},
    )
    assert reconciled.status_code == 201, reconciled.text
    government = bank.customer(name="某县农业农村局", kind="government", id_number=credit_code())
    payer = bank.deposit_account(government["id"])
    bank.deposit(payer["account_number"], 10_000)
    beneficiary_id = resident_id()
    beneficiary = bank.customer(name="补贴户", id_number=beneficiary_id)
    beneficiary_account = bank.deposit_account(beneficiary["id"])
    subsidy_file = (
        "姓名,身份证号,账号,金额,补贴类型,年度\r\n"
        f"补贴户,{beneficiary_id},{beneficiary_account['account_number']},100.00,种粮补贴,2026\r\n"
    )
    batch = bank.ok(
        bank.as_role(Role.teller).post(
            "/subsidy-batches",
            {
                "payer_account_number": payer["account_number"],
                "file_name": "b.csv",
                "content_base64": base64.b64encode(subsidy_file.encode()).decode(),
            },
        ),
        201,
    )
    home = bank.ok(bank.post("/households", {"head_customer_id": customer["id"]}), 201)
    home = bank.ok(
        bank.post(
            f"/households/{home['id']}/members",
            {"relationship": "spouse", "is_labour": True, "name": "受害人配偶"},
        ),
        201,
    )
    bank.ok(bank.post(f"/households/{home['id']}/archive-versions", survey("2026-01-01")), 201)
    card = bank.ok(bank.post(f"/customers/{customer['id']}/farmer-code", {}), 201)
    credit_ids = credit_objects(factory, bank)
    ids = {
        **credit_ids,
        "farmer_code": card["farmer_code"],
        "batch_id": batch["id"],
        "payer_account_number": payer["account_number"],
        "biller_id": biller["id"],
        "bill_id": bill["id"],
        "reconciliation_id": reconciled.json()["id"],
        "household_id": home["id"],
        "member_id": home["members"][1]["id"],
        "outlet_id": outlet["id"],
        "manager_id": manager["id"],
        "division_code": SHARED_DIVISION,
        "grid_id": grid["id"],
        "service_point_id": point["id"],
        "id_number": id_number,
        "phone": phone,
        "consent_id": consent["id"],
        "terminal_id": terminal["id"],
        "customer_id": customer["id"],
        "account_number": account["account_number"],
        "account_id": ledger_account["id"],
        "transfer_id": moved[0]["id"],
        "payment_id": payment["id"],
        "user_id": user_id,
        "office_id": office["id"],
    }
    secrets = {
        *credit_ids.values(),
        card["farmer_code"],
        batch["id"],
        beneficiary_id,
        beneficiary["id"],
        government["id"],
        biller["id"],
        bill["id"],
        paid_bill["id"],
        reconciled.json()["id"],
        "B-GRID",
        "3301001",
        home["id"],
        home["members"][1]["id"],
        "受害人配偶",
        grid["id"],
        manager["id"],
        point["id"],
        id_number,
        phone,
        id_number[:6] + "********" + id_number[-4:],
        consent["id"],
        terminal["id"],
        "B-POS1",
        bank.code,
        str(bank.id),
        customer["id"],
        account["id"],
        ledger_account["id"],
        moved[0]["id"],
        payment["id"],
        user_id,
        office["id"],
        teller.username,
    }
    return Victim(bank, ids, secrets)


def bodies(victim: Victim, attacker: Bank) -> dict[tuple[str, str], Callable[[], Any]]:
    """Request bodies that reach for B's objects, per write route."""
    ids = victim.ids
    own = attacker.system_account(1001)["id"]
    return {
        ("POST", f"{API}/deposit-accounts"): lambda: {"customer_id": ids["customer_id"]},
        ("POST", f"{API}/cash-deposits"): lambda: {
            "account_number": ids["account_number"],
            "amount": 100,
        },
        ("POST", f"{API}/cash-withdrawals"): lambda: {
            "account_number": ids["account_number"],
            "amount": 100,
        },
        ("POST", f"{API}/transfers"): lambda: {
            "from_account_number": ids["account_number"],
            "to_account_number": ids["account_number"],
            "amount": 100,
        },
        ("POST", f"{API}/ledger/transfers"): lambda: {
            "transfers": [
                transfer(ids["account_id"], own, 100),
                transfer(own, ids["account_id"], 100),
            ]
        },
        ("POST", f"{API}/customer-credentials"): lambda: {
            "customer_id": ids["customer_id"],
            "phone": "13900000000",
            "password": "Nongshang-2026!",
        },
        ("PUT", f"{API}/staff-users/{{user_id}}/roles"): lambda: {"roles": ["admin"]},
        ("POST", f"{API}/customers/{{customer_id}}/consents"): consent_body,
        ("POST", f"{API}/customers/lookup"): lambda: {"id_number": ids["id_number"]},
        ("POST", f"{API}/households"): lambda: {"head_customer_id": ids["customer_id"]},
        ("POST", f"{API}/subsidy-batches"): lambda: {
            "payer_account_number": ids["payer_account_number"],
            "file_name": "b.csv",
            "content_base64": base64.b64encode(
                f"姓名,身份证号,账号,金额,补贴类型,年度\r\n补贴户,{ids['id_number']},,1.00,种粮补贴,2026\r\n".encode()
            ).decode(),
        },
        ("POST", f"{API}/subsidy-batches/{{batch_id}}/rejection"): lambda: {"reason": "x"},
        ("POST", f"{API}/subsidy-batches/{{batch_id}}/disbursement"): lambda: {"chunk_size": 1},
        ("POST", f"{API}/bill-payments"): lambda: {
            "bill_id": ids["bill_id"],
            "account_number": ids["account_number"],
            "amount": 100,
        },
        ("POST", f"{API}/billers/{{biller_id}}/bill-queries"): lambda: {"reference": "3301001"},
        ("PATCH", f"{API}/billers/{{biller_id}}"): lambda: {"active": False},
        ("POST", f"{API}/households/{{household_id}}/members"): lambda: {
            "relationship": "child",
            "is_labour": False,
            "customer_id": ids["customer_id"],
        },
        ("POST", f"{API}/households/{{household_id}}/archive-versions"): lambda: survey(
            "2026-01-01"
        ),
        ("PUT", f"{API}/customers/{{customer_id}}/default-account"): lambda: {
            "account_number": ids["account_number"]
        },
        ("POST", f"{API}/party-lookup"): lambda: {"id_number": ids["id_number"]},
        ("POST", f"{API}/grids"): lambda: {
            "code": "GX",
            "name": "x",
            "outlet_id": ids["outlet_id"],
            "manager_id": ids["manager_id"],
            "village_codes": [],
        },
        ("PUT", f"{API}/grids/{{grid_id}}/manager"): lambda: {"manager_id": ids["manager_id"]},
        ("POST", f"{API}/grids/{{grid_id}}/villages"): lambda: {"village_codes": ["370281102200"]},
        ("POST", f"{API}/grids/{{grid_id}}/villages/removal"): lambda: {
            "village_codes": ["370281102200"]
        },
        ("PUT", f"{API}/customers/{{customer_id}}/village"): lambda: {"village_code": None},
        ("POST", f"{API}/agent/withdrawals"): lambda: {
            "account_number": ids["account_number"],
            "pin_ciphertext": "00",
            "amount": 100,
        },
        ("PUT", f"{API}/credit/scorecards/{{scorecard_id}}/role"): lambda: {"role": "champion"},
        ("POST", f"{API}/credit/rule-sets"): lambda: {"document": rule_document(victim.bank.code)},
        ("POST", f"{API}/credit/campaigns"): lambda: {
            "code": "ZC-X",
            "name": "x",
            "village_codes": ["370281105201"],
            "scorecard_name": "household",
            "rule_set_name": "village_standard",
        },
        ("POST", f"{API}/credit/campaigns/{{campaign_id}}/survey-imports"): lambda: {
            "file_name": "s.csv",
            "content_base64": base64.b64encode(
                (CREDIT_DATA / "survey_village.csv").read_bytes()
            ).decode(),
            "surveyed_on": "2026-03-20",
        },
        ("POST", f"{API}/credit/campaigns/{{campaign_id}}/cross-check"): lambda: {},
        ("POST", f"{API}/credit/campaigns/{{campaign_id}}/reviewers"): lambda: {
            "staff_user_id": ids["user_id"],
            "kind": "village_cadre",
        },
        ("PUT", f"{API}/credit/campaigns/{{campaign_id}}/ratings/{{campaign_household_id}}"): (
            lambda: {"integrity": 1, "suggested_limit_fen": 0, "recommend": False}
        ),
        ("POST", f"{API}/credit/campaigns/{{campaign_id}}/decision"): lambda: {
            "as_of": "2026-06-30"
        },
        ("POST", f"{API}/agent/withdrawal-codes"): lambda: {
            "farmer_code": ids["farmer_code"],
            "amount": 100,
        },
        ("POST", f"{API}/agent/withdrawals/by-farmer-code"): lambda: {
            "farmer_code": ids["farmer_code"],
            "one_time_code": "123456",
            "amount": 100,
        },
        ("POST", f"{API}/households/{{household_id}}/head"): lambda: {
            "member_id": ids["member_id"],
            "previous_head_relationship": "spouse",
        },
        ("POST", f"{API}/agent/transfers"): lambda: {
            "account_number": ids["account_number"],
            "pin_ciphertext": "00",
            "to_account_number": ids["account_number"],
            "amount": 100,
        },
        ("POST", f"{API}/agent/bill-payments"): lambda: {
            "account_number": ids["account_number"],
            "pin_ciphertext": "00",
            "bill_id": ids["bill_id"],
            "amount": 100,
        },
        ("POST", f"{API}/agent/deposits"): lambda: {
            "account_number": ids["account_number"],
            "amount": 100,
        },
        ("POST", f"{API}/customers/{{customer_id}}/reveal"): lambda: {
            "fields": ["id_number", "phone"],
            "purpose": "contract_signing",
        },
        ("POST", f"{API}/consents/check"): lambda: {
            "customer_id": ids["customer_id"],
            "category": "contact",
            "purpose": "village_credit_campaign",
        },
        ("POST", f"{API}/payments/{{payment_id}}/reversal"): lambda: {"memo": "steal"},
        ("POST", f"{API}/terminals/{{terminal_id}}/keys"): lambda: {
            "public_key": SM2PrivateKey.generate().public_key.to_hex()
        },
        ("PUT", f"{API}/terminals/{{terminal_id}}/geofence"): lambda: {
            "latitude": "30",
            "longitude": "120",
            "radius_metres": 500,
        },
    }


def fill(path: str, ids: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in ids, f"the isolation test has no object of B's for {{{name}}}: add one"
        return ids[name]

    return PARAMETER.sub(value, path)


ATTACKERS = ["all_staff_roles", "partner", "terminal"]
Send = Callable[[str, str, Any], Response]


def attacker_for(kind: str, bank: Bank) -> Send:
    """How institution A's caller of ``kind`` sends a request."""
    if kind == "terminal":
        enrolled = enrol(bank)
        terminal = TerminalClient(
            bank.client,
            terminal_id=enrolled.id,
            key_serial=1,
            private_key=enrolled.key,
            platform_public_key=platform_key(bank),
        )

        def signed(method: str, url: str, body: Any) -> Response:
            headers = {"Idempotency-Key": str(uuid.uuid4())}
            try:
                return terminal.request(method, url, json=body, headers=headers)
            except UnsignedResponse as refused:
                return refused.response

        return signed
    caller = bank if kind == "all_staff_roles" else bank.as_role(Role.partner)

    def bearer(method: str, url: str, body: Any) -> Response:
        headers = {**caller.headers, "Idempotency-Key": str(uuid.uuid4())}
        return bank.client.request(method, url, headers=headers, json=body)

    return bearer


@pytest.mark.parametrize("attacker_kind", ATTACKERS)
def test_nothing_of_another_institution_is_reachable(
    client: TestClient, factory: sessionmaker[Session], bank: Bank, attacker_kind: str
) -> None:
    victim = victim_of(client, factory)
    bank.funded_account(10_000)  # A has objects too, so "not found" is not "empty"
    send = attacker_for(attacker_kind, bank)
    before = victim.state()
    write_bodies = bodies(victim, bank)
    reached = []
    for method, path in GUARDED:
        if path in {f"{API}/auth/sign-out"}:
            continue  # ends the attacker's own session; covered in test_auth
        target = fill(path, victim.ids)
        body = write_bodies.get((method, path), lambda: {})() if method != "GET" else None
        response = send(method, target, body)
        assert response.status_code < 500, (method, path, response.text)
        leaked = sorted(s for s in victim.secrets if s in response.text)
        # Account numbers are numbered per institution, so B's number may also be one of A's
        # own accounts, and divisions are shared: there the answer must simply hold nothing of
        # B's (its ids included).
        named_b = any(name not in SHARED_PARAMETERS for name in PARAMETER.findall(path))
        if leaked or (named_b and response.status_code < 300):
            reached.append((method, path, response.status_code, leaked))
    assert reached == []
    assert victim.state() == before
