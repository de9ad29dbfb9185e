"""Signed terminal requests at the HTTP edge: authenticate the request, sign the answer.

:func:`authenticate_terminal` is what ``current_principal`` calls when a request names a
terminal (``X-Terminal-Id``). It reads the body, rebuilds the request target exactly as it
came over the wire (``raw_path`` and ``query_string``, untouched), and hands everything to
``terminals.service.verify_signed_request`` in one transaction, which also claims the nonce
and loads the institution's platform key. A refusal because of the geofence is recorded as an
alert in a second transaction, after the first rolled back, and then answered (403).

:class:`TerminalResponseSigning` is a pure ASGI middleware. For a request that names a
terminal it leaves a small slot in the ASGI scope; when authentication succeeds it puts the
platform signer, the request target and the nonce there. The middleware then holds back the
answer's start, gathers the body, and sends both with ``X-Platform-Key-Serial``,
``X-Timestamp`` and ``X-Signature`` over the canonical response (``signing.py``). Answers to
requests that did not authenticate pass through unsigned and unbuffered.

Pure ASGI rather than ``BaseHTTPMiddleware``: no second task per request, no copy of the
request, and the body is buffered only for the answers that are signed.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from huinong import clock
from huinong.config import Settings, get_settings
from huinong.logs import request_id_var
from huinong.security.principals import Principal
from huinong.security.terminals import platform_keys, service, signing
from huinong.security.terminals.nonces import store_for
from huinong.security.terminals.platform_keys import PlatformSigner

if TYPE_CHECKING:  # deps imports this module: a run-time import back would be circular
    from huinong.api.deps import Database

SCOPE_KEY = "huinong.terminal_response_signing"
_TERMINAL_HEADER = signing.TERMINAL_ID_HEADER.lower().encode("latin-1")


@dataclass
class ResponseSigning:
    """Filled in by :func:`authenticate_terminal` once the request has authenticated."""

    signer: PlatformSigner | None = None
    method: str = ""
    target: bytes = b""
    nonce: str = ""


def request_target(scope: Scope) -> bytes:
    """PATH_WITH_QUERY of the canonical request, as the bytes that came over the wire."""
    raw_path = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
    return signing.target_of(raw_path, scope.get("query_string", b""))


def _settings(request: Request) -> Settings:
    settings = getattr(request.app.state, "settings", None)
    return settings if isinstance(settings, Settings) else get_settings()


def _signers(request: Request) -> dict[uuid.UUID, PlatformSigner]:
    # Unwrapped platform keys, per institution, for the life of the app: a platform key is
    # never rotated under a running server (see platform_keys).
    cache: dict[uuid.UUID, PlatformSigner] | None = getattr(
        request.app.state, "terminal_platform_signers", None
    )
    if cache is None:
        cache = {}
        request.app.state.terminal_platform_signers = cache
    return cache


async def authenticate_terminal(request: Request, database: Database) -> Principal:
    """The principal of a signed terminal request, or the protocol's 401/403 refusal."""
    body = await request.body()
    target = request_target(request.scope)
    settings = _settings(request)
    nonces = store_for(settings.redis_url)
    signers = _signers(request)
    now = clock.now()

    def verify(session: Session) -> tuple[Principal, PlatformSigner]:
        terminal = service.verify_signed_request(
            session,
            method=request.method,
            path_with_query=target,
            headers=request.headers,
            body=body,
            now=now,
            nonces=nonces,
            window_seconds=settings.signature_window_seconds,
        )
        principal = service.principal_for(session, terminal=terminal)
        signer = signers.get(terminal.institution_id)
        if signer is None:
            signer = platform_keys.signer(session, institution_id=terminal.institution_id)
            signers[terminal.institution_id] = signer
        return principal, signer

    try:
        principal, signer = await run_in_threadpool(database.run, verify)
    except service.OutsideGeofence as refusal:
        alert = functools.partial(
            service.record_geofence_alert,
            refusal=refusal,
            request_id=request_id_var.get(),
            nonces=nonces,
        )
        await run_in_threadpool(database.run, alert)
        raise
    slot = request.scope.get(SCOPE_KEY)
    if isinstance(slot, ResponseSigning):
        slot.signer = signer
        slot.method = request.method
        slot.target = target
        slot.nonce = signing.parse_request_headers(request.headers).nonce
    return principal


class TerminalResponseSigning:
    """Signs every answer to an authenticated terminal request with the institution's
    platform key. Add it inside the request-id middleware (``add_middleware`` before it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not any(
            name.lower() == _TERMINAL_HEADER for name, _ in scope["headers"]
        ):
            await self.app(scope, receive, send)
            return
        slot = ResponseSigning()
        scope[SCOPE_KEY] = slot
        start: Message | None = None
        chunks: list[bytes] = []

        async def signing_send(message: Message) -> None:
            nonlocal start
            signer = slot.signer
            if message["type"] == "http.response.start":
                if signer is None:  # the request did not authenticate: nothing to sign
                    await send(message)
                else:
                    start = message
                return
            if message["type"] != "http.response.body" or start is None or signer is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            # A server sends no body in answer to HEAD, whatever the app produced.
            signed_body = b"" if slot.method == "HEAD" else body
            headers = signing.sign_response(
                signer.private_key,
                key_serial=signer.serial,
                method=slot.method,
                path_with_query=slot.target,
                request_nonce=slot.nonce,
                status=start["status"],
                body=signed_body,
                timestamp=int(clock.now().timestamp()),
            )
            start["headers"] = [
                *start.get("headers", []),
                *(
                    (name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in headers.items()
                ),
            ]
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, signing_send)
