"""Logs carry the request id and never personal data."""

from __future__ import annotations

import json
import logging

from huinong.logs import JsonFormatter, request_id_var
from huinong.parties import rules
from tests.conftest import new_institution, staff_headers


def test_json_lines_carry_the_request_id():
    token = request_id_var.set("req-42")
    try:
        record = logging.LogRecord(
            "huinong.x", logging.INFO, __file__, 1, "moved %d fen", (5,), None
        )
        record.request_id = request_id_var.get()
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["request_id"] == "req-42"
    assert line["message"] == "moved 5 fen"
    assert line["level"] == "info"


def test_no_personal_data_reaches_the_logs(client, factory, caplog):
    institution = new_institution(factory)
    headers = {**staff_headers(factory, institution), "X-Request-Id": "trace-me"}
    body = "37028119800101123"
    id_number = body + rules.resident_id_check_char(body)
    phone = "13912345678"
    with caplog.at_level(logging.DEBUG):
        created = client.post(
            "/api/v1/customers",
            headers=headers,
            json={"kind": "individual", "name": "李秀英", "id_number": id_number, "phone": phone},
        )
        assert created.status_code == 201
        assert created.headers["x-request-id"] == "trace-me"
        account = client.post(
            "/api/v1/deposit-accounts", headers=headers, json={"customer_id": created.json()["id"]}
        ).json()
        number = account["account_number"]
        assert client.get(f"/api/v1/deposit-accounts/{number}", headers=headers).status_code == 200
    # The test's own HTTP client (httpx) logs its URLs; the server's records are what count.
    server = [r for r in caplog.records if not r.name.startswith("httpx")]
    text = "".join(r.getMessage() + str(r.__dict__) for r in server)
    assert "trace-me" in {getattr(r, "request_id", "") for r in server}
    for secret in (id_number, phone, "李秀英", number):
        assert secret not in text
