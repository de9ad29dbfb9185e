"""Domain errors with stable dotted codes.

Every error a caller can cause is a :class:`HuinongError` subclass carrying a ``code`` such as
``ledger.exceeds_credits``. The code is the contract: messages may be reworded, codes may not.
``field`` names the request field at fault when there is one. The API maps the class to an
HTTP status and answers RFC 9457 ``application/problem+json``; the CLI prints the message.
"""

from __future__ import annotations


class HuinongError(Exception):
    """Base class. ``status`` is the HTTP status the API answers with."""

    status: int = 400

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class InvalidInput(HuinongError):
    """The request is well-formed but a value breaks a rule (422)."""

    status = 422


class NotFound(HuinongError):
    """The thing named does not exist, or belongs to another institution (404)."""

    status = 404


class Conflict(HuinongError):
    """The request conflicts with the current state (409): duplicate, insufficient funds, …"""

    status = 409


class Unauthenticated(HuinongError):
    """The caller did not say who they are (401)."""

    status = 401


class Forbidden(HuinongError):
    """The caller is known but may not do this (403): wrong role, suspended terminal, …"""

    status = 403


class TooManyRequests(HuinongError):
    """The caller must wait before trying again (429): repeated failed sign-ins."""

    status = 429


class ServiceUnavailable(HuinongError):
    """The platform cannot serve this now for a reason of its own setup (503)."""

    status = 503
