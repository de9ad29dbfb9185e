"""Senders of one-time sign-in codes.

The platform hands a code to a sender; which one is configuration. ``ConsoleSender`` is the
development sender: it prints the code with the phone masked. ``OutboxSender`` keeps what it
was given in memory, for tests and demonstrations that read the code back. A production
deployment plugs in its SMS gateway behind the same one-method protocol.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Protocol


class OneTimeCodeSender(Protocol):
    def send(self, *, institution_code: str, phone: str, code: str) -> None: ...


def _masked(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


class ConsoleSender:
    def send(self, *, institution_code: str, phone: str, code: str) -> None:
        sys.stderr.write(
            f"[{institution_code}] one-time sign-in code for {_masked(phone)}: {code}\n"
        )


@dataclass
class OutboxSender:
    sent: list[tuple[str, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, *, institution_code: str, phone: str, code: str) -> None:
        with self._lock:
            self.sent.append((institution_code, phone, code))

    def last_code(self, phone: str) -> str:
        with self._lock:
            for _, to, code in reversed(self.sent):
                if to == phone:
                    return code
        raise LookupError("no code was sent to that phone")
