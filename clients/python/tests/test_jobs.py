"""Jobs through the client against the real server: native and Wasm builds, numpy in and out,
typed outcomes, and answers that depend on the seed alone."""

from __future__ import annotations

import numpy as np
import pytest

import helix_router

POSITIONS = np.array([1e6, -4e5, 2.5e6])
VOLS = np.array([0.2, 0.35, 0.25])
CORRELATION = np.array([[1.0, 0.2, 0.1], [0.2, 1.0, 0.3], [0.1, 0.3, 1.0]])
OPTION = {"spot": 100, "strike": 105, "vol": 0.2, "maturity": 1, "paths": 20_000}


def var_params(paths: int = 20_000) -> dict:
    return {
        "positions": POSITIONS,
        "vols": VOLS,
        "correlation": CORRELATION,
        "confidence": 0.99,
        "horizon": 0.04,
        "paths": paths,
    }


def test_a_native_job_takes_numpy_params_and_returns_typed_estimates(helix):
    r = helix.submit("mc-var", var_params(), budget_ms=5000, seed=7)
    assert isinstance(r, helix_router.JobResult)
    assert (r.status, r.kernel, r.runtime, r.version, r.criticality) == (
        "completed",
        "mc-var",
        "native",
        "1.0.0",
        "critical",
    )
    var, es = r.estimate("var"), r.estimate("es")
    assert var.std_error is not None and var.std_error > 0
    # Expected shortfall lies beyond the VaR, for the same losses.
    assert es.value > var.value > 0
    low, high = var.interval(0.95)
    assert low < var.value < high
    assert r.decision is not None and r.decision.units_granted == r.decision.units_requested == 20_000
    assert r.decision.strategy and r.decision.reason
    assert r.timings.total_us >= r.timings.service_us
    assert r.budget_us == 5_000_000 and r.budget_met
    # No X-Request-Start on a first attempt: the server charged nothing before it.
    assert r.timings.before_server_us is None and r.attempts == 1
    assert r.raw["estimates"]["var"]["value"] == var.value
    with pytest.raises(KeyError, match="it has"):
        r.estimate("price")


def test_a_wasm_job_reports_its_fuel_and_gives_the_native_bits(helix):
    wasm = helix.submit("mc-option", OPTION, budget_ms=5000, seed=3, runtime="wasm")
    native = helix.submit("mc-option", OPTION, budget_ms=5000, seed=3, runtime="native")
    assert (wasm.runtime, native.runtime) == ("wasm", "native")
    assert wasm.fuel_used is not None and wasm.fuel_used > 0 and native.fuel_used is None
    assert wasm.estimates == native.estimates
    assert set(wasm.estimates) >= {"price", "delta"}


@pytest.mark.parametrize("runtime", ["native", "wasm"])
def test_array_results_are_ndarrays_that_match_numpys_ewma_covariance(helix, runtime):
    rng = np.random.default_rng(11)
    returns = rng.normal(0.0, 0.01, size=(300, 4)) @ np.array(
        [[1.0, 0.3, 0.0, 0.1], [0.0, 1.0, 0.2, 0.0], [0.0, 0.0, 1.0, 0.4], [0.0, 0.0, 0.0, 1.0]]
    )
    lam = 0.97
    r = helix.submit("ewma-cov", {"returns": returns, "assets": 4, "lambda": lam}, budget_ms=5000, runtime=runtime)
    cov = r.arrays["covariance"]
    assert isinstance(cov, np.ndarray) and cov.dtype == np.float64 and cov.shape == (16,)
    # RiskMetrics: weights lambda^age, the newest row age 0, normalised to one; zero mean.
    weights = lam ** np.arange(len(returns))[::-1]
    expected = (returns * weights[:, None]).T @ returns / weights.sum()
    np.testing.assert_allclose(cov.reshape(4, 4), expected, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(r.arrays["cholesky"].reshape(4, 4), np.linalg.cholesky(expected), rtol=1e-9)
    np.testing.assert_allclose(r.arrays["vols"], np.sqrt(np.diag(expected)), rtol=1e-10)
    # An exact estimate has no error bar, so no interval either.
    used = r.estimate("weight_used")
    assert used.std_error is None and used.interval() is None
    assert used.value == pytest.approx(1 - lam ** len(returns))


def test_the_same_seed_gives_the_same_answer_and_another_seed_another(helix):
    first = helix.submit("mc-var", var_params(), budget_ms=5000, seed=42)
    again = helix.submit("mc-var", var_params(), budget_ms=5000, seed=42)
    other = helix.submit("mc-var", var_params(), budget_ms=5000, seed=43)
    assert first.estimates == again.estimates
    assert first.estimate("var").value != other.estimate("var").value
    # Lists and numpy arrays are the same parameters.
    listed = dict(var_params(), positions=POSITIONS.tolist(), correlation=CORRELATION.tolist())
    assert helix.submit("mc-var", listed, budget_ms=5000, seed=42).estimates == first.estimates


def test_an_error_target_is_reported_with_what_it_reached(helix):
    r = helix.submit(
        "mc-option", dict(OPTION, paths=2_000_000), budget_ms=5000, seed=3, target={"relative_error": 0.01}
    )
    t = r.target
    assert t is not None and t.estimate == "price" and t.relative_error == 0.01 and t.std_error is None
    assert t.met == (t.reached_std_error <= t.target_std_error)
    assert t.units > 0 and t.rounds >= 1 and t.sized_from in ("pilot", "learnt")
    assert r.estimate("price").std_error == t.reached_std_error


def test_a_numpy_scalar_and_a_bad_array_are_handled_before_sending(helix):
    r = helix.submit("mc-option", dict(OPTION, spot=np.float64(100.0), paths=np.int64(20_000)), budget_ms=5000, seed=3)
    assert r.estimates == helix.submit("mc-option", OPTION, budget_ms=5000, seed=3).estimates
    with pytest.raises(ValueError, match=r"params\.vols: holds NaN"):
        helix.submit("mc-var", dict(var_params(), vols=np.array([0.2, np.nan, 0.25])), budget_ms=5000)
    with pytest.raises(ValueError, match=r"params\.correlation: 3-D array"):
        helix.submit("mc-var", dict(var_params(), correlation=np.zeros((2, 2, 2))), budget_ms=5000)
