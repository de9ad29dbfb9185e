"""The application factory: routers wired once, errors as problem+json, a request id on
every response and every log line, every ``/api/v1`` route behind the permission table, and
the timers that void expired pending transfers and seal the audit trail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from huinong import __version__
from huinong.api import problems
from huinong.api.deps import API_PREFIX, Database, SessionCache, authorize
from huinong.api.routes import (
    audit,
    auth,
    bills,
    campaigns,
    consent,
    credit,
    customers,
    geography,
    households,
    institutions,
    ledger,
    payments,
    service_points,
    staff,
    subsidies,
    terminals,
)
from huinong.api.terminal_auth import TerminalResponseSigning
from huinong.api.throttle import FailureThrottle
from huinong.config import Settings, get_settings
from huinong.db import make_engine, make_session_factory, run_in_transaction
from huinong.ledger import service as ledger_service
from huinong.logs import request_id_var
from huinong.security.audit import service as audit_service
from huinong.security.identities.senders import ConsoleSender, OneTimeCodeSender

log = logging.getLogger("huinong.api")


class RequestIdMiddleware:
    """Takes ``X-Request-Id`` from the caller (or makes one), exposes it to logs, echoes it,
    and turns an unexpected exception into a problem+json 500 that carries it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming[:64] if incoming.isprintable() and incoming else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Caught here, inside the request id's scope, rather than by Starlette's outer
            # error middleware: the 500 carries the id the caller will quote.
            log.exception("unhandled error")
            if status:  # the response had started; there is nothing left to answer
                raise
            response = problems.problem(
                500, "server.error", "an unexpected error; quote the request id"
            )
            await response(scope, receive, send_with_id)
        finally:
            if log.isEnabledFor(logging.DEBUG) or status >= 500:
                log.log(
                    logging.ERROR if status >= 500 else logging.DEBUG,
                    "%s %s -> %s in %.1f ms",
                    scope["method"],
                    _route_of(scope),
                    status,
                    (time.perf_counter() - started) * 1000,
                )
            request_id_var.reset(token)


def _route_of(scope: Scope) -> str:
    """The route template (``/deposit-accounts/{account_number}``), never the raw path: paths
    carry account numbers, which stay out of logs."""
    route = scope.get("route")
    return getattr(route, "path", "(no route)")


async def _sweep_forever(database: Database, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            voided = await asyncio.to_thread(
                run_in_transaction,
                database.factory,
                lambda s: ledger_service.sweep_expired_pending(s),
            )
            if voided:
                log.info("voided %d expired pending transfers", voided)
        except Exception:  # the timer must survive a bad round; the next one retries
            log.exception("pending-transfer sweep failed")


def create_app(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    otp_sender: OneTimeCodeSender | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(database_url or settings.database_url)
    database = Database(make_session_factory(engine))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if settings.pending_sweep_interval_seconds > 0:
            tasks.append(
                asyncio.create_task(
                    _sweep_forever(database, settings.pending_sweep_interval_seconds)
                )
            )
        if settings.audit_seal_interval_seconds > 0:
            tasks.append(
                asyncio.create_task(
                    audit_service.seal_forever(
                        database.factory, settings.audit_seal_interval_seconds
                    )
                )
            )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="Huinong 惠农",
        version=__version__,
        summary="The open digital service hall for rural banks: ledger, accounts, payments.",
        lifespan=lifespan,
    )
    app.state.database = database
    app.state.settings = settings
    app.state.engine = engine
    problems.install(app)
    app.state.sessions = SessionCache()
    app.state.sign_in_throttle = FailureThrottle()
    app.state.otp_sender = otp_sender or ConsoleSender()
    for module in (
        auth,
        institutions,
        staff,
        ledger,
        customers,
        payments,
        terminals,
        consent,
        audit,
        geography,
        households,
        bills,
        subsidies,
        service_points,
        credit,
        campaigns,
    ):
        app.include_router(module.router, prefix=API_PREFIX, dependencies=[Depends(authorize)])

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    # Added first, so it runs inside the request-id middleware: signed answers carry the id.
    app.add_middleware(TerminalResponseSigning)
    app.add_middleware(RequestIdMiddleware)
    return app
