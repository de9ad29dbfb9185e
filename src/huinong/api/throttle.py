"""Throttling of failed sign-ins by client address.

Per-account lockout (``huinong.security.identities.rules``) stops guessing one password;
this stops one address from guessing across many accounts: after ``limit`` failures within
``window`` seconds the address is refused with 429 until the oldest failure ages out. It is
kept per server process, which bounds a guesser by (workers x limit) per window.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from huinong.errors import TooManyRequests


class FailureThrottle:
    def __init__(self, *, limit: int = 20, window: float = 300.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures[address]
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def check(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            failures = self._recent(address, now)
            if len(failures) >= self.limit:
                wait = int(failures[0] + self.window - now) + 1
                raise TooManyRequests(
                    "auth.too_many_attempts",
                    f"too many failed sign-ins from this address; try again in {wait} s",
                )

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(address, now).append(now)
