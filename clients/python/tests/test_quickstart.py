"""The README's example is `examples/quickstart.py`, run here against the live server so it
cannot drift from what the client does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def test_the_quickstart_runs_as_the_readme_shows(server):
    run = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env={**os.environ, "HELIX_URL": server.url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("99% VaR ") and "95% interval" in lines[0], run.stdout
    assert lines[1].startswith(("completed: ", "degraded: ")), run.stdout
    # The covariance it prints is numpy's 3 x 3 matrix: symmetric, positive on the diagonal.
    rows = np.array([[float(x) for x in line.strip(" []").split()] for line in lines[3:6]])
    assert rows.shape == (3, 3) and np.allclose(rows, rows.T) and (np.diag(rows) > 0).all(), run.stdout


def test_the_readmes_show_the_quickstart_as_it_is():
    code = EXAMPLE.read_text().split('"""', 2)[2].lstrip("\n")
    # The client's README, and the repository's (its first Python block).
    for readme in (EXAMPLE.parents[1] / "README.md", EXAMPLE.parents[3] / "README.md"):
        shown = readme.read_text().split("```python\n", 1)[1].split("```\n", 1)[0]
        assert shown == code, f"{readme}'s example differs from examples/quickstart.py: paste the file's code into it"
