"""`AsyncClient`: the same calls awaited, many jobs in flight at once, the same answers as the
blocking client gives."""

from __future__ import annotations

import asyncio

import pytest

from helix_router import AsyncClient, UnknownKernel

OPTION = {"spot": 100, "strike": 100, "vol": 0.25, "maturity": 0.5, "paths": 20_000}


def test_async_jobs_in_flight_together_give_the_blocking_clients_answers(server, helix):
    seeds = [1, 2, 3, 4, 5, 6]

    async def run():
        async with AsyncClient(server.url) as c:
            results = await asyncio.gather(*(c.submit("mc-option", OPTION, budget_ms=5000, seed=s) for s in seeds))
            builds = await c.kernels()
            with pytest.raises(UnknownKernel) as unknown:
                await c.submit("mc-opton", OPTION, budget_ms=100)
            metrics = await c.metrics()
            return results, builds, unknown.value, metrics, await c.ready()

    results, builds, unknown, metrics, ready = asyncio.run(run())
    for seed, r in zip(seeds, results, strict=True):
        assert r.estimates == helix.submit("mc-option", OPTION, budget_ms=5000, seed=seed).estimates
    assert len({r.estimate("price").value for r in results}) == len(seeds)
    assert "mc-option" in {b.name for b in builds}
    assert unknown.suggestion == "mc-option"
    assert metrics.value("helix_jobs_total", kernel="mc-option") >= len(seeds)
    assert ready is True
