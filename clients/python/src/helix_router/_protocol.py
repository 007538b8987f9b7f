"""What the sync and async clients share: how each call's request is built and how its reply
is read. Neither does any I/O, so the two clients differ only in how they send and sleep."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx

from . import errors
from .metrics import Metrics
from .params import ParamValue, encode_params
from .results import Kernel, KernelBuild, ReloadReport, UploadResult

T = TypeVar("T")

Criticality = Literal["critical", "sheddable"]
Runtime = Literal["native", "wasm"]
#: Bytes, text, or a path to read them from.
Source = bytes | str | os.PathLike

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_S = 10.0


@dataclass
class Call(Generic[T]):
    """One request and how to read its reply."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    kwargs: dict[str, Any] = field(default_factory=dict)


def http_options(base_url: str, admin_token: str | None, timeout: float, headers: Mapping[str, str] | None) -> dict:
    """The `httpx.Client` / `httpx.AsyncClient` options of a client."""
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds above 0 (got {timeout!r})")
    merged = {"user-agent": "helix-router-python/0.1.0", **(headers or {})}
    if admin_token:
        merged["authorization"] = f"Bearer {admin_token}"
    return {"base_url": base_url.rstrip("/"), "timeout": httpx.Timeout(timeout), "headers": merged}


def job_body(
    kernel: str,
    params: Mapping[str, ParamValue] | None,
    budget_ms: float,
    seed: int | None,
    criticality: Criticality | None,
    runtime: Runtime | None,
    target: Mapping[str, Any] | None,
) -> bytes:
    """The JSON body of `POST /v1/jobs`; optional fields are left out so the server's
    defaults apply."""
    if isinstance(budget_ms, bool) or not isinstance(budget_ms, (int, float)):
        raise TypeError(f"budget_ms must be a number of milliseconds (got {budget_ms!r})")
    body: dict[str, Any] = {"kernel": kernel, "params": encode_params(params), "budget_ms": budget_ms}
    if seed is not None:
        body["seed"] = seed
    if criticality is not None:
        body["criticality"] = criticality
    if runtime is not None:
        body["runtime"] = runtime
    if target is not None:
        body["target"] = dict(target)
    return json.dumps(body, allow_nan=False).encode()


def job_timeout(timeout: float, budget_ms: float) -> httpx.Timeout:
    """A job's reply comes within its budget (and the sandbox's grace), so the read timeout is
    the client's timeout on top of the budget."""
    return httpx.Timeout(timeout, read=timeout + max(float(budget_ms), 0.0) / 1e3)


def submit_kwargs(body: bytes, headers: Mapping[str, str], timeout: httpx.Timeout) -> dict[str, Any]:
    return {"content": body, "headers": {"content-type": "application/json", **headers}, "timeout": timeout}


def decoded(response: httpx.Response) -> Any:
    """The reply's JSON, or its text when it is not JSON (a proxy's error page)."""
    try:
        return response.json()
    except ValueError:
        return response.text


def error_of(response: httpx.Response, attempts: int = 1, has_token: bool = True) -> errors.HelixError:
    """The exception an error reply calls for."""
    error = errors.from_response(response.status_code, response.headers, decoded(response), attempts)
    if isinstance(error, errors.Unauthorized) and not isinstance(error, errors.AdminDisabled) and not has_token:
        error.message += " (this client has none: pass admin_token=)"
    return error


def checked(response: httpx.Response, has_token: bool = True) -> Any:
    """The reply's JSON when it is a success; the matching `HelixError` otherwise."""
    if response.is_success:
        return decoded(response)
    raise error_of(response, has_token=has_token)


def kernels_call() -> Call[list[KernelBuild]]:
    return Call("GET", "/v1/kernels", lambda r: [KernelBuild.from_json(k) for k in checked(r)["kernels"]])


def kernel_call(name: str) -> Call[Kernel]:
    return Call("GET", f"/v1/kernels/{quote(name, safe='')}", lambda r: Kernel.from_json(checked(r)))


def _read(source: Source | None, what: str) -> bytes | None:
    if source is None:
        return None
    if isinstance(source, bytes):
        return source
    if isinstance(source, str):
        return source.encode()
    if isinstance(source, os.PathLike):
        with open(source, "rb") as f:
            return f.read()
    raise TypeError(f"{what} must be bytes, str or a path (got {type(source).__name__})")


def upload_call(name: str, manifest_toml: Source, module_bytes: Source | None, has_token: bool) -> Call[UploadResult]:
    """`PUT /v1/kernels/NAME`, multipart: the manifest's TOML text (a `str`, or a path to read
    it from) and, for a Wasm kernel, its module (bytes, or a path)."""
    if isinstance(module_bytes, str):
        raise TypeError("module_bytes must be bytes or a path (pathlib.Path), not str")
    files = {"manifest": (f"{name}.toml", _read(manifest_toml, "manifest_toml"), "application/toml")}
    module = _read(module_bytes, "module_bytes")
    if module is not None:
        files["module"] = (f"{name}.wasm", module, "application/wasm")
    return Call(
        "PUT",
        f"/v1/kernels/{quote(name, safe='')}",
        lambda r: UploadResult.from_json(checked(r, has_token)),
        {"files": files},
    )


def reload_call(has_token: bool) -> Call[ReloadReport]:
    return Call("POST", "/v1/admin/reload", lambda r: ReloadReport.from_json(checked(r, has_token)))


def metrics_call() -> Call[Metrics]:
    def read(r: httpx.Response) -> Metrics:
        if not r.is_success:
            raise error_of(r)
        return Metrics.parse(r.text)

    return Call("GET", "/metrics", read)


def ready_call() -> Call[bool]:
    return Call("GET", "/readyz", lambda r: r.status_code == 200)


def transport_error(e: httpx.HTTPError, method: str, path: str) -> errors.TransportError:
    return errors.TransportError(f"{method} {path}: {type(e).__name__}: {e}", kind="transport")
