"""Quickstart: a portfolio VaR and an EWMA covariance from a running HelixRouter.

HELIX_URL=http://127.0.0.1:8080 python examples/quickstart.py
"""

import os

import numpy as np

from helix_router import Client, Dropped

url = os.environ.get("HELIX_URL", "http://127.0.0.1:8080")

positions = np.array([1e6, -4e5, 2.5e6])
vols = np.array([0.2, 0.35, 0.25])
correlation = np.array([[1.0, 0.2, 0.1], [0.2, 1.0, 0.3], [0.1, 0.3, 1.0]])

# retries=2: a job dropped for load is tried again after the server's Retry-After, but only
# while that wait ends within the job's budget.
with Client(url, retries=2) as helix:
    try:
        r = helix.submit(
            "mc-var",
            {"positions": positions, "vols": vols, "correlation": correlation, "confidence": 0.99, "horizon": 0.04},
            budget_ms=3000,
            seed=7,
        )
    except Dropped as e:
        raise SystemExit(f"dropped ({e.reason}) after {e.attempts} attempt(s); retry in {e.retry_after} s") from e
    var = r.estimates["var"]
    low, high = var.interval(0.95)
    print(f"99% VaR {var.value:,.0f} ± {var.std_error:,.0f} (95% interval {low:,.0f} to {high:,.0f})")
    print(f"{r.status}: {r.decision.strategy} because {r.decision.reason}, {r.timings.total_us} us of {r.budget_us}")

    returns = np.random.default_rng(1).normal(0.0, 0.01, size=(250, 3))
    ewma = helix.submit("ewma-cov", {"returns": returns, "assets": 3, "lambda": 0.94}, budget_ms=1000)
    print("EWMA covariance:")
    print(ewma.arrays["covariance"].reshape(3, 3))
