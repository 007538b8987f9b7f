"""Refusals for load (429), draining (503) and retries, on servers with one CPU permit and a
queue of one, saturated by jobs whose cost the server predicts: a HashMix job cannot be
degraded, batched or split, so one of ~1.8 s holds the permit while the test asks for more."""

from __future__ import annotations

import math
import threading
import time

import pytest

from helix_router import Client, Draining, Dropped, JobResult

TIGHT = "[router]\ncpu_permits = 1\nqueue_capacity = 1\n"
# HashMix predicts 0.027 ns per unit of compute_cost: ~1.8 s for this one, 27 ms for SHORT.
LONG = {"compute_cost": 68_000_000_000}
SHORT = {"compute_cost": 1_000_000_000}
WAIT_S = 60.0


def wait_until(what: str, check) -> None:
    """Polls `check` (bounded: a server that never gets there fails the test)."""
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"not {what} within {WAIT_S} s"
        time.sleep(0.01)


class Background:
    """A job submitted on its own thread, with its own client; `result()` is its outcome (or
    raises its error)."""

    def __init__(self, url: str, params: dict, budget_ms: float) -> None:
        self.outcome: JobResult | None = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                with Client(url) as own:
                    self.outcome = own.submit("hashmix", params, budget_ms=budget_ms)
            except BaseException as e:  # handed to the test thread by result()
                self.error = e

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def result(self) -> JobResult:
        self.thread.join(timeout=WAIT_S)
        assert not self.thread.is_alive(), f"the background job did not finish within {WAIT_S} s"
        if self.error is not None:
            raise self.error
        return self.outcome


def occupy(client: Client, url: str, fill_queue: bool) -> list[Background]:
    """Holds the one permit with a long job and, with `fill_queue`, the one queue slot too;
    `client` watches the server's metrics until they are."""
    jobs = [Background(url, LONG, budget_ms=30_000)]
    wait_until("running", lambda: client.metrics().value("helix_cpu_permits_in_use") == 1)
    if fill_queue:
        jobs.append(Background(url, SHORT, budget_ms=30_000))
        wait_until("queued", lambda: client.metrics().value("helix_cpu_queue_depth") == 1)
    return jobs


def expected_retry_after(e: Dropped) -> float:
    # The server's rule: the predicted wait rounded up to whole seconds, between 1 and 60.
    return min(max(math.ceil(e.outcome.decision.predicted_wait_us / 1e6), 1), 60)


def test_a_drop_for_load_is_dropped_with_its_reason_and_retry_after(own_server):
    s = own_server(TIGHT)
    with s.client() as c:
        busy = occupy(c, s.url, fill_queue=False)
        with pytest.raises(Dropped) as dropped:
            c.submit("hashmix", SHORT, budget_ms=800)
        e = dropped.value
        assert e.status == 429 and e.retryable and e.attempts == 1
        assert e.reason == e.outcome.decision.reason and e.outcome.decision.strategy == "drop"
        assert e.outcome.status == "dropped"
        assert e.retry_after == expected_retry_after(e) >= 1
        assert [j.result().status for j in busy] == ["completed"]


def test_a_retry_that_would_end_past_the_budget_is_not_made(own_server):
    s = own_server(TIGHT)
    with s.client(retries=5) as c:
        busy = occupy(c, s.url, fill_queue=True)
        # The server asks for at least a second; the budget is less, so no retry can be in time.
        with pytest.raises(Dropped) as dropped:
            c.submit("hashmix", SHORT, budget_ms=900)
        assert dropped.value.attempts == 1 and dropped.value.retry_after >= 1
        for j in busy:
            j.result()


def test_a_retry_waits_retry_after_and_the_server_charges_the_time_spent(own_server):
    s = own_server(TIGHT)
    with s.client() as c:
        busy = occupy(c, s.url, fill_queue=True)
        # Queue full now; by the time the Retry-After has passed, the lane has room.
        started = time.monotonic()
        r = c.submit("hashmix", SHORT, budget_ms=20_000, retries=5)
        elapsed_us = (time.monotonic() - started) * 1e6
        for j in busy:
            j.result()
    assert r.status == "completed" and r.attempts >= 2
    # The retry carried the first attempt's time: the server charged at least the first wait
    # (a whole second or more) and no more than the client saw pass.
    assert 1_000_000 <= r.timings.before_server_us <= elapsed_us
    assert r.budget_us <= 20_000_000 - r.timings.before_server_us


def test_a_draining_server_refuses_new_jobs_with_draining(own_server):
    s = own_server(TIGHT)
    with s.client() as c:
        busy = occupy(c, s.url, fill_queue=False)
        s.sigterm()
        wait_until("draining", lambda: not c.ready())
        with pytest.raises(Draining) as draining:
            c.submit("hashmix", SHORT, budget_ms=5000)
        e = draining.value
        assert isinstance(e, Dropped) and e.retryable
        assert (e.status, e.kind, e.reason, e.retry_after) == (503, "draining", "draining", 1.0)
        # The job it had accepted still finishes.
        assert busy[0].result().status == "completed"
