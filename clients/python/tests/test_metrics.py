"""`metrics()` against the real server: its exposition parsed by prometheus_client, with the
counters moving by exactly the jobs this test submitted."""

from __future__ import annotations

import pytest

PRIMES = {"compute_cost": 20_000}


def test_metrics_count_the_jobs_submitted(helix):
    before = helix.metrics()
    assert before.types["helix_jobs"] == "counter"
    assert before.value("helix_ready") == 1
    for _ in range(3):
        assert helix.submit("primecount", PRIMES, budget_ms=5000).status == "completed"
    after = helix.metrics()
    # Only this test submits primecount jobs to the shared server.
    moved = after.value("helix_jobs_total", kernel="primecount") - before.value("helix_jobs_total", kernel="primecount")
    assert moved == 3
    completed = after.select("helix_jobs_total", kernel="primecount", status="completed")
    assert completed and all(s.labels["runtime"] == "native" for s in completed)
    # Histograms come as their buckets, sum and count.
    assert after.value("helix_job_duration_seconds_count") >= 3
    assert "helix_job_duration_seconds_bucket" in after.names()


def test_a_misspelt_metric_is_an_error_not_a_zero(helix):
    m = helix.metrics()
    with pytest.raises(KeyError, match="no metric 'helix_jobs_totl'"):
        m.value("helix_jobs_totl")
    # A real counter with no matching sample is zero.
    assert m.value("helix_jobs_total", kernel="no-such-kernel") == 0
