"""The blocking client, for scripts, notebooks and pipelines."""

from __future__ import annotations

import time
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


class Client:
    """A HelixRouter server at `base_url`.

    `admin_token` is the bearer token of the admin calls (`upload`, `reload`); `timeout` is
    how long, in seconds, a connection, a plain call, or a job's reply beyond its budget may
    take; `retries` is how many more times a dropped job is tried by default (0: never), each
    within the job's budget (see `submit`). Use it as a context manager, or call `close()`."""

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
        self._http = httpx.Client(**p.http_options(base_url, admin_token, timeout, headers))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connection pool."""
        self._http.close()

    def _run(self, call: p.Call[T]) -> T:
        try:
            response = self._http.request(call.method, call.path, **call.kwargs)
        except httpx.HTTPError as e:
            raise p.transport_error(e, call.method, call.path) from e
        return call.read(response)

    def submit(
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
        """Runs one job and returns its outcome (completed, or degraded with a wider error
        bar), or raises the `HelixError` its reply calls for.

        `params` may hold numpy arrays (a 2-D one is sent as rows); `seed` makes the answer
        reproducible; `criticality` is `"critical"` (the server's default) or `"sheddable"`;
        `runtime` picks the `"native"` or `"wasm"` build; `target` asks for a standard error
        instead of a unit count (`{"relative_error": 0.002}`, `{"std_error": 0.01,
        "estimate": "es"}`).

        `retries` (default: the client's) tries a dropped job again after the server's
        `Retry-After`, but never when that wait would end past `budget_ms` from the first
        attempt, and each retry tells the server when the first attempt started, so the time
        spent is taken from the budget."""
        body = p.job_body(kernel, params, budget_ms, seed, criticality, runtime, target)
        plan = RetryPlan(float(budget_ms), self.retries if retries is None else retries)
        timeout = p.job_timeout(self.timeout, budget_ms)
        while True:
            kwargs = p.submit_kwargs(body, plan.headers(), timeout)
            try:
                response = self._http.post("/v1/jobs", **kwargs)
            except httpx.HTTPError as e:
                raise p.transport_error(e, "POST", "/v1/jobs") from e
            if response.is_success:
                return JobResult.from_json(response.json(), plan.attempts)
            error: HelixError = p.error_of(response, plan.attempts)
            wait = plan.wait_before_retry(error)
            if wait is None:
                raise error
            time.sleep(wait)

    def kernels(self) -> list[KernelBuild]:
        """Every registered build (native and Wasm), ordered by name."""
        return self._run(p.kernels_call())

    def kernel(self, name: str) -> Kernel:
        """The kernel `name` and its builds; `UnknownKernel` (with a `suggestion`) if none."""
        return self._run(p.kernel_call(name))

    def upload(self, name: str, manifest_toml: p.Source, module_bytes: p.Source | None = None) -> UploadResult:
        """Admin: registers (or replaces) kernel `name` from its manifest and, for Wasm, its
        module; the server checks both before serving them (`InvalidKernel` if refused)."""
        return self._run(p.upload_call(name, manifest_toml, module_bytes, self._has_token))

    def reload(self) -> ReloadReport:
        """Admin: rescans the server's manifests folder (or syncs its store) now."""
        return self._run(p.reload_call(self._has_token))

    def metrics(self) -> Metrics:
        """The server's Prometheus metrics, parsed."""
        return self._run(p.metrics_call())

    def ready(self) -> bool:
        """Whether the server is ready for jobs (kernels loaded, not draining)."""
        return self._run(p.ready_call())
