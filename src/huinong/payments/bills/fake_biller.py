"""A small, real biller speaking the HTTP biller protocol (HNB1), for tests and the demo.

It is a real HTTP server on a real port (the standard library's threading HTTP server: the
domain packages may not import web frameworks, and a fake needs none): it holds its bills in memory,
answers bill queries, records payment confirmations (idempotently, on our payment id), signs
every answer with its SM2 key, refuses requests our key did not sign, and writes the return
file a real biller sends back for reconciliation. Knobs for tests: ``fail_confirmations``
(answer the next N confirmations with 503, as a biller having a bad day does),
``answer_key`` (sign answers with another key: an impostor), and the discrepancies
:meth:`FakeBiller.return_file` can inject.

Run it alone::

    python -m huinong.payments.bills.fake_biller --port 8765 --caller BANK01=<our public key hex>

It prints its own public key (give it to ``huinong bills create-biller``). In tests,
``with running(biller) as base_url:`` serves it on a free port in a background thread.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from huinong.payments.bills import files, protocol
from huinong.security.crypto import SM2PrivateKey, SM2PublicKey

LOCAL = ZoneInfo("Asia/Shanghai")


@dataclass
class FakeBiller:
    key: SM2PrivateKey = field(default_factory=SM2PrivateKey.generate)
    clients: dict[str, SM2PublicKey] = field(default_factory=dict)  # caller -> key
    bills: dict[str, dict[str, Any]] = field(default_factory=dict)  # bill id -> bill
    confirmations: dict[str, dict[str, Any]] = field(default_factory=dict)  # payment id -> …
    fail_confirmations: int = 0
    answer_key: SM2PrivateKey | None = None
    requests_refused: int = 0
    _nonces: dict[tuple[str, str], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def public_key(self) -> SM2PublicKey:
        return self.key.public_key

    def add_bill(
        self, reference: str, period: str, amount: int, due_date: date | None = None
    ) -> str:
        bill_id = f"B{uuid.uuid4().hex[:12].upper()}"
        with self._lock:
            self.bills[bill_id] = {
                "bill_id": bill_id,
                "reference": reference,
                "period": period,
                "amount_fen": amount,
                "due_date": due_date.isoformat() if due_date else None,
                "status": "open",
            }
        return bill_id

    # ------------------------------------------------------------------ return file

    def return_file(
        self,
        day: date,
        *,
        drop: Iterable[str] = (),
        amounts: dict[str, int] | None = None,
        duplicate: Iterable[str] = (),
        extra: Iterable[tuple[str, str, int]] = (),
    ) -> bytes:
        """The payments confirmed on ``day`` (Beijing time), with injected discrepancies:
        ``drop`` leaves payments out, ``amounts`` changes amounts, ``duplicate`` lists
        payments twice, ``extra`` adds (payment id, reference, fen) we never made."""
        dropped, twice, changed = set(drop), set(duplicate), amounts or {}
        rows: list[tuple[str, str, int, datetime]] = []
        with self._lock:
            confirmations = sorted(self.confirmations.values(), key=lambda c: c["paid_at"])
        for c in confirmations:
            paid_at = datetime.fromisoformat(c["paid_at"])
            if paid_at.astimezone(LOCAL).date() != day or c["payment_id"] in dropped:
                continue
            row = (c["payment_id"], c["reference"], changed.get(c["payment_id"], c["amount_fen"]))
            rows.append((*row, paid_at))
            if c["payment_id"] in twice:
                rows.append((*row, paid_at))
        now = datetime.now(UTC)
        rows.extend((pid, ref, amount, now) for pid, ref, amount in extra)
        return files.write_return_file(rows)

    # ------------------------------------------------------------------ HTTP

    def _nonce_is_new(self, caller: str, nonce: str) -> bool:
        now = time.monotonic()
        with self._lock:
            for seen, at in list(self._nonces.items()):
                if at < now - 2 * protocol.MAX_SKEW_SECONDS:
                    del self._nonces[seen]
            if (caller, nonce) in self._nonces:
                return False
            self._nonces[(caller, nonce)] = now
            return True

    def _answer(
        self, status: int, content: Any, request_nonce: str, media: str
    ) -> tuple[int, dict[str, str], bytes]:
        body = (
            content
            if isinstance(content, bytes)
            else json.dumps(content, ensure_ascii=False).encode()
        )
        headers = protocol.sign_response(
            self.answer_key or self.key,
            status=status,
            request_nonce=request_nonce,
            body=body,
            now=int(time.time()),
        )
        return status, {**headers, "Content-Type": media}, body

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """One request: (status, headers, body) of the signed answer."""
        path, _, query = target.partition("?")
        nonce = headers.get(protocol.NONCE, "")
        try:
            protocol.verify_request(
                self.clients.get,
                method=method,
                target=target,
                headers=headers,
                body=body,
                now=int(time.time()),
                nonce_is_new=self._nonce_is_new,
            )
        except protocol.SignatureRefused as refused:
            with self._lock:
                self.requests_refused += 1
            return self._answer(
                401, {"reason": refused.reason, "message": str(refused)}, nonce, "application/json"
            )
        try:
            if (method, path) == ("POST", protocol.QUERY_PATH):
                status, content = self._query(json.loads(body))
            elif (method, path) == ("POST", protocol.CONFIRM_PATH):
                status, content = self._confirm(json.loads(body))
            elif (method, path) == ("GET", protocol.RETURN_FILE_PATH):
                day = date.fromisoformat(parse_qs(query).get("date", [""])[0])
                return self._answer(200, self.return_file(day), nonce, "text/csv")
            else:
                status, content = 404, {"reason": "not_found", "message": "no such call"}
        except (ValueError, KeyError, TypeError):
            status, content = 400, {"reason": "malformed", "message": "malformed request"}
        return self._answer(status, content, nonce, "application/json")

    def _query(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        reference = str(request["reference"])
        with self._lock:
            found = [dict(b) for b in self.bills.values() if b["reference"] == reference]
        return 200, {"bills": found}

    def _confirm(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self.fail_confirmations > 0:
                self.fail_confirmations -= 1
                return 503, {"reason": "unavailable", "message": "try again later"}
            payment_id = str(request["payment_id"])
            content = {
                k: request[k] for k in ("bill_id", "reference", "period", "amount_fen", "paid_at")
            }
            earlier = self.confirmations.get(payment_id)
            if earlier is not None:
                if any(earlier[k] != v for k, v in content.items()):
                    return 409, {"reason": "payment_id_reused", "message": "other content"}
                return 200, self._receipt(earlier)
            bill = self.bills.get(str(request["bill_id"]))
            if bill is None:
                return 404, {"reason": "no_such_bill", "message": "no such bill"}
            if bill["status"] != "open":
                return 409, {"reason": "bill_not_open", "message": "the bill is not open"}
            if bill["amount_fen"] != request["amount_fen"]:
                return 422, {"reason": "amount_differs", "message": "wrong amount"}
            bill["status"] = "paid"
            confirmation = {
                "payment_id": payment_id,
                **content,
                "receipt": f"R{uuid.uuid4().hex[:16].upper()}",
                "confirmed_at": datetime.now(UTC).isoformat(),
            }
            self.confirmations[payment_id] = confirmation
            return 200, self._receipt(confirmation)

    @staticmethod
    def _receipt(confirmation: dict[str, Any]) -> dict[str, Any]:
        return {
            "payment_id": confirmation["payment_id"],
            "status": "confirmed",
            "receipt": confirmation["receipt"],
            "confirmed_at": confirmation["confirmed_at"],
        }

    def server(self, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
        """An HTTP server for this biller (port 0: a free one), not yet serving."""
        biller = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()}
                status, out_headers, out = biller.handle(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in out_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = _serve  # the method names http.server dispatches to
            do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return  # references are not to be logged needlessly

        return ThreadingHTTPServer((host, port), Handler)


@contextlib.contextmanager
def running(biller: FakeBiller, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``biller`` on a free port in a background thread; yields its base URL and
    stops the server on exit."""
    server = biller.server(host, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a fake biller speaking HNB1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--private-key", help="the biller's SM2 private key (hex); new if absent")
    parser.add_argument(
        "--caller", action="append", default=[], help="CODE=PUBLIC_KEY_HEX of a bank it serves"
    )
    parser.add_argument("--bill", action="append", default=[], help="REFERENCE:PERIOD:FEN")
    args = parser.parse_args(argv)
    key = SM2PrivateKey.from_hex(args.private_key) if args.private_key else SM2PrivateKey.generate()
    biller = FakeBiller(key=key)
    for item in args.caller:
        code, _, public = item.partition("=")
        biller.clients[code] = SM2PublicKey.from_hex(public)
    for item in args.bill:
        reference, period, fen = item.split(":")
        biller.add_bill(reference, period, int(fen))
    server = biller.server(args.host, args.port)
    print(f"biller public key: {biller.public_key.to_hex()}", flush=True)
    print(f"serving HNB1 on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


if __name__ == "__main__":  # pragma: no cover
    main()
