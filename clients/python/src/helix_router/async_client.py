"""The asyncio client: the same calls as `Client`, awaited, for many jobs in flight at once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx

from . import _protocol as p
from .errors import HelixError
from .metrics import Metrics
from .params import ParamValue
from .results import JobResult, Kernel, KernelBuild, ReloadReport, UploadResult
from .retry import RetryPlan

T = TypeVar("T")


class AsyncClient:
    """A HelixRouter server at `base_url`, for asyncio; the options are `Client`'s. Use it as
    an async context manager, or await `aclose()`."""

    def __init__(
        self,
        base_url: str = p.DEFAULT_BASE_URL,
        *,
        admin_token: str | None = None,
        timeout: float = p.DEFAULT_TIMEOUT_S,
        retries: int = 0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        RetryPlan(0.0, retries)  # refuses a bad count here rather than at the first drop
        self.retries = retries
        self.timeout = float(timeout)
        self._has_token = bool(admin_token)
        self._http = httpx.AsyncClient(**p.http_options(base_url, admin_token, timeout, headers))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the connection pool."""
        await self._http.aclose()

    async def _run(self, call: p.Call[T]) -> T:
        try:
            response = await self._http.request(call.method, call.path, **call.kwargs)
        except httpx.HTTPError as e:
            raise p.transport_error(e, call.method, call.path) from e
        return call.read(response)

    async def submit(
        self,
        kernel: str,
        params: Mapping[str, ParamValue] | None = None,
        *,
        budget_ms: float,
        seed: int | None = None,
        criticality: p.Criticality | None = None,
        runtime: p.Runtime | None = None,
        target: Mapping[str, Any] | None = None,
        retries: int | None = None,
    ) -> JobResult:
        """`Client.submit`, awaited: the wait before a retry is an `asyncio.sleep`."""
        body = p.job_body(kernel, params, budget_ms, seed, criticality, runtime, target)
        plan = RetryPlan(float(budget_ms), self.retries if retries is None else retries)
        timeout = p.job_timeout(self.timeout, budget_ms)
        while True:
            kwargs = p.submit_kwargs(body, plan.headers(), timeout)
            try:
                response = await self._http.post("/v1/jobs", **kwargs)
            except httpx.HTTPError as e:
                raise p.transport_error(e, "POST", "/v1/jobs") from e
            if response.is_success:
                return JobResult.from_json(response.json(), plan.attempts)
            error: HelixError = p.error_of(response, plan.attempts)
            wait = plan.wait_before_retry(error)
            if wait is None:
                raise error
            await asyncio.sleep(wait)

    async def kernels(self) -> list[KernelBuild]:
        """Every registered build (native and Wasm), ordered by name."""
        return await self._run(p.kernels_call())

    async def kernel(self, name: str) -> Kernel:
        """The kernel `name` and its builds; `UnknownKernel` (with a `suggestion`) if none."""
        return await self._run(p.kernel_call(name))

    async def upload(self, name: str, manifest_toml: p.Source, module_bytes: p.Source | None = None) -> UploadResult:
        """Admin: registers (or replaces) kernel `name`; see `Client.upload`."""
        return await self._run(p.upload_call(name, manifest_toml, module_bytes, self._has_token))

    async def reload(self) -> ReloadReport:
        """Admin: rescans the server's manifests folder (or syncs its store) now."""
        return await self._run(p.reload_call(self._has_token))

    async def metrics(self) -> Metrics:
        """The server's Prometheus metrics, parsed."""
        return await self._run(p.metrics_call())

    async def ready(self) -> bool:
        """Whether the server is ready for jobs (kernels loaded, not draining)."""
        return await self._run(p.ready_call())
