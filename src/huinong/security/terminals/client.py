"""A terminal's side of the signed protocol (``signing.py``), over httpx.

:class:`TerminalClient` signs each request with the terminal's SM2 key and verifies each
answer with the pinned platform key; an answer whose signature is missing or wrong raises
instead of being returned, so code built on it never acts on an unverified answer. It works
over any ``httpx.Client``, including FastAPI's ``TestClient`` (tests and the demo run the
app in-process), or builds its own from a base URL::

    from huinong.security.terminals.client import TerminalClient

    with TerminalClient(
        "https://bank.example/",
        terminal_id="0192f0c4-5e1a-7b3c-8d4e-0123456789ab",
        key_serial=1,
        private_key=open("terminal.pem").read(),  # PEM, or 64 hex digits
        platform_public_key=open("platform.pem").read(),  # pinned at enrolment
        location="30.274084,120.155070",  # when the terminal has a geofence
    ) as terminal:
        account = terminal.get("/api/v1/deposit-accounts/62210000000017").json()

Refused requests (401/403 before the signature was accepted) come back unsigned, so they raise
:class:`UnsignedResponse`; its ``status_code`` and ``code`` say why (``terminals.bad_signature``,
``terminals.terminal_suspended``, ...).
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any

import httpx

from huinong import clock
from huinong.security.crypto import SM2PrivateKey, SM2PublicKey
from huinong.security.terminals import signing


class TerminalClientError(Exception):
    """An answer the terminal must not trust. ``response`` is the answer as received."""

    def __init__(self, message: str, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def code(self) -> str | None:
        """The problem code of an error answer (``terminals.replayed_nonce``), if it has one."""
        return _problem_code(self.response)


class UnsignedResponse(TerminalClientError):
    """The answer carries no platform signature: either the platform refused the request
    before accepting its signature (see ``code``), or something in between answered."""


class BadResponseSignature(TerminalClientError):
    """The answer's platform signature is malformed or does not verify with the pinned key:
    the answer was altered on the way, or did not come from the platform."""


def _problem_code(response: httpx.Response) -> str | None:
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _private_key(value: SM2PrivateKey | str | bytes) -> SM2PrivateKey:
    if isinstance(value, SM2PrivateKey):
        return value
    text = value.decode() if isinstance(value, bytes) else value
    return SM2PrivateKey.from_pem(text) if "-----BEGIN" in text else SM2PrivateKey.from_hex(text)


def _public_key(value: SM2PublicKey | str | bytes) -> SM2PublicKey:
    if isinstance(value, SM2PublicKey):
        return value
    text = value.decode() if isinstance(value, bytes) else value
    return SM2PublicKey.from_pem(text) if "-----BEGIN" in text else SM2PublicKey.from_hex(text)


def request_target(url: httpx.URL) -> bytes:
    """PATH_WITH_QUERY as httpx will put it on the request line (no ``?`` without a query)."""
    raw = url.raw_path
    return raw[:-1] if raw.endswith(b"?") else raw


class TerminalClient:
    def __init__(
        self,
        http: str | httpx.Client,
        *,
        terminal_id: uuid.UUID | str,
        key_serial: int,
        private_key: SM2PrivateKey | str | bytes,
        platform_public_key: SM2PublicKey | str | bytes,
        location: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._owns_http = isinstance(http, str)
        self.http = httpx.Client(base_url=http, timeout=timeout) if isinstance(http, str) else http
        self.terminal_id = str(uuid.UUID(str(terminal_id)))
        self.key_serial = key_serial
        self.private_key = _private_key(private_key)
        self.platform_public_key = _public_key(platform_public_key)
        # The position reported with every request (``"<lat>,<lon>"``); the device updates it.
        self.location = location
        # The serial of the platform key that signed the last verified answer.
        self.platform_key_serial: int | None = None

    def __enter__(self) -> TerminalClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def build(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        location: str | None = None,
        nonce: str | None = None,
    ) -> httpx.Request:
        """A signed request, not sent (tests use it to tamper with one)."""
        request = self.http.build_request(
            method, url, params=params, json=json, content=content, headers=headers
        )
        signed = signing.sign_request(
            self.private_key,
            terminal_id=self.terminal_id,
            key_serial=self.key_serial,
            method=request.method,
            path_with_query=request_target(request.url),
            body=request.read(),
            timestamp=int(clock.now().timestamp()),
            nonce=nonce,
            location=location if location is not None else self.location,
        )
        request.headers.update(signed)
        return request

    def send(self, request: httpx.Request) -> httpx.Response:
        """Send a signed request and return the answer once its signature has verified."""
        response = self.http.send(request)
        response.read()
        self.verify(request, response)
        return response

    def verify(self, request: httpx.Request, response: httpx.Response) -> None:
        try:
            self.platform_key_serial = signing.verify_response(
                self.platform_public_key,
                method=request.method,
                path_with_query=request_target(request.url),
                request_nonce=request.headers[signing.NONCE_HEADER],
                status=response.status_code,
                body=response.content,
                headers=response.headers,
            )
        except signing.ResponseSignatureMissing as exc:
            code = _problem_code(response)
            refused = f" (the platform answered {response.status_code} {code})" if code else ""
            raise UnsignedResponse(
                f"{request.method} {request.url.path}: {exc}{refused}", response
            ) from None
        except signing.ResponseSignatureInvalid as exc:
            raise BadResponseSignature(
                f"{request.method} {request.url.path}: {exc}", response
            ) from None

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.send(self.build(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)
