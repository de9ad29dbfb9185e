"""The ledger over the API: accounts, transfer batches (two-phase, linked), balances, statements."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import datetime, timedelta

import pytest

from huinong.ledger.verify import verify
from tests.api.conftest import Bank, assert_problem, new_key, transfer

BALANCE_FIELDS = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")


def balances(bank: Bank, account_id: str) -> tuple[int, int, int, int]:
    account = bank.ledger_account(account_id)
    return tuple(account[f] for f in BALANCE_FIELDS)  # type: ignore[return-value]


def results(items: list[dict]) -> list[str]:
    return [r["result"] for r in items]


def two_accounts(bank: Bank, funded: int = 0) -> tuple[str, str, str]:
    """A limited account (funded from an unlimited source), another account, and the source."""
    source = bank.open_ledger_account(name="source")["id"]
    limited = bank.open_ledger_account(name="limited", debits_must_not_exceed_credits=True)["id"]
    other = bank.open_ledger_account(name="other")["id"]
    if funded:
        assert results(bank.transfers(transfer(source, limited, funded))) == ["ok"]
    return limited, other, source


def assert_verified(bank: Bank) -> None:
    with bank.factory() as session:
        assert verify(session, institution_id=bank.id) == []


# ----------------------------------------------------------------------------- accounts


def test_create_ledger_account(bank: Bank) -> None:
    owner = str(uuid.uuid4())
    response = bank.post(
        "/ledger/accounts",
        {
            "type": "asset",
            "code": 1301,
            "name": "贷款 Loans",
            "owner_id": owner,
            "credits_must_not_exceed_debits": True,
        },
    )
    assert response.status_code == 201, response.text
    account = response.json()
    assert account["type"] == "asset" and account["code"] == 1301 and account["ledger"] == "CNY"
    assert account["owner_id"] == owner and account["account_number"] is None
    assert account["credits_must_not_exceed_debits"] is True
    assert account["debits_must_not_exceed_credits"] is False
    assert account["closed"] is False
    assert all(account[f] == 0 for f in BALANCE_FIELDS)
    assert bank.ledger_account(account["id"]) == account


def test_create_account_with_client_id_is_idempotent(bank: Bank) -> None:
    account_id = str(uuid.uuid4())
    body = {"id": account_id, "type": "liability", "code": 2011, "name": "x"}
    first = bank.ok(bank.post("/ledger/accounts", body), 201)
    assert first["id"] == account_id
    again = bank.ok(bank.post("/ledger/accounts", body), 201)
    assert again == first
    before = bank.snapshot()
    response = bank.post("/ledger/accounts", {**body, "code": 2012})
    assert_problem(response, 409, "ledger.account_exists_with_different_fields", "id")
    assert bank.snapshot() == before


@pytest.mark.parametrize(
    ("patch", "status", "code", "field"),
    [
        (
            {"debits_must_not_exceed_credits": True, "credits_must_not_exceed_debits": True},
            422,
            "ledger.flags_are_mutually_exclusive",
            "flags",
        ),
        ({"code": 0}, 422, "request.invalid", "code"),
        ({"code": 65536}, 422, "request.invalid", "code"),
        ({"code": "2011"}, 422, "request.invalid", "code"),
        ({"code": 2011.0}, 422, "request.invalid", "code"),
        ({"type": "bogus"}, 422, "request.invalid", "type"),
        ({"ledger": "cny"}, 422, "request.invalid", "ledger"),
        ({"name": ""}, 422, "request.invalid", "name"),
        ({"id": "nope"}, 422, "request.invalid", "id"),
        ({"owner_id": "nope"}, 422, "request.invalid", "owner_id"),
        ({"credits_posted": 100}, 422, "request.invalid", "credits_posted"),
    ],
)
def test_create_account_bad_input(
    bank: Bank, patch: dict, status: int, code: str, field: str
) -> None:
    before = bank.snapshot()
    body = {"type": "liability", "code": 2011, "name": "x", **patch}
    assert_problem(bank.post("/ledger/accounts", body), status, code, field)
    assert bank.snapshot() == before


def test_list_accounts_with_cursor_pagination(bank: Bank) -> None:
    created = [bank.open_ledger_account(code=7000 + i % 2, name=f"a{i}")["id"] for i in range(8)]
    everything: list[str] = []
    cursor = None
    sizes = []
    while True:
        params: dict = {"limit": 5} | ({"cursor": cursor} if cursor else {})
        page = bank.ok(bank.get("/ledger/accounts", **params))
        sizes.append(len(page["items"]))
        everything.extend(a["id"] for a in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    total = 9 + 8  # the chart of accounts, then ours
    assert len(everything) == len(set(everything)) == total
    assert sizes[:3] == [5, 5, 5] and sum(sizes) == total
    assert everything == sorted(everything, key=uuid.UUID)
    assert everything[-8:] == created

    odd = bank.ok(bank.get("/ledger/accounts", code=7001, limit=500))["items"]
    assert [a["id"] for a in odd] == created[1::2]
    assert bank.ok(bank.get("/ledger/accounts", owner_id=str(uuid.uuid4())))["items"] == []


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"cursor": "!!!"}, "request.invalid_cursor", "cursor"),
        (
            {"cursor": base64.urlsafe_b64encode(b"short").decode()},
            "request.invalid_cursor",
            "cursor",
        ),
        ({"cursor": "é"}, "request.invalid_cursor", "cursor"),
        ({"limit": 0}, "request.invalid", "limit"),
        ({"limit": 501}, "request.invalid", "limit"),
        ({"limit": "ten"}, "request.invalid", "limit"),
        ({"owner_id": "nope"}, "request.invalid", "owner_id"),
        ({"code": 0}, "request.invalid", "code"),
    ],
)
def test_list_accounts_bad_query(bank: Bank, params: dict, code: str, field: str) -> None:
    assert_problem(bank.get("/ledger/accounts", **params), 422, code, field)


def test_accounts_are_per_institution(bank: Bank, other_bank: Bank) -> None:
    theirs = other_bank.open_ledger_account()["id"]
    assert_problem(bank.get(f"/ledger/accounts/{theirs}"), 404, "ledger.account_not_found")
    assert_problem(bank.get(f"/ledger/accounts/{theirs}/balance"), 404, "ledger.account_not_found")
    assert_problem(
        bank.get(f"/ledger/accounts/{theirs}/statement"), 404, "ledger.account_not_found"
    )
    assert_problem(bank.get(f"/ledger/accounts/{uuid.uuid4()}"), 404, "ledger.account_not_found")
    for path in (
        "/ledger/accounts/x",
        "/ledger/accounts/x/balance",
        "/ledger/accounts/x/statement",
    ):
        assert_problem(bank.get(path), 422, "request.invalid", "account_id")
    ours = {a["id"] for a in bank.ok(bank.get("/ledger/accounts", limit=500))["items"]}
    assert theirs not in ours


# ----------------------------------------------------------------------------- transfers


def test_batch_answers_one_result_per_transfer(bank: Bank) -> None:
    limited, other, source = two_accounts(bank, funded=1_000)
    ok = transfer(limited, other, 400)
    too_much = transfer(limited, other, 601)
    chain_a = transfer(source, other, 50, flags=["linked"])
    chain_b = transfer(limited, other, 10_000)  # fails: the chain fails as one
    single = transfer(other, limited, 25)
    open_chain = transfer(source, other, 7, flags=["linked"])
    before = balances(bank, limited), balances(bank, other), balances(bank, source)
    answered = bank.transfers(ok, too_much, chain_a, chain_b, single, open_chain)
    assert [(r["index"], r["id"]) for r in answered] == [
        (i, t["id"]) for i, t in enumerate([ok, too_much, chain_a, chain_b, single, open_chain])
    ]
    assert results(answered) == [
        "ok",
        "exceeds_credits",
        "linked_event_failed",
        "exceeds_credits",
        "ok",
        "linked_event_chain_open",
    ]
    assert answered[0]["amount"] == 400 and answered[0]["timestamp"]
    assert answered[1]["timestamp"] is None
    (l_dp, l_dpo, l_cp, l_cpo), (o_dp, o_dpo, o_cp, o_cpo), source_before = before
    assert balances(bank, limited) == (l_dp, l_dpo + 400, l_cp, l_cpo + 25)
    assert balances(bank, other) == (o_dp, o_dpo + 25, o_cp, o_cpo + 400)
    assert balances(bank, source) == source_before
    for failed in (too_much, chain_a, chain_b, open_chain):
        assert_problem(bank.get(f"/ledger/transfers/{failed['id']}"), 404)
    assert_verified(bank)


def test_two_phase_pending_post_and_void(bank: Bank) -> None:
    limited, other, _ = two_accounts(bank, funded=1_000)
    pending = transfer(limited, other, 600, flags=["pending"], timeout=3600)
    assert results(bank.transfers(pending)) == ["ok"]
    assert balances(bank, limited) == (600, 0, 0, 1_000)
    assert balances(bank, other) == (0, 0, 600, 0)
    balance = bank.ok(bank.get(f"/ledger/accounts/{limited}/balance"))
    assert (balance["balance"], balance["available"]) == (1_000, 400)
    # The hold counts against the limit.
    assert results(bank.transfers(transfer(limited, other, 401))) == ["exceeds_credits"]

    post = {"id": str(uuid.uuid4()), "pending_id": pending["id"], "flags": ["post_pending"]}
    posted = bank.transfers({**post, "amount": 450})
    assert results(posted) == ["ok"] and posted[0]["amount"] == 450
    assert balances(bank, limited) == (0, 450, 0, 1_000)
    assert balances(bank, other) == (0, 0, 0, 450)
    again = {"id": str(uuid.uuid4()), "pending_id": pending["id"], "flags": ["post_pending"]}
    assert results(bank.transfers(again)) == ["pending_transfer_already_posted"]
    void_posted = {"id": str(uuid.uuid4()), "pending_id": pending["id"], "flags": ["void_pending"]}
    assert results(bank.transfers(void_posted)) == ["pending_transfer_already_posted"]

    second = transfer(limited, other, 300, flags=["pending"])
    assert results(bank.transfers(second)) == ["ok"]
    void = {"id": str(uuid.uuid4()), "pending_id": second["id"], "flags": ["void_pending"]}
    assert results(bank.transfers(void)) == ["ok"]
    assert balances(bank, limited) == (0, 450, 0, 1_000)
    void_again = {"id": str(uuid.uuid4()), "pending_id": second["id"], "flags": ["void_pending"]}
    assert results(bank.transfers(void_again)) == ["pending_transfer_already_voided"]

    stray = {"id": str(uuid.uuid4()), "pending_id": str(uuid.uuid4()), "flags": ["post_pending"]}
    not_pending = {"id": str(uuid.uuid4()), "pending_id": post["id"], "flags": ["void_pending"]}
    too_big_pending = transfer(limited, other, 100, flags=["pending"])
    post_too_much = {
        "id": str(uuid.uuid4()),
        "pending_id": too_big_pending["id"],
        "flags": ["post_pending"],
        "amount": 101,
    }
    assert results(bank.transfers(stray, not_pending, too_big_pending, post_too_much)) == [
        "pending_transfer_not_found",
        "pending_transfer_not_pending",
        "ok",
        "exceeds_pending_transfer_amount",
    ]
    fetched = bank.ok(bank.get(f"/ledger/transfers/{post['id']}"))
    assert fetched["pending_id"] == pending["id"] and fetched["flags"] == ["post_pending"]
    assert fetched["amount"] == 450
    assert_verified(bank)


def test_same_transfer_id_is_exists_never_twice(bank: Bank) -> None:
    limited, other, _ = two_accounts(bank, funded=1_000)
    first = transfer(limited, other, 100, reference="order-1", metadata={"k": "v"})
    assert results(bank.transfers(first)) == ["ok"]
    before = bank.snapshot()
    # A new Idempotency-Key with the same transfer id: the ledger's own idempotency.
    assert results(bank.transfers(first)) == ["exists"]
    assert results(bank.transfers({**first, "amount": 101})) == ["exists_with_different_amount"]
    assert results(bank.transfers({**first, "reference": "order-2"})) == [
        "exists_with_different_reference"
    ]
    assert results(bank.transfers({**first, "metadata": {"k": "w"}})) == [
        "exists_with_different_metadata"
    ]
    after = bank.snapshot()
    assert after["accounts"] == before["accounts"] and after["transfers"] == before["transfers"]


def test_transfer_ids_of_another_institution_are_taken(bank: Bank, other_bank: Bank) -> None:
    a, b, _ = two_accounts(bank, funded=100)
    x, y, _ = two_accounts(other_bank, funded=100)
    mine = transfer(a, b, 10)
    assert results(bank.transfers(mine)) == ["ok"]
    before = other_bank.snapshot()
    assert results(
        other_bank.transfers({**mine, "debit_account_id": x, "credit_account_id": y})
    ) == ["id_already_used"]
    assert other_bank.snapshot()["transfers"] == before["transfers"]
    assert_problem(other_bank.get(f"/ledger/transfers/{mine['id']}"), 404)


def test_get_and_list_transfers(bank: Bank) -> None:
    limited, other, _ = two_accounts(bank, funded=1_000)
    sent = [transfer(limited, other, 10 + i, reference="batch-7", code=42) for i in range(5)]
    bank.transfers(*sent)
    fetched = bank.ok(bank.get(f"/ledger/transfers/{sent[2]['id']}"))
    assert fetched["id"] == sent[2]["id"]
    assert (fetched["debit_account_id"], fetched["credit_account_id"]) == (limited, other)
    assert (fetched["amount"], fetched["code"], fetched["ledger"]) == (12, 42, "CNY")
    assert fetched["flags"] == [] and fetched["pending_id"] is None and fetched["timeout"] == 0
    assert fetched["reference"] == "batch-7"

    seen: list[str] = []
    cursor = None
    while True:
        params: dict = {"reference": "batch-7", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = bank.ok(bank.get("/ledger/transfers", **params))
        seen.extend(t["id"] for t in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [t["id"] for t in sent]
    assert_problem(bank.get(f"/ledger/transfers/{uuid.uuid4()}"), 404, "ledger.transfer_not_found")
    assert_problem(bank.get("/ledger/transfers/123"), 422, "request.invalid", "transfer_id")
    assert_problem(bank.get("/ledger/transfers", cursor="abc"), 422, "request.invalid_cursor")


# ----------------------------------------------------------------------------- balances


def test_balance_now_and_as_of(bank: Bank) -> None:
    limited, other, _ = two_accounts(bank)
    source = bank.open_ledger_account(name="s")["id"]
    first = bank.transfers(transfer(source, other, 100))[0]
    second = bank.transfers(transfer(source, other, 250))[0]
    hold = transfer(other, limited, 80, flags=["pending"])
    held = bank.transfers(hold)[0]
    void = {"id": str(uuid.uuid4()), "pending_id": hold["id"], "flags": ["void_pending"]}
    voided = bank.transfers(void)[0]
    assert results([first, second, held, voided]) == ["ok"] * 4

    now = bank.ok(bank.get(f"/ledger/accounts/{other}/balance"))
    assert now["account_id"] == other and now["ledger"] == "CNY"
    assert (now["credits_posted"], now["debits_pending"], now["balance"], now["available"]) == (
        350,
        0,
        350,
        350,
    )

    def at(stamp: str | datetime) -> dict:
        value = stamp if isinstance(stamp, str) else stamp.isoformat()
        return bank.ok(bank.get(f"/ledger/accounts/{other}/balance", as_of=value))  # type: ignore[no-any-return]

    start = datetime.fromisoformat(first["timestamp"])
    assert at(start - timedelta(microseconds=1))["balance"] == 0
    assert at(first["timestamp"])["balance"] == 100
    assert at(first["timestamp"])["as_of"].startswith(first["timestamp"][:19])
    assert at(second["timestamp"])["balance"] == 350
    during_hold = at(held["timestamp"])
    assert (during_hold["debits_pending"], during_hold["available"]) == (80, 270)
    assert at(voided["timestamp"])["available"] == 350
    shanghai = datetime.fromisoformat(first["timestamp"]).astimezone(
        datetime.fromisoformat("2026-01-01T00:00:00+08:00").tzinfo
    )
    assert at(shanghai)["balance"] == 100  # the same instant in another zone

    naive = bank.get(f"/ledger/accounts/{other}/balance", as_of="2026-01-01T00:00:00")
    assert_problem(naive, 422, "request.naive_time", "as_of")
    garbage = bank.get(f"/ledger/accounts/{other}/balance", as_of="yesterday")
    assert_problem(garbage, 422, "request.invalid", "as_of")


@pytest.mark.parametrize("where", ["as_of-min", "as_of-max", "statement-cursor", "list-cursor"])
def test_extreme_times_are_422_not_500(bank: Bank, where: str) -> None:
    """Regression: 0001-01-01T00:00+14:00 is a valid aware datetime whose UTC form leaves the
    calendar; astimezone raised OverflowError while binding the query: a 500."""
    account = bank.open_ledger_account()["id"]
    early = "0001-01-01T00:00:00+14:00"
    cursor = base64.urlsafe_b64encode(f"{early}|{uuid.uuid4()}".encode()).decode().rstrip("=")
    if where == "as_of-min":
        response = bank.get(f"/ledger/accounts/{account}/balance", as_of=early)
    elif where == "as_of-max":
        response = bank.get(
            f"/ledger/accounts/{account}/balance", as_of="9999-12-31T23:59:59-14:00"
        )
    elif where == "statement-cursor":
        response = bank.get(f"/ledger/accounts/{account}/statement", cursor=cursor)
    else:
        response = bank.get("/ledger/transfers", cursor=cursor)
    assert_problem(response, 422, field="cursor" if "cursor" in where else "as_of")


# ----------------------------------------------------------------------------- statements


def test_statement_running_balance_and_paging(bank: Bank) -> None:
    account, other, source = two_accounts(bank)
    steps = [
        transfer(source, account, 1_000),
        transfer(account, other, 300),
        transfer(source, account, 50),
        transfer(account, other, 200, flags=["pending"]),
        transfer(account, other, 120),
    ]
    bank.transfers(*steps)
    post = {"id": str(uuid.uuid4()), "pending_id": steps[3]["id"], "flags": ["post_pending"]}
    bank.transfers({**post, "amount": 150})
    bank.transfers(transfer(source, account, 5))

    full = bank.ok(bank.get(f"/ledger/accounts/{account}/statement", limit=500))
    assert full["account_id"] == account and full["next_cursor"] is None
    lines = full["items"]
    assert [line["transfer"]["id"] for line in lines] == [
        *[s["id"] for s in steps],
        post["id"],
        lines[-1]["transfer"]["id"],
    ]
    assert [line["side"] for line in lines] == [
        "credit",
        "debit",
        "credit",
        "debit",
        "debit",
        "debit",
        "credit",
    ]
    assert [line["posted_change"] for line in lines] == [1_000, -300, 50, 0, -120, -150, 5]
    assert [line["pending_change"] for line in lines] == [0, 0, 0, -200, 0, 200, 0]
    assert [line["balance_after"] for line in lines] == [1_000, 700, 750, 750, 630, 480, 485]
    assert lines[-1]["balance_after"] == bank.ledger_balance(account)

    paged: list[dict] = []
    cursor = None
    while True:
        params: dict = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = bank.ok(bank.get(f"/ledger/accounts/{account}/statement", **params))
        assert len(page["items"]) <= 2
        paged.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == lines  # running balances carry across pages

    response = bank.get(f"/ledger/accounts/{account}/statement", cursor="bm90IGEgY3Vyc29y")
    assert_problem(response, 422, "request.invalid_cursor", "cursor")


def test_statement_of_an_asset_account_grows_with_debits(bank: Bank) -> None:
    asset = bank.open_ledger_account(type="asset", code=1301, name="loans")["id"]
    funding = bank.open_ledger_account()["id"]
    bank.transfers(transfer(asset, funding, 900), transfer(funding, asset, 400))
    lines = bank.ok(bank.get(f"/ledger/accounts/{asset}/statement"))["items"]
    assert [(line["side"], line["posted_change"], line["balance_after"]) for line in lines] == [
        ("debit", 900, 900),
        ("credit", -400, 500),
    ]
    assert bank.ledger_balance(asset) == 500


def test_idempotency_key_on_batches(bank: Bank) -> None:
    limited, other, _ = two_accounts(bank, funded=1_000)
    body = {"transfers": [transfer(limited, other, 10), transfer(limited, other, 5_000)]}
    key = new_key()
    first = bank.post("/ledger/transfers", body, key=key)
    before = bank.snapshot()
    second = bank.post("/ledger/transfers", body, key=key)
    assert first.status_code == second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert results(second.json()["results"]) == ["ok", "exceeds_credits"]
    assert bank.snapshot() == before


def test_expired_pending_cannot_be_posted_or_voided(bank: Bank) -> None:
    limited, other, _ = two_accounts(bank, funded=1_000)
    pending = transfer(limited, other, 300, flags=["pending"], timeout=1)
    created = bank.transfers(pending)[0]
    assert created["result"] == "ok"
    lasting = transfer(limited, other, 200, flags=["pending"])
    assert results(bank.transfers(lasting)) == ["ok"]
    fetched = bank.ok(bank.get(f"/ledger/transfers/{pending['id']}"))
    assert fetched["timeout"] == 1 and fetched["flags"] == ["pending"]
    deadline = datetime.fromisoformat(created["timestamp"]) + timedelta(seconds=1)
    while datetime.now(deadline.tzinfo) <= deadline + timedelta(milliseconds=50):
        time.sleep(0.05)
    before = bank.snapshot()
    post = {"id": str(uuid.uuid4()), "pending_id": pending["id"], "flags": ["post_pending"]}
    void = {"id": str(uuid.uuid4()), "pending_id": pending["id"], "flags": ["void_pending"]}
    assert results(bank.transfers(post)) == ["pending_transfer_expired"]
    assert results(bank.transfers(void)) == ["pending_transfer_expired"]
    after = bank.snapshot()
    assert after["accounts"] == before["accounts"] and after["transfers"] == before["transfers"]
    # A pending without a timeout never expires.
    post_lasting = {"id": str(uuid.uuid4()), "pending_id": lasting["id"], "flags": ["post_pending"]}
    assert results(bank.transfers(post_lasting)) == ["ok"]


def test_pending_transfers_of_another_institution_cannot_be_resolved(
    bank: Bank, other_bank: Bank
) -> None:
    x, y, _ = two_accounts(other_bank, funded=500)
    theirs = transfer(x, y, 100, flags=["pending"])
    assert results(other_bank.transfers(theirs)) == ["ok"]
    before = bank.snapshot(), other_bank.snapshot()
    for flag in ("post_pending", "void_pending"):
        resolve = {"id": str(uuid.uuid4()), "pending_id": theirs["id"], "flags": [flag]}
        assert results(bank.transfers(resolve)) == ["pending_transfer_not_found"]
    after = bank.snapshot(), other_bank.snapshot()
    assert after[1] == before[1]
    assert after[0]["transfers"] == before[0]["transfers"]
    assert after[0]["accounts"] == before[0]["accounts"]
    assert balances(other_bank, x) == (100, 0, 0, 500)
