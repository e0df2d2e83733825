"""The planning job queue in the database (openiort.records.job_queue), on both backends."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from openiort.records import job_queue as jq
from openiort.records.models import utcnow


def _enqueue(engine: sa.Engine, n: int = 1, **kwargs: object) -> list[jq.JobRow]:
    return [
        jq.enqueue(engine, case_id=1, case_version=1, user_id=1, inputs={"n": i}, **kwargs)  # type: ignore[arg-type]
        for i in range(n)
    ]


def test_job_life_cycle(engine: sa.Engine) -> None:
    (job,) = _enqueue(engine)
    assert job.state == "queued" and jq.position(engine, job) == 1
    claimed = jq.claim(engine, "w1")
    assert claimed is not None and claimed.id == job.id
    assert claimed.state == "running" and claimed.worker_id == "w1" and claimed.attempts == 1
    assert claimed.inputs == {"n": 0}
    assert jq.claim(engine, "w2") is None  # nothing else queued
    assert jq.heartbeat(engine, job.id, "w1") and not jq.heartbeat(engine, job.id, "w2")
    assert not jq.finish(engine, job.id, "w2", state="done")  # not w2's job
    assert jq.finish(engine, job.id, "w1", state="done", plan_id=7, result_dir="/p/7")
    done = jq.get(engine, job.id)
    assert done is not None and done.state == "done" and done.plan_id == 7
    assert done.finished_at is not None and done.finished_at.tzinfo is not None
    kept = jq.get(engine, job.id, with_inputs=True)
    assert kept is not None and kept.inputs == {}  # the case data is not kept twice
    assert jq.get(engine, "no-such-job") is None


def test_claims_oldest_first_and_positions(engine: sa.Engine) -> None:
    jobs = _enqueue(engine, 3)
    assert [jq.position(engine, j) for j in jobs] == [1, 2, 3]
    claimed = jq.claim(engine, "w1")
    assert claimed is not None and claimed.id == jobs[0].id
    assert jq.position(engine, jobs[1]) == 1


def test_queue_full(engine: sa.Engine) -> None:
    _enqueue(engine, 2, max_pending=2)
    with pytest.raises(jq.QueueFullError):
        _enqueue(engine, 1, max_pending=2)
    assert jq.active_count(engine) == 2


def test_concurrent_claims_never_share_a_job(engine: sa.Engine) -> None:
    _enqueue(engine, 6)
    taken: list[str] = []
    lock = threading.Lock()

    def work(worker: str) -> None:
        while (job := jq.claim(engine, worker)) is not None:
            with lock:
                taken.append(job.id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(taken) == 6 and len(set(taken)) == 6


def test_stale_job_requeued_then_failed(engine: sa.Engine) -> None:
    (job,) = _enqueue(engine)
    assert jq.claim(engine, "dead") is not None
    later = utcnow() + dt.timedelta(seconds=jq.STALE_AFTER_S + 1)
    assert jq.reap_stale(engine, now=later, max_attempts=2) == (1, 0)
    again = jq.get(engine, job.id)
    assert again is not None and again.state == "queued" and again.worker_id is None
    assert jq.claim(engine, "dead2") is not None  # second try
    assert not jq.finish(engine, job.id, "dead", state="done")  # the first owner lost it
    assert jq.reap_stale(engine, now=later + dt.timedelta(seconds=120), max_attempts=2) == (0, 1)
    failed = jq.get(engine, job.id)
    assert failed is not None and failed.state == "failed"
    assert jq.STALE_MESSAGE in failed.message


def test_live_job_not_reaped_and_prune(engine: sa.Engine) -> None:
    (job,) = _enqueue(engine)
    assert jq.claim(engine, "w1") is not None
    assert jq.reap_stale(engine) == (0, 0)
    assert jq.finish(engine, job.id, "w1", state="failed", message="no", problems=["p"])
    assert jq.prune(engine) == 0
    assert jq.prune(engine, now=utcnow() + dt.timedelta(days=2)) == 1
    assert jq.get(engine, job.id) is None
