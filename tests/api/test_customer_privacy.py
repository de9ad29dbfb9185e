"""Personal data over the API: masking by role, lookup by blind index, the audited reveal, and
no plaintext ID number or phone in a response to a role that may not see it or in the logs."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import select, update

from huinong.db import transaction
from huinong.parties.models import Customer
from huinong.security.audit.models import AuditRecord
from huinong.security.personal_data import masking
from huinong.security.principals import STAFF_ROLES, Role
from tests.api.conftest import PROBLEM, Bank, assert_problem, resident_id

NAME = "欧阳秀英"


def new_phone() -> str:
    return f"1590{uuid.uuid4().int % 10**7:07d}"


def create(bank: Bank, number: str, phone: str | None) -> dict:
    body = {"kind": "individual", "name": NAME, "id_number": number, "phone": phone}
    return bank.ok(bank.post("/customers", body), 201)  # type: ignore[no-any-return]


def secrets_of(number: str, phone: str) -> list[str]:
    # the number and phone whole, and the birth date inside the number
    return [number, number.lower(), phone, number[6:14]]


def test_every_role_that_may_read_customers_gets_identifiers_masked(bank: Bank) -> None:
    number, phone = resident_id(), new_phone()
    created = create(bank.as_role(Role.teller), number, phone)
    path = f"/customers/{created['id']}"
    readers = 0
    for role in sorted(STAFF_ROLES):
        viewer = bank.as_role(role)
        response = viewer.get(path)
        if response.status_code == 403:  # the permission table keeps this role out entirely
            continue
        readers += 1
        body = viewer.ok(response)
        assert body["id_number_masked"] == masking.mask_id_number(number)
        assert body["phone_masked"] == masking.mask_phone(phone)
        expected_name = NAME if role in masking.SERVING_ROLES else "欧***"
        assert body["name"] == expected_name, role
        listed = viewer.ok(viewer.get("/customers"))
        if role == Role.account_manager:  # sees the customers of its grids only: none here
            assert listed["items"] == []
        else:
            assert listed["items"] == [body]
        for secret in secrets_of(number, phone):
            assert secret not in response.text and secret not in str(listed), (role, secret)
        if role not in masking.SERVING_ROLES:
            assert NAME not in response.text
    assert readers >= 4  # the test looked at several roles, it did not skip them all


@pytest.mark.parametrize("role", [Role.agent, Role.buyer, Role.gov_viewer, Role.partner])
def test_roles_outside_the_customer_file_are_refused(bank: Bank, role: Role) -> None:
    number, phone = resident_id(), new_phone()
    created = create(bank, number, phone)
    outsider = bank.as_role(role)
    for response in (
        outsider.get(f"/customers/{created['id']}"),
        outsider.get("/customers"),
        outsider.post("/customers/lookup", {"id_number": number}),
        outsider.post(
            f"/customers/{created['id']}/reveal",
            {"fields": ["id_number"], "purpose": "customer_contact"},
        ),
    ):
        assert_problem(response, 403, needs_field=False)
        for secret in [*secrets_of(number, phone), NAME]:
            assert secret not in response.text


def test_lookup_by_id_number_or_phone(bank: Bank, other_bank: Bank) -> None:
    number, phone = resident_id(), new_phone()
    teller = bank.as_role(Role.teller)
    created = create(teller, number, phone)
    spouse = teller.ok(
        teller.post(
            "/customers",
            {"kind": "individual", "name": "王建国", "id_number": resident_id(), "phone": phone},
        ),
        201,
    )
    found = teller.ok(teller.post("/customers/lookup", {"id_number": number.lower()}))
    assert found["items"] == [created]
    by_phone = teller.ok(teller.post("/customers/lookup", {"phone": phone}))
    assert [c["id"] for c in by_phone["items"]] == [created["id"], spouse["id"]]
    for response in (found, by_phone):
        assert number not in str(response) and phone not in str(response)

    # an auditor finds the same customer, with the name masked
    audited = bank.as_role(Role.auditor)
    seen = audited.ok(audited.post("/customers/lookup", {"id_number": number}))["items"]
    assert [c["name"] for c in seen] == ["欧***"]

    # another institution's customers are not found, by either identifier
    assert other_bank.ok(other_bank.post("/customers/lookup", {"id_number": number}))["items"] == []
    assert other_bank.ok(other_bank.post("/customers/lookup", {"phone": phone}))["items"] == []
    assert teller.ok(teller.post("/customers/lookup", {"phone": new_phone()}))["items"] == []


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({}, "parties.lookup_needs_one_identifier", "id_number"),
        (
            {"id_number": "11010519491231002X", "phone": "13800138000"},
            "parties.lookup_needs_one_identifier",
            "id_number",
        ),
        ({"id_number": "110105194912310021"}, "parties.invalid_id_number", "id_number"),
        ({"phone": "12345"}, "parties.invalid_phone", "phone"),
        ({"id_number": ""}, "request.invalid", "id_number"),
        ({"name": "张三"}, "request.invalid", "name"),
    ],
)
def test_bad_lookups_are_422_and_do_not_echo_the_identifier(
    bank: Bank, body: dict, code: str, field: str
) -> None:
    response = bank.post("/customers/lookup", body)
    assert_problem(response, 422, code, field)
    for value in body.values():
        if len(value) > 4:
            assert value not in response.text


def test_reveal_gives_the_full_values_to_the_roles_the_policy_names(bank: Bank) -> None:
    number, phone = resident_id(), new_phone()
    created = create(bank, number, phone)
    path = f"/customers/{created['id']}/reveal"
    purpose = "contract_signing"

    teller = bank.as_role(Role.teller)
    both = teller.ok(teller.post(path, {"fields": ["id_number", "phone"], "purpose": purpose}))
    assert both == {"id": created["id"], "id_number": number, "phone": phone}
    only_phone = teller.ok(teller.post(path, {"fields": ["phone"], "purpose": purpose}))
    assert only_phone == {"id": created["id"], "id_number": None, "phone": phone}

    risk = bank.as_role(Role.risk_officer)
    aml = risk.ok(risk.post(path, {"fields": ["id_number"], "purpose": "regulatory_report"}))
    assert aml["id_number"] == number
    refused = risk.post(path, {"fields": ["id_number", "phone"], "purpose": "regulatory_report"})
    assert_problem(refused, 403, "security.reveal_not_allowed", "fields")
    assert number not in refused.text and phone not in refused.text

    for role in (Role.admin, Role.auditor, Role.approver):
        response = bank.as_role(role).post(path, {"fields": ["id_number"], "purpose": purpose})
        assert_problem(response, 403, needs_field=False)
        assert number not in response.text

    # Each disclosure, and the refused attempt, is in the audit trail: who, what, why.
    trail = audit_trail(bank, "customers.identifiers_revealed", created["id"])
    assert [(r.actor_display, r.outcome, r.detail) for r in trail] == [
        (teller.username, "ok", {"fields": ["id_number", "phone"], "purpose": purpose}),
        (teller.username, "ok", {"fields": ["phone"], "purpose": purpose}),
        (risk.username, "ok", {"fields": ["id_number"], "purpose": "regulatory_report"}),
        (
            risk.username,
            "denied",
            {"fields": ["id_number", "phone"], "purpose": "regulatory_report"},
        ),
    ]
    assert all(number not in str(r.detail) and phone not in str(r.detail) for r in trail)


def audit_trail(bank: Bank, action: str, object_id: str) -> list[AuditRecord]:
    with bank.factory() as session:
        return list(
            session.scalars(
                select(AuditRecord)
                .where(
                    AuditRecord.institution_id == bank.id,
                    AuditRecord.action == action,
                    AuditRecord.object_id == object_id,
                )
                .order_by(AuditRecord.occurred_at, AuditRecord.id)
            )
        )


def test_reads_and_lookups_of_customers_are_audited(bank: Bank) -> None:
    number, phone = resident_id(), new_phone()
    teller = bank.as_role(Role.teller)
    created = create(teller, number, phone)
    teller.ok(teller.get(f"/customers/{created['id']}"))
    teller.ok(teller.post("/customers/lookup", {"phone": phone}))
    assert [r.outcome for r in audit_trail(bank, "customers.created", created["id"])] == ["ok"]
    assert [r.outcome for r in audit_trail(bank, "customers.read", created["id"])] == ["ok"]
    with bank.factory() as session:
        lookups = session.scalars(
            select(AuditRecord).where(
                AuditRecord.institution_id == bank.id, AuditRecord.action == "customers.looked_up"
            )
        ).all()
    assert [r.detail for r in lookups] == [{"by": "phone", "returned": 1}]


def test_reveal_needs_fields_and_a_purpose_and_stays_in_the_institution(
    bank: Bank, other_bank: Bank
) -> None:
    created = create(bank, resident_id(), new_phone())
    path = f"/customers/{created['id']}/reveal"
    teller = bank.as_role(Role.teller)
    assert_problem(teller.post(path, {"fields": ["id_number"]}), 422, "request.invalid", "purpose")
    free_text = {"fields": ["id_number"], "purpose": "客户张三要签合同"}  # codes only
    assert_problem(teller.post(path, free_text), 422, "request.invalid", "purpose")
    assert_problem(
        teller.post(path, {"fields": [], "purpose": "contract_signing"}),
        422,
        "request.invalid",
        "fields",
    )
    assert_problem(
        teller.post(path, {"fields": ["name"], "purpose": "contract_signing"}),
        422,
        "request.invalid",
        "fields.0",
    )
    stranger = other_bank.as_role(Role.teller)
    response = stranger.post(path, {"fields": ["id_number"], "purpose": "contract_signing"})
    assert_problem(response, 404, "parties.customer_not_found", "customer_id")


def test_a_tampered_identifier_is_a_problem_not_a_500_and_not_shown(bank: Bank) -> None:
    one = create(bank, resident_id(), new_phone())
    two = create(bank, resident_id(), new_phone())
    one_id, two_id = uuid.UUID(one["id"]), uuid.UUID(two["id"])

    def set_ciphertext(value: bytes) -> None:
        with transaction(bank.factory) as session:
            session.execute(
                update(Customer).where(Customer.id == one_id).values(id_number_ciphertext=value)
            )

    with bank.factory() as session:
        original = session.get_one(Customer, one_id).id_number_ciphertext
        stolen = session.get_one(Customer, two_id).id_number_ciphertext
    set_ciphertext(stolen)  # two's (valid) ciphertext moved into one's row
    try:
        for response in (bank.get(f"/customers/{one['id']}"), bank.get("/customers")):
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith(PROBLEM)
            assert response.json()["code"] == "security.personal_data_unreadable"
            assert one["id_number_masked"] not in response.text
    finally:
        set_ciphertext(original)  # the shared test database stays readable
    assert bank.ok(bank.get(f"/customers/{one['id']}")) == one


def test_no_id_number_or_phone_reaches_the_logs(bank: Bank, caplog) -> None:
    number, phone = resident_id(), new_phone()
    teller = bank.as_role(Role.teller)
    with caplog.at_level(logging.DEBUG, logger="huinong"):
        created = create(teller, number, phone)
        teller.ok(teller.get(f"/customers/{created['id']}"))
        teller.ok(teller.get("/customers"))
        teller.ok(teller.post("/customers/lookup", {"id_number": number}))
        teller.ok(teller.post("/customers/lookup", {"phone": phone}))
        revealed = teller.post(
            f"/customers/{created['id']}/reveal",
            {"fields": ["id_number", "phone"], "purpose": "contract_signing"},
        )
        assert revealed.status_code == 200
        assert_problem(
            teller.post("/customers", {"kind": "individual", "name": NAME, "id_number": number}),
            409,
            "parties.id_number_taken",
        )
        assert_problem(
            teller.post(
                "/customers", {"kind": "merchant", "name": NAME, "id_number": number + "9"}
            ),
            422,
        )
    records = [r for r in caplog.records if r.name.startswith("huinong")]
    assert records  # the server did log these requests: the check below is not vacuous
    logged = "".join(r.getMessage() + str(r.__dict__) for r in records)
    for secret in secrets_of(number, phone):
        assert secret not in logged, secret
