"""Login that cannot be raced (issue 17, item 3): parallel wrong logins never check more
passwords than the limit, at most two hashes run at once, and failed logins from elsewhere do
not block a logged-in user's approval."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from web_testkit import PASSWORD, DemoPlan, api_client, seed_case, seed_plan

from openiort.records import users as users_module
from openiort.web.ratelimit import MAX_CONCURRENT_HASHES, LoginRateLimiter


class CountingHasher:
    """The test hasher, counting password checks and how many ran at once."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.checks = 0
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def verify(self, hash_: str, password: str) -> bool:
        with self.lock:
            self.checks += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            threading.Event().wait(0.02)  # a real argon2 check takes a while
            return bool(self.inner.verify(hash_, password))
        finally:
            with self.lock:
                self.running -= 1


def test_parallel_attempts_reserve_their_places() -> None:
    limiter = LoginRateLimiter(max_failures=5, window_s=300.0)
    start = threading.Barrier(60)

    def attempt(_: int) -> int:
        start.wait()
        return limiter.retry_after_s("onc", "10.0.0.1", now=0.0)

    with concurrent.futures.ThreadPoolExecutor(60) as pool:
        waits = list(pool.map(attempt, range(60)))
    assert waits.count(0) == 5


def test_sixty_parallel_wrong_logins_check_at_most_five_passwords(app: FastAPI) -> None:
    counting = CountingHasher(users_module._hasher)
    users_module.use_password_hasher(counting)  # type: ignore[arg-type]
    try:
        start = threading.Barrier(60)

        def login(_: int) -> int:
            client = TestClient(app, base_url="http://testserver")
            start.wait()
            r = client.post("/api/session", json={"username": "onc", "password": "wrong"})
            return r.status_code

        with concurrent.futures.ThreadPoolExecutor(60) as pool:
            statuses = list(pool.map(login, range(60)))
    finally:
        users_module.use_password_hasher(counting.inner)
    assert counting.checks <= 5, counting.checks
    assert statuses.count(401) == counting.checks and set(statuses) <= {401, 429}
    assert counting.most <= MAX_CONCURRENT_HASHES


def test_failed_logins_elsewhere_do_not_block_an_approval(
    app: FastAPI, demo_plan: DemoPlan
) -> None:
    plan_id = seed_plan(app, demo_plan, seed_case(app, demo_plan.case_data), "reviewed")
    approver = api_client(app, "phys2")  # logged in, in theatre
    attacker = TestClient(app, base_url="http://testserver")
    for _ in range(6):
        attacker.post("/api/session", json={"username": "phys2", "password": "guess"})
    blocked = attacker.post("/api/session", json={"username": "phys2", "password": PASSWORD})
    assert blocked.status_code == 429  # the login itself stays throttled
    r = approver.post(f"/api/plans/{plan_id}/approve", json={"password": PASSWORD})
    assert r.status_code == 200, r.text
