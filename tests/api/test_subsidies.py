"""Subsidy batches over the API: import, maker-checker, disbursement, reports, roles and
isolation between institutions."""

from __future__ import annotations

import base64
import csv
import io
import itertools
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from huinong.parties.rules import uscc_check_char
from huinong.security.principals import Role
from tests.api.conftest import Bank, assert_problem, new_bank, resident_id

HEADER = "姓名,身份证号,账号,金额,补贴类型,年度"
_serial = itertools.count(1)


def credit_code() -> str:
    body = f"12{next(_serial) + 500_000:015d}"
    return body + uscc_check_char(body)


def payer(bank: Bank, amount: int = 1_000_000) -> str:
    government = bank.customer(name="某县财政局", kind="government", id_number=credit_code())
    account = bank.deposit_account(government["id"])
    bank.deposit(account["account_number"], amount)
    return str(account["account_number"])


def farmer(bank: Bank, name: str) -> dict[str, Any]:
    number = resident_id()
    customer = bank.customer(name=name, id_number=number)
    account = bank.deposit_account(customer["id"])
    return {"id": customer["id"], "name": name, "id_number": number, "account": account}


def upload(rows: list[str], *, encoding: str = "utf-8") -> str:
    return base64.b64encode("\r\n".join([HEADER, *rows]).encode(encoding)).decode()


def line(person: dict[str, Any], amount: str, account: bool = True, **changes: str) -> str:
    values = {
        "name": person["name"],
        "id_number": person["id_number"],
        "account": person["account"]["account_number"] if account else "",
        "amount": amount,
        "type": "种粮补贴",
        "year": "2026",
        **changes,
    }
    return ",".join(values.values())


def import_batch(maker: Bank, payer_account: str, rows: list[str], **extra: Any) -> Any:
    body = {
        "payer_account_number": payer_account,
        "file_name": "list.csv",
        "content_base64": upload(rows),
        **extra,
    }
    return maker.post("/subsidy-batches", body)


def test_the_whole_flow(client: TestClient, bank: Bank) -> None:
    payer_account = payer(bank)
    a, b = farmer(bank, "张大山"), farmer(bank, "李小河")
    maker = bank.as_role(Role.teller)
    batch = maker.ok(
        import_batch(
            maker,
            payer_account,
            [
                line(a, "120.50"),
                line(b, "80", account=False),
                line(b, "9", name="李小湖", type="农机购置补贴"),
            ],
        ),
        201,
    )
    assert (batch["status"], batch["row_count"], batch["valid_count"]) == ("imported", 3, 2)
    assert batch["valid_amount"] == 20050
    # the error report: CSV with the row as the user sees it
    report = maker.get(f"/subsidy-batches/{batch['id']}/errors")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    found = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert found == [
        ["row", "column", "code", "message"],
        ["4", "name", "subsidies.name_mismatch", found[1][3]],
    ]
    # rows show ID numbers masked to everyone
    rows = maker.ok(maker.get(f"/subsidy-batches/{batch['id']}/rows"))["items"]
    assert rows[0]["id_number_masked"] == a["id_number"][:6] + "********" + a["id_number"][-4:]
    assert a["id_number"] not in str(rows)
    maker.ok(maker.post(f"/subsidy-batches/{batch['id']}/submission"))
    checker = bank.as_role(Role.approver)
    approved = checker.ok(checker.post(f"/subsidy-batches/{batch['id']}/approval"))
    assert approved["status"] == "approved"
    result = maker.ok(maker.post(f"/subsidy-batches/{batch['id']}/disbursement", {"chunk_size": 1}))
    assert result["run"] == {
        "chunks": 2,
        "rows": 2,
        "paid": 1,
        "suspense": 1,
        "failed": 0,
        "amount": 20050,
    }
    summary = bank.ok(bank.get(f"/subsidy-batches/{batch['id']}"))
    assert summary["status"] == "disbursed"
    assert summary["totals"]["paid"] == {"rows": 1, "amount": 12050}
    assert summary["totals"]["suspense"] == {"rows": 1, "amount": 8000}
    assert summary["totals"]["invalid"] == {"rows": 1, "amount": 900}
    assert summary["reconciliation"] == {
        "payer_debit": 20050,
        "paid_plus_suspense": 20050,
        "reconciled": True,
    }
    assert bank.balance(a["account"]["account_number"]) == 12050
    assert bank.balance(payer_account) == 1_000_000 - 20050
    # again: nothing more is paid
    again = maker.ok(maker.post(f"/subsidy-batches/{batch['id']}/disbursement"))
    assert again["run"]["rows"] == 0
    assert bank.balance(payer_account) == 1_000_000 - 20050
    # b opens another account: the suspense row is paid into it
    second = bank.deposit_account(b["id"])
    assert bank.balance(second["account_number"]) == 8000
    summary = bank.ok(bank.get(f"/subsidy-batches/{batch['id']}"))
    assert summary["totals"]["paid"] == {"rows": 2, "amount": 20050}
    assert summary["reconciliation"]["reconciled"] is True


