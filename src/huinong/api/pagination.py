"""Opaque cursors: the client passes back ``next_cursor`` to get the following page."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

from huinong.errors import InvalidInput


def _bad() -> InvalidInput:
    return InvalidInput(
        "request.invalid_cursor", "the cursor is not one this API gave out", field="cursor"
    )


def encode_id(value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def decode_id(cursor: str | None) -> uuid.UUID | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except ValueError as exc:
        raise _bad() from exc


def encode_position(stamp: datetime, value: uuid.UUID) -> str:
    text = f"{stamp.isoformat()}|{value}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_position(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, value = text.split("|")
        moment = utc_time(datetime.fromisoformat(stamp), field="cursor")
        return moment, uuid.UUID(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad() from exc


def utc_time(moment: datetime, *, field: str) -> datetime:
    """A caller's time, in UTC; naive times and times that leave the calendar in UTC
    (0001-01-01T00:00+14:00) are refused."""
    if moment.tzinfo is None:
        raise InvalidInput("request.naive_time", "give the time with a time zone", field=field)
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput(
            "request.time_out_of_range", "the time is outside the calendar", field=field
        ) from exc
