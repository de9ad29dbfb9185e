"""Customers over the API: identity documents checked, masked in every response."""

from __future__ import annotations

import uuid

import pytest

from huinong.parties.rules import resident_id_check_char, uscc_check_char
from tests.api.conftest import Bank, assert_problem, resident_id


def masked(number: str) -> str:
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def test_create_customer_with_valid_resident_id_is_masked(bank: Bank) -> None:
    body17 = "11010519491231002"
    number = body17 + resident_id_check_char(body17)
    assert number == "11010519491231002X"  # the GB 11643 example number
    response = bank.post(
        "/customers",
        {
            "kind": "individual",
            "name": "王小明",
            "id_number": number.lower(),
            "phone": "138 0013-8000",
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["kind"] == "individual"
    assert created["name"] == "王小明"
    assert created["id_number_masked"] == "110105********002X"
    assert created["phone_masked"] == "138****8000"
    assert set(created) == {
        "id",
        "kind",
        "name",
        "id_number_masked",
        "phone_masked",
        "village_code",
        "created_at",
    }
    for secret in (number, number.lower(), "13800138000", "19491231"):
        assert secret not in response.text

    fetched = bank.get(f"/customers/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created
    assert number not in fetched.text and "13800138000" not in fetched.text


def test_customer_without_phone(bank: Bank) -> None:
    number = resident_id()
    created = bank.customer(id_number=number)
    assert created["phone_masked"] is None
    assert created["id_number_masked"] == masked(number)


def test_enterprise_with_unified_social_credit_code(bank: Bank) -> None:
    body17 = "91350100M000100Y4"
    code = body17 + uscc_check_char(body17)
    created = bank.customer(name="惠农合作社", kind="enterprise", id_number=code)
    assert created["kind"] == "enterprise"
    assert created["id_number_masked"] == masked(code)
    wrong = body17 + ("0" if code[-1] != "0" else "1")
    response = bank.post("/customers", {"kind": "collective", "name": "村集体", "id_number": wrong})
    assert_problem(response, 422, "parties.invalid_id_number", "id_number")


def test_duplicate_resident_id_is_409_within_an_institution_only(
    bank: Bank, other_bank: Bank
) -> None:
    number = resident_id()
    bank.customer(id_number=number)
    before = bank.snapshot()
    response = bank.post("/customers", {"kind": "individual", "name": "李四", "id_number": number})
    assert_problem(response, 409, "parties.id_number_taken", "id_number")
    assert bank.snapshot() == before
    assert "李四" not in response.text and number not in response.text
    other_bank.customer(id_number=number)  # another institution's customers are its own


def _wrong_check_char() -> str:
    number = resident_id()
    return number[:17] + ("0" if number[17] != "0" else "1")


@pytest.mark.parametrize(
    "id_number",
    [
        pytest.param(_wrong_check_char(), id="check-char"),
        pytest.param("110105194913310011", id="month-13"),
        pytest.param("110105194902300016", id="feb-30"),
        pytest.param("110105180001010010", id="before-1900"),
        pytest.param("11010519491231002", id="17-chars"),
        pytest.param("1101051949123100211", id="19-chars"),
        pytest.param("11010519491231OO2X", id="letters"),
        pytest.param("110105194912310 2X", id="space"),
        pytest.param("X10105194912310021", id="x-first"),
    ],
)
def test_invalid_resident_id_is_422(bank: Bank, id_number: str) -> None:
    before = bank.snapshot()
    response = bank.post(
        "/customers", {"kind": "individual", "name": "张三", "id_number": id_number}
    )
    assert_problem(response, 422, "parties.invalid_id_number", "id_number")
    assert bank.snapshot() == before


@pytest.mark.parametrize(
    "phone",
    ["12345", "23800138000", "1380013800a", "12800138000", "138001380001", "+8613800138000"],
)
def test_invalid_phone_is_422(bank: Bank, phone: str) -> None:
    before = bank.snapshot()
    response = bank.post(
        "/customers",
        {"kind": "individual", "name": "张三", "id_number": resident_id(), "phone": phone},
    )
    assert_problem(response, 422, "parties.invalid_phone", "phone")
    assert bank.snapshot() == before


@pytest.mark.parametrize(
    ("patch", "status", "code", "field"),
    [
        ({"kind": "alien"}, 422, "request.invalid", "kind"),
        ({"name": ""}, 422, "request.invalid", "name"),
        ({"name": "   "}, 422, "parties.name_required", "name"),
        ({"id_number": ""}, 422, "request.invalid", "id_number"),
        ({"id_number": 110105194912310021}, 422, "request.invalid", "id_number"),
        ({"phone": "1" * 21}, 422, "request.invalid", "phone"),
        ({"institution_id": str(uuid.uuid4())}, 422, "request.invalid", "institution_id"),
    ],
)
def test_customer_schema_errors(
    bank: Bank, patch: dict, status: int, code: str, field: str
) -> None:
    before = bank.snapshot()
    body = {"kind": "individual", "name": "张三", "id_number": resident_id(), **patch}
    assert_problem(bank.post("/customers", body), status, code, field)
    assert bank.snapshot() == before


def test_customer_lookup_is_per_institution(bank: Bank, other_bank: Bank) -> None:
    created = bank.customer()
    response = other_bank.get(f"/customers/{created['id']}")
    assert_problem(response, 404, "parties.customer_not_found", "customer_id")
    assert_problem(bank.get(f"/customers/{uuid.uuid4()}"), 404, "parties.customer_not_found")
    assert_problem(bank.get("/customers/not-a-uuid"), 422, "request.invalid", "customer_id")
    assert other_bank.ok(other_bank.get("/customers"))["items"] == []


def test_list_customers_with_cursor(bank: Bank) -> None:
    created = [bank.customer(name=f"客户{i}") for i in range(7)]
    seen: list[dict] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = bank.ok(bank.get("/customers", **params))
        seen.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == created  # in creation (UUIDv7) order, each once, masked
    assert_problem(bank.get("/customers", cursor="!!!"), 422, "request.invalid_cursor", "cursor")
    assert_problem(bank.get("/customers", limit=0), 422, "request.invalid", "limit")
    assert_problem(bank.get("/customers", limit=501), 422, "request.invalid", "limit")


def test_superscript_digit_in_resident_id_is_422_not_500(bank: Bank) -> None:
    """Regression: '²'.isdigit() is true but int('²') raises: the check was a 500."""
    number = "²" + resident_id()[1:]
    before = bank.snapshot()
    response = bank.post("/customers", {"kind": "individual", "name": "张三", "id_number": number})
    assert_problem(response, 422, "parties.invalid_id_number", "id_number")
    assert bank.snapshot() == before


def test_full_width_digits_do_not_register_the_same_person_twice(bank: Bank) -> None:
    """Regression: full-width digits passed the check and were stored as another string, so
    the unique index let the same person be registered twice."""
    number = resident_id()
    bank.customer(id_number=number)
    full_width = number[:17].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    before = bank.snapshot()
    response = bank.post(
        "/customers", {"kind": "individual", "name": "张三", "id_number": full_width + number[17]}
    )
    # Either normalised (then it is the same number: 409) or refused as malformed (422).
    body = assert_problem(response, field="id_number")
    assert body["code"] in ("parties.id_number_taken", "parties.invalid_id_number")
    assert bank.snapshot() == before
