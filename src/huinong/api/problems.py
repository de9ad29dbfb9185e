"""RFC 9457 problem details for every error the API answers.

The body carries ``type``, ``title``, ``status``, ``detail`` and our stable ``code`` (the
contract clients branch on), plus ``field`` or ``errors`` naming what was wrong. Unexpected
exceptions become a 500 with a request id and no internals, answered by the request-id
middleware in ``app.py``; they are logged with the trace.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from huinong.api.responses import ProblemResponse
from huinong.errors import HuinongError
from huinong.logs import request_id_var

TYPE_BASE = "https://huinong.dev/problems/"


def problem(status: int, code: str, detail: str, **extra: Any) -> ProblemResponse:
    body = {
        "type": TYPE_BASE + code,
        "title": code,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id_var.get(),
        **{k: v for k, v in extra.items() if v is not None},
    }
    return ProblemResponse(body, status_code=status)


def _field_path(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(location[-1] if location else "")


def install(app: FastAPI) -> None:
    @app.exception_handler(HuinongError)
    async def _domain(_request: Request, exc: HuinongError) -> ProblemResponse:
        return problem(exc.status, exc.code, exc.message, field=exc.field)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> ProblemResponse:
        errors = [
            {
                "field": _field_path(tuple(e.get("loc", ()))),
                "message": e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in exc.errors()
        ]
        first = errors[0]["field"] if errors else None
        return problem(
            422,
            "request.invalid",
            "the request does not match the schema; see errors",
            field=first,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> ProblemResponse:
        if exc.status_code == 400:  # FastAPI's word for a body it could not parse at all
            return problem(
                422,
                "request.invalid",
                "the body is not JSON this API can read",
                field="body",
                errors=[{"field": "body", "message": "unreadable JSON", "type": "json_invalid"}],
            )
        code = {404: "request.not_found", 405: "request.method_not_allowed"}.get(
            exc.status_code, f"request.http_{exc.status_code}"
        )
        return problem(exc.status_code, code, str(exc.detail))
