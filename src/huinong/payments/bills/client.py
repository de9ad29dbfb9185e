"""Our side of the HTTP biller protocol (see :mod:`huinong.payments.bills.protocol`), over
httpx: every request signed with our SM2 key for the biller, every answer verified against
the biller's public key and bound to our request's nonce before a byte of it is believed.

Failures are :class:`BillerError` (a 503 to API callers) with one of three codes, because
the caller's next step differs:

* ``bills.biller_unavailable`` — no answer, a timeout, a 5xx: try again later (a payment's
  confirmation stays pending and ``huinong bills confirm-pending`` retries it);
* ``bills.biller_refused`` — the biller answered 4xx (it refused our signature, or the
  request): retrying the same request will not help; someone must look;
* ``bills.biller_answer_invalid`` — the answer's signature or shape is wrong: treated like
  no answer at all (it may have been tampered with on the way).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx

from huinong.errors import ServiceUnavailable
from huinong.payments.bills import protocol
from huinong.security.crypto import SM2PrivateKey, SM2PublicKey

DEFAULT_TIMEOUT_SECONDS = 5.0


class BillerError(ServiceUnavailable):
    """The biller could not be used for this request (see the module docstring)."""

    @property
    def retryable(self) -> bool:
        return self.code != "bills.biller_refused"


@dataclass(frozen=True)
class BillerEndpoint:
    base_url: str
    caller: str  # how the biller knows us: the institution's code
    our_key: SM2PrivateKey
    biller_key: SM2PublicKey
    timeout: float = DEFAULT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class RemoteBill:
    bill_id: str
    reference: str
    period: str
    amount: int
    due_date: date | None
    status: str


@dataclass(frozen=True)
class Receipt:
    payment_id: str
    receipt: str
    confirmed_at: datetime


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


class BillerClient:
    def __init__(self, endpoint: BillerEndpoint, *, transport: httpx.BaseTransport | None = None):
        self.endpoint = endpoint
        self._transport = transport

    def _call(self, method: str, target: str, body: bytes) -> httpx.Response:
        signed = protocol.sign_request(
            self.endpoint.our_key,
            method=method,
            target=target,
            caller=self.endpoint.caller,
            body=body,
            now=int(time.time()),
        )
        headers = {**signed.headers, "Content-Type": "application/json"}
        try:
            with httpx.Client(
                base_url=self.endpoint.base_url.rstrip("/"),
                timeout=self.endpoint.timeout,
                transport=self._transport,
            ) as http:
                response = http.request(method, target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise BillerError(
                "bills.biller_unavailable", f"the biller did not answer ({type(exc).__name__})"
            ) from None
        try:
            protocol.verify_response(
                self.endpoint.biller_key,
                status=response.status_code,
                request_nonce=signed.nonce,
                headers=response.headers,
                body=response.content,
                now=int(time.time()),
            )
        except protocol.SignatureRefused as refused:
            raise BillerError(
                "bills.biller_answer_invalid",
                f"the biller's answer failed verification ({refused.reason})",
            ) from None
        if response.status_code >= 500:
            raise BillerError(
                "bills.biller_unavailable", f"the biller answered {response.status_code}"
            )
        if response.status_code >= 400:
            reason = _json(response).get("reason", "") if _is_json(response) else ""
            raise BillerError(
                "bills.biller_refused",
                f"the biller refused the request ({response.status_code} {reason})".strip(),
            )
        return response

    def query(self, reference: str) -> list[RemoteBill]:
        response = self._call("POST", protocol.QUERY_PATH, canonical_json({"reference": reference}))
        try:
            return [
                RemoteBill(
                    bill_id=str(item["bill_id"]),
                    reference=str(item["reference"]),
                    period=str(item["period"]),
                    amount=_fen(item["amount_fen"]),
                    due_date=date.fromisoformat(item["due_date"]) if item.get("due_date") else None,
                    status=str(item["status"]),
                )
                for item in _json(response)["bills"]
            ]
        except (KeyError, TypeError, ValueError):
            raise BillerError(
                "bills.biller_answer_invalid", "the biller's bill list is malformed"
            ) from None

    def confirm(
        self,
        *,
        payment_id: str,
        bill_id: str | None,
        reference: str,
        period: str,
        amount: int,
        paid_at: datetime,
    ) -> Receipt:
        body = canonical_json(
            {
                "payment_id": payment_id,
                "bill_id": bill_id,
                "reference": reference,
                "period": period,
                "amount_fen": amount,
                "paid_at": paid_at.isoformat(),
            }
        )
        answer = _json(self._call("POST", protocol.CONFIRM_PATH, body))
        try:
            if answer["payment_id"] != payment_id or answer["status"] != "confirmed":
                raise ValueError("not our confirmation")
            return Receipt(
                payment_id,
                str(answer["receipt"])[:64],
                datetime.fromisoformat(answer["confirmed_at"]),
            )
        except (KeyError, TypeError, ValueError):
            raise BillerError(
                "bills.biller_answer_invalid", "the biller's confirmation is malformed"
            ) from None

    def return_file(self, day: date) -> bytes:
        return self._call("GET", f"{protocol.RETURN_FILE_PATH}?date={day.isoformat()}", b"").content


def _is_json(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("application/json")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        raise BillerError(
            "bills.biller_answer_invalid", "the biller's answer is not JSON"
        ) from None
    if not isinstance(value, dict):
        raise BillerError("bills.biller_answer_invalid", "the biller's answer is not an object")
    return value


def _fen(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("amount_fen is a positive integer")
    return value
