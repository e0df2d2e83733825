"""The login limiter's counts in the database, on both backends: parallel attempts reserve
their places atomically, and the counts are shared by server processes and kept over a
restart (issue 17, item 3)."""

from __future__ import annotations

import concurrent.futures
import threading

import sqlalchemy as sa

from openiort.records.db import make_engine
from openiort.web.ratelimit import DbLoginRateLimiter


def test_parallel_attempts_reserve_atomically(db_url: str) -> None:
    engines = [make_engine(db_url) for _ in range(2)]  # two server processes' engines
    limiters = [DbLoginRateLimiter(e, max_failures=5, window_s=300.0) for e in engines]
    start = threading.Barrier(20)

    def attempt(i: int) -> int:
        start.wait()
        return limiters[i % 2].retry_after_s("onc", "10.0.0.1")

    try:
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            waits = list(pool.map(attempt, range(20)))
        assert waits.count(0) == 5
        for _ in range(5):
            limiters[0].failed("onc", "10.0.0.1")
        # A restarted process (a new limiter) still sees the failures, from any address.
        restarted = DbLoginRateLimiter(engines[1], max_failures=5, window_s=300.0)
        assert 290 <= restarted.retry_after_s("onc", "192.168.1.9") <= 300
        assert restarted.retry_after_s("surg", "192.168.1.9") == 0
        restarted.succeeded("surg", "192.168.1.9")
    finally:
        for e in engines:
            e.dispose()


def test_success_clears_the_username(engine: sa.Engine) -> None:
    limiter = DbLoginRateLimiter(engine, max_failures=3, window_s=60.0)
    for _ in range(2):
        assert limiter.retry_after_s("alice", "1.2.3.4") == 0
        limiter.failed("alice", "1.2.3.4")
    assert limiter.retry_after_s("alice", "1.2.3.4") == 0
    limiter.succeeded("alice", "1.2.3.4")
    with engine.connect() as conn:
        keys = [r[0] for r in conn.execute(sa.text("SELECT key FROM login_attempts"))]
    assert "user:alice" not in keys and keys.count("addr:1.2.3.4") == 2
