"""What the client decides without a server: parameter encoding, the retry plan's deadline,
and reading error replies."""

from __future__ import annotations

import numpy as np
import pytest

from helix_router import BudgetTooSmall, Draining, Dropped, HelixError, InvalidInput, KernelFailed, UnknownKernel
from helix_router.errors import from_response
from helix_router.params import encode_params
from helix_router.retry import REQUEST_START, RetryPlan


def test_numpy_parameters_become_json_numbers_and_rows():
    encoded = encode_params({"m": np.eye(2), "x": np.float32(1.5), "n": np.int64(3), "style": "asian", "v": (1, 2)})
    assert encoded == {"m": [[1.0, 0.0], [0.0, 1.0]], "x": 1.5, "n": 3, "style": "asian", "v": [1, 2]}
    assert type(encoded["n"]) is int


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        (np.array([1.0, np.inf]), ValueError, "NaN or infinity"),
        ([[1, 2], [3]], ValueError, "rows of different lengths"),
        (np.zeros((2, 2, 2)), ValueError, "3-D array"),
        (True, TypeError, "is a bool"),
        (float("nan"), ValueError, "not a finite number"),
        (np.array([1 + 2j]), TypeError, "real numbers"),
        (None, TypeError, "not a number"),
    ],
)
def test_parameters_json_cannot_carry_are_refused_by_name(value, error, words):
    with pytest.raises(error, match=rf"params\.bad: .*{words}"):
        encode_params({"bad": value})


def dropped(retry_after: float | None) -> Dropped:
    return Dropped("busy", status=429, reason="queue_full", retry_after=retry_after)


def test_a_retry_is_planned_only_while_its_wait_ends_before_the_deadline():
    plan = RetryPlan(budget_ms=2500, retries=3)
    assert plan.headers() == {}
    start = plan.started_monotonic
    assert plan.wait_before_retry(dropped(1.0), now=start) == 1.0
    assert plan.wait_before_retry(dropped(2.0), now=start + 0.4) == 2.0
    # 2 s from 0.6 s in ends at 2.6 s, past the 2.5 s budget.
    assert plan.wait_before_retry(dropped(2.0), now=start + 0.6) is None
    # No Retry-After: a second, still within the budget.
    assert plan.wait_before_retry(dropped(None), now=start) == 1.0
    assert plan.wait_before_retry(BudgetTooSmall("no", status=422), now=start) is None
    assert plan.wait_before_retry(KernelFailed("no", status=500), now=start) is None


def test_retries_are_counted_and_each_carries_the_first_attempts_time():
    plan = RetryPlan(budget_ms=60_000, retries=2)
    plan.headers()
    second, third = plan.headers(), plan.headers()
    assert second == third == {REQUEST_START: f"t={plan.started_wall:.3f}"}
    assert plan.attempts == 3
    assert plan.wait_before_retry(dropped(1.0), now=plan.started_monotonic) is None
    with pytest.raises(ValueError, match="retries must be"):
        RetryPlan(budget_ms=1, retries=-1)


def test_error_replies_become_their_exceptions():
    outcome = {
        "id": 1,
        "status": "rejected",
        "kernel": "mc-optoin",
        "version": None,
        "runtime": None,
        "criticality": "critical",
        "decision": None,
        "estimates": {},
        "arrays": {},
        "timings_us": {"queue": 0, "service": 0, "total": 5},
        "budget_us": 1000,
        "budget_met": False,
        "error": {
            "kind": "unknown_kernel",
            "field": None,
            "message": 'no kernel "mc-optoin": did you mean "mc-option"? (GET /v1/kernels lists them)',
        },
    }
    unknown = from_response(404, {}, outcome)
    assert isinstance(unknown, UnknownKernel) and unknown.suggestion == "mc-option"
    assert unknown.outcome.kernel == "mc-optoin"
    draining = from_response(503, {"retry-after": "1"}, {"error": {"kind": "draining", "field": None, "message": "x"}})
    assert isinstance(draining, Draining) and draining.retry_after == 1.0
    bad = from_response(
        400, {}, {"status": "rejected", "error": {"kind": "bad_request", "field": "seed", "message": "m"}}
    )
    assert isinstance(bad, InvalidInput) and bad.field == "seed" and "`seed`" in str(bad)
    proxy = from_response(502, {}, "<html>bad gateway</html>")
    assert type(proxy) is HelixError and proxy.status == 502 and "bad gateway" in proxy.message
