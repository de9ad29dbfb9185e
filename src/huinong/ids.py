"""Identifiers: UUIDv7 primary keys and check digits for human-facing numbers.

UUIDv7 (RFC 9562) puts a millisecond timestamp in the top 48 bits, so ids sort by creation
time and B-tree inserts stay at the right edge of the index. Within one millisecond the
12-bit ``rand_a`` field is a counter, so ids made by one process are strictly increasing —
cursor pagination relies on that order.

Human-facing numbers (account numbers) carry a Luhn check digit, like bank cards: one
mistyped digit or one swap of neighbours is caught before a lookup is made.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | _counter << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def luhn_check_digit(digits: str) -> str:
    """The digit that, appended to ``digits``, makes a valid Luhn number."""
    if not is_ascii_digits(digits):
        raise ValueError("Luhn numbers are made of digits only")
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:  # these get doubled once the check digit is appended
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def luhn_is_valid(number: str) -> bool:
    return (
        len(number) >= 2 and is_ascii_digits(number) and luhn_check_digit(number[:-1]) == number[-1]
    )


def is_ascii_digits(text: str) -> bool:
    """0-9 only: ``str.isdigit`` also accepts '²', '٣' and full-width digits."""
    return bool(text) and text.isascii() and text.isdigit()
