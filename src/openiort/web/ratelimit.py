"""Login throttling: a sliding window of failed attempts per username and per client address.

After ``max_failures`` failures within ``window_s`` seconds for one username (whatever the
address) or from one address (whatever the username), further attempts are refused without
checking the password until the oldest failure leaves the window (OWASP Authentication Cheat
Sheet, "Protect against automated attacks"). A successful login clears the username's count.

The check and the count are one step: an attempt allowed reserves its place until it is
reported failed or succeeded (or :data:`RESERVATION_S` passes), so that parallel attempts
never check more passwords than the limit (60 parallel wrong logins: 5 checked, not 44).
At most :data:`MAX_CONCURRENT_HASHES` password hashes run at once (argon2 takes 64 MiB each):
more wait, then get 503. Re-entering a password to approve counts apart from logins, so that
failed logins from elsewhere never block an approval in theatre. The web app keeps the counts
in the database (:class:`DbLoginRateLimiter`): every server process counts the same attempts,
and a restart clears nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Table, func, select, text

from openiort.records.models import LoginAttempt, utcnow

# An allowed attempt holds its place this long at most (a request that died mid-check).
RESERVATION_S = 30.0
MAX_CONCURRENT_HASHES = 2
HASH_WAIT_S = 10.0


class HashSlotsBusyError(Exception):
    """No password check could start within the wait: the server is busy checking others."""


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
        self._pending: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._hash_slots = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)

    @contextlib.contextmanager
    def hash_slot(self, wait_s: float = HASH_WAIT_S) -> Iterator[None]:
        """Hold one of the few password-hash slots while a password is checked."""
        if not self._hash_slots.acquire(timeout=wait_s):
            raise HashSlotsBusyError("the server is busy checking passwords; try again shortly")
        try:
            yield
        finally:
            self._hash_slots.release()

    def _live_pending(self, key: str, now: float) -> int:
        times = self._pending.get(key)
        if not times:
            return 0
        while times and now - times[0] >= RESERVATION_S:
            times.popleft()
        return len(times)

    def _release(self, key: str) -> None:
        times = self._pending.get(key)
        if times:
            times.popleft()
            if not times:
                del self._pending[key]

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
        """Seconds until an attempt is allowed (0: allowed now, and its place is reserved
        until :meth:`failed` or :meth:`succeeded` reports it)."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        keys = self._keys(username, address)
        with self._lock:
            for key in keys:
                times = self._prune(key, now)
                failures = len(times) if times is not None else 0
                if failures >= self.max_failures:
                    assert times is not None
                    wait = max(wait, self.window_s - (now - times[-self.max_failures]))
                elif failures + self._live_pending(key, now) >= self.max_failures:
                    wait = max(wait, 1.0)  # the attempts under way may free it
            if wait <= 0:
                for key in keys:
                    self._pending.setdefault(key, deque()).append(now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, username: str, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in self._keys(username, address):
                self._release(key)
                times = self._failures.pop(key, None) or deque(maxlen=self.max_failures)
                times.append(now)
                self._failures[key] = times  # re-insert: most recent last
            while len(self._failures) > self.max_keys:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, username: str, address: str | None = None) -> None:
        with self._lock:
            user_key, address_key = self._keys(username, address or "")
            self._failures.pop(user_key, None)
            self._release(user_key)
            if address is not None:
                self._release(address_key)


class DbLoginRateLimiter(LoginRateLimiter):
    """The same limiter with its counts in the database (table ``login_attempts``), so that
    every server process counts the same attempts and a restart clears nothing.

    Each check is one transaction serialised per key (an advisory lock on PostgreSQL, the
    database write lock on SQLite): count the failures in the window and the attempts under
    way, and reserve a place when allowed. The password-hash slots stay per process.
    """

    def __init__(self, engine: Any, max_failures: int, window_s: float) -> None:
        super().__init__(max_failures, window_s)
        self.engine = engine

    def _lock_keys(self, conn: Any, keys: tuple[str, ...]) -> None:
        if conn.dialect.name == "postgresql":
            for key in sorted(keys):
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})
        else:  # any write takes SQLite's database lock until the commit
            conn.execute(text("DELETE FROM login_attempts WHERE id = -1"))

    def retry_after_s(self, username: str, address: str, now: float | None = None) -> int:
        del now  # the database's clock: UTC now
        table: Table = LoginAttempt.__table__  # type: ignore[assignment]
        keys = self._keys(username, address)
        current = utcnow()
        window = dt.timedelta(seconds=self.window_s)
        reservation = dt.timedelta(seconds=RESERVATION_S)
        wait = 0.0
        with self.engine.begin() as conn:
            self._lock_keys(conn, keys)
            conn.execute(
                table.delete().where(
                    ((table.c.kind == "failed") & (table.c.at < current - window))
                    | ((table.c.kind == "pending") & (table.c.at < current - reservation))
                )
            )
            for key in keys:
                failures = list(
                    conn.scalars(
                        select(table.c.at)
                        .where(table.c.key == key, table.c.kind == "failed")
                        .order_by(table.c.at.desc())
                    )
                )
                pending = conn.scalar(
                    select(func.count()).where(table.c.key == key, table.c.kind == "pending")
                )
                if len(failures) >= self.max_failures:
                    oldest = failures[self.max_failures - 1]
                    wait = max(wait, (oldest + window - current).total_seconds())
                elif len(failures) + int(pending or 0) >= self.max_failures:
                    wait = max(wait, 1.0)
            if wait <= 0:
                conn.execute(
                    table.insert(), [{"key": k, "kind": "pending", "at": current} for k in keys]
                )
        return math.ceil(wait) if wait > 0 else 0

    def _release_row(self, conn: Any, key: str) -> None:
        table: Table = LoginAttempt.__table__  # type: ignore[assignment]
        oldest = conn.scalar(
            select(table.c.id)
            .where(table.c.key == key, table.c.kind == "pending")
            .order_by(table.c.id)
            .limit(1)
        )
        if oldest is not None:
            conn.execute(table.delete().where(table.c.id == oldest))

    def failed(self, username: str, address: str, now: float | None = None) -> None:
        table: Table = LoginAttempt.__table__  # type: ignore[assignment]
        keys = self._keys(username, address)
        with self.engine.begin() as conn:
            self._lock_keys(conn, keys)
            for key in keys:
                self._release_row(conn, key)
            conn.execute(
                table.insert(), [{"key": k, "kind": "failed", "at": utcnow()} for k in keys]
            )

    def succeeded(self, username: str, address: str | None = None) -> None:
        table: Table = LoginAttempt.__table__  # type: ignore[assignment]
        user_key, address_key = self._keys(username, address or "")
        keys = (user_key, address_key) if address is not None else (user_key,)
        with self.engine.begin() as conn:
            self._lock_keys(conn, keys)
            conn.execute(table.delete().where(table.c.key == user_key, table.c.kind == "failed"))
            for key in keys:
                self._release_row(conn, key)
