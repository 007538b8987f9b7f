"""Each refusal the server gives arrives as its own exception, carrying what the reply said."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import helix_router
from conftest import REPO, TOKEN, free_port
from helix_router import BudgetTooSmall, Dropped, HelixError, InvalidInput, KernelFailed, NeverFits, UnknownKernel

OPTION = {"spot": 100, "strike": 105, "vol": 0.2, "maturity": 1, "paths": 20_000}


def test_an_unknown_kernel_names_the_nearest_one(helix):
    with pytest.raises(UnknownKernel) as job:
        helix.submit("mc-optoin", OPTION, budget_ms=100)
    assert (job.value.status, job.value.kind, job.value.suggestion) == (404, "unknown_kernel", "mc-option")
    assert job.value.outcome is not None and job.value.outcome.status == "rejected"
    with pytest.raises(UnknownKernel) as lookup:
        helix.kernel("mc-optoin")
    assert (lookup.value.status, lookup.value.field, lookup.value.suggestion) == (404, "name", "mc-option")
    with pytest.raises(UnknownKernel) as far:
        helix.kernel("no-such-thing-at-all")
    assert far.value.suggestion is None and "GET /v1/kernels" in far.value.message
    assert isinstance(far.value, HelixError) and not far.value.retryable


def test_an_invalid_parameter_names_its_field(helix):
    with pytest.raises(InvalidInput) as bad_param:
        helix.submit("mc-option", dict(OPTION, vol=-0.2), budget_ms=100)
    assert bad_param.value.status == 400 and bad_param.value.field == "vol", bad_param.value
    with pytest.raises(InvalidInput) as bad_budget:
        helix.submit("mc-option", OPTION, budget_ms=0)
    assert bad_budget.value.field == "budget_ms" and bad_budget.value.kind == "bad_request"
    with pytest.raises(InvalidInput) as bad_choice:
        helix.submit("mc-option", OPTION, budget_ms=100, criticality="urgent")
    assert bad_choice.value.field == "criticality", bad_choice.value


def test_a_job_that_never_fits_says_what_budget_would(helix):
    huge = dict(OPTION, paths=100_000_000)
    with pytest.raises(BudgetTooSmall) as never:
        helix.submit("mc-option", huge, budget_ms=1, retries=3)
    e = never.value
    assert NeverFits is BudgetTooSmall and not e.retryable
    assert (e.status, e.field, e.outcome.decision.reason) == (422, "budget_ms", "budget_too_small")
    assert e.floor_units is not None and 0 < e.floor_units < 100_000_000
    assert e.floor_cost_us > e.usable_us > 0
    assert e.min_budget_ms > 1
    # The budget it names is the edge: a little less is still too small for any server, a
    # little more is not (though this server may still drop it for want of a split: 429).
    with pytest.raises(BudgetTooSmall):
        helix.submit("mc-option", huge, budget_ms=e.min_budget_ms * 0.9)
    try:
        ran = helix.submit("mc-option", huge, budget_ms=e.min_budget_ms * 1.02, seed=1)
        assert ran.degraded and ran.decision.units_granted >= e.floor_units
    except Dropped as load:  # BudgetTooSmall is no Dropped: it would fail the test
        assert load.status == 429 and load.reason == "budget_unreachable"


def guest_module(crate: str) -> bytes:
    """The module of a test guest crate (`cargo xtask test` builds them); `HELIX_TEST_GUESTS`
    names their folder, by default the repository's build folder."""
    folder = Path(os.environ.get("HELIX_TEST_GUESTS") or REPO / "target/wasm/wasm32-wasip2/release")
    path = folder / f"{crate.replace('-', '_')}_guest.wasm"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `cargo xtask test`, which builds the test guests", pytrace=False)
    return path.read_bytes()


def wasm_manifest(name: str, module: bytes) -> str:
    return (
        f'name = "{name}"\nversion = "1.0.0"\nruntime = "wasm"\n\n[cost]\nfixed_us = 50.0\nper_unit_ns = 1.0\n\n'
        f'[module]\npath = "{name}.wasm"\nsha256 = "{hashlib.sha256(module).hexdigest()}"\n'
    )


@pytest.mark.parametrize(("guest", "kind"), [("panic-trap", "sandbox"), ("nan-output", "numeric_failure")])
def test_a_kernel_that_fails_raises_kernel_failed_with_its_kind(own_server, guest, kind):
    s = own_server()
    module = guest_module(guest)
    with s.client(admin_token=TOKEN) as c:
        assert c.upload(guest, wasm_manifest(guest, module), module).kernel.name == guest
        with pytest.raises(KernelFailed) as failed:
            c.submit(guest, {}, budget_ms=5000, retries=2)
    e = failed.value
    assert (e.status, e.kind) == (500, kind) and not e.retryable, e
    assert e.outcome.status == "failed" and e.outcome.runtime == "wasm" and e.outcome.attempts == 1


def test_no_server_is_a_transport_error():
    with helix_router.Client(f"http://127.0.0.1:{free_port()}", timeout=2.0) as c:
        with pytest.raises(helix_router.TransportError) as gone:
            c.kernels()
    assert gone.value.status is None and isinstance(gone.value.__cause__, Exception)
