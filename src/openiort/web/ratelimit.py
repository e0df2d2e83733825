"""Login throttling: a sliding window of failed attempts per username and per client address.

After ``max_failures`` failures within ``window_s`` seconds for one username (whatever the
address) or from one address (whatever the username), further attempts are refused without
checking the password until the oldest failure leaves the window (OWASP Authentication Cheat
Sheet, "Protect against automated attacks"). A successful login clears the username's count.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class LoginRateLimiter:
    """Counts failed logins in memory (one server process).

    Parameters
    ----------
    max_failures:
        Failures allowed per key within the window.
    window_s:
        Length of the sliding window in seconds.
    max_keys:
        Bound on the keys remembered (oldest dropped first), so that a flood of made-up
        usernames cannot exhaust memory.
    """

    def __init__(self, max_failures: int, window_s: float, max_keys: int = 100_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return (f"user:{username.strip().lower()}", f"addr:{address}")

    def _prune(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after_s(self, username: str, address: str, now: float | None = None) -> int:
        """Seconds until an attempt is allowed (0: allowed now)."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        with self._lock:
            for key in self._keys(username, address):
                times = self._prune(key, now)
                if times is not None and len(times) >= self.max_failures:
                    wait = max(wait, self.window_s - (now - times[-self.max_failures]))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, username: str, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in self._keys(username, address):
                times = self._failures.pop(key, None) or deque(maxlen=self.max_failures)
                times.append(now)
                self._failures[key] = times  # re-insert: most recent last
            while len(self._failures) > self.max_keys:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(self._keys(username, "")[0], None)