def test_the_maker_cannot_approve_their_own_batch(client: TestClient, bank: Bank) -> None:
    payer_account = payer(bank)
    a = farmer(bank, "王二")
    both = bank.as_role(Role.teller, Role.approver)
    batch = both.ok(import_batch(both, payer_account, [line(a, "10")]), 201)
    both.ok(both.post(f"/subsidy-batches/{batch['id']}/submission"))
    before = bank.snapshot()
    assert_problem(
        both.post(f"/subsidy-batches/{batch['id']}/approval"), 403, "subsidies.self_approval"
    )
    assert_problem(
        both.post(f"/subsidy-batches/{batch['id']}/rejection", {"reason": "自己驳回"}),
        403,
        "subsidies.self_approval",
    )
    assert bank.snapshot() == before
    # and nothing is paid before approval
    assert_problem(
        both.post(f"/subsidy-batches/{batch['id']}/disbursement"),
        409,
        "subsidies.wrong_batch_status",
    )
    checker = bank.as_role(Role.approver)
    rejected = checker.ok(
        checker.post(f"/subsidy-batches/{batch['id']}/rejection", {"reason": "名单待核实"})
    )
    assert (rejected["status"], rejected["rejection_reason"]) == ("rejected", "名单待核实")


def test_roles(client: TestClient, bank: Bank) -> None:
    payer_account = payer(bank)
    a = farmer(bank, "赵三")
    for role in (Role.gov_viewer, Role.auditor, Role.approver, Role.agent):
        viewer = bank.as_role(role)
        assert import_batch(viewer, payer_account, [line(a, "1")]).status_code == 403
    maker = bank.as_role(Role.account_manager)
    batch = maker.ok(import_batch(maker, payer_account, [line(a, "1")]), 201)
    gov = bank.as_role(Role.gov_viewer)
    assert gov.get(f"/subsidy-batches/{batch['id']}").status_code == 200
    assert gov.get(f"/subsidy-batches/{batch['id']}/rows").status_code == 403
    maker.ok(maker.post(f"/subsidy-batches/{batch['id']}/submission"))
    assert maker.post(f"/subsidy-batches/{batch['id']}/approval").status_code == 403


def test_a_bad_file_is_refused_and_writes_nothing(client: TestClient, bank: Bank) -> None:
    payer_account = payer(bank)
    a = farmer(bank, "钱四")
    maker = bank.as_role(Role.teller)
    before = bank.snapshot()
    missing = base64.b64encode("姓名,身份证号,金额\r\n钱四,x,1\r\n".encode()).decode()
    body = {"payer_account_number": payer_account, "file_name": "a.csv", "content_base64": missing}
    problem = assert_problem(
        maker.post("/subsidy-batches", body), 422, "subsidies.missing_columns", "file"
    )
    assert "subsidy_type" in problem["detail"]
    gbk_as_utf8 = {**body, "content_base64": upload([line(a, "1")], encoding="gbk")}
    gbk_as_utf8["encoding"] = "utf-8"
    assert_problem(maker.post("/subsidy-batches", gbk_as_utf8), 422, "subsidies.wrong_encoding")
    assert_problem(
        maker.post("/subsidy-batches", {**body, "content_base64": "not base64!"}),
        422,
        field="content_base64",
    )
    assert_problem(
        import_batch(maker, a["account"]["account_number"], [line(a, "1")]),
        422,
        "subsidies.payer_not_government",
        "payer_account_number",
    )
    assert bank.snapshot() == before
    # the same list in GBK, said to be GBK (or detected), is read
    ok = {**body, "content_base64": upload([line(a, "1")], encoding="gbk"), "encoding": "gbk"}
    assert maker.ok(maker.post("/subsidy-batches", ok), 201)["valid_count"] == 1


def test_another_institution_sees_nothing(
    client: TestClient, bank: Bank, factory: sessionmaker[Session]
) -> None:
    payer_account = payer(bank)
    a = farmer(bank, "孙五")
    batch = bank.ok(import_batch(bank, payer_account, [line(a, "1")]), 201)
    other = new_bank(client, factory)
    for path in ("", "/rows", "/errors"):
        assert_problem(other.get(f"/subsidy-batches/{batch['id']}{path}"), 404)
    for path, body in (
        ("/submission", None),
        ("/approval", None),
        ("/rejection", {"reason": "x"}),
        ("/disbursement", None),
    ):
        assert_problem(other.post(f"/subsidy-batches/{batch['id']}{path}", body), 404)
    assert other.ok(other.get("/subsidy-batches")) == []
    # B cannot pay from A's payer account either: numbers resolve within B only
    assert_problem(import_batch(other, payer_account, [line(a, "1")]), 404)
