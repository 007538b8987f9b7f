"""Typed forms of the server's JSON replies: each dataclass holds exactly the fields the
server sends (`host/src/outcome.rs`, `host/src/serve/respond.rs`, `host/src/serve/admin.rs`),
plus the raw object, so a field added on the server is reachable before this module names it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np


def _number(x: Any) -> float:
    # The server sends `null` for a non-finite number (JSON has no NaN).
    return math.nan if x is None else float(x)


def _optional_number(x: Any) -> float | None:
    return None if x is None else float(x)


@dataclass(frozen=True)
class Estimate:
    """One named estimate: its value and, for a Monte Carlo estimate, its standard error
    (`None` where the kernel's answer is exact)."""

    value: float
    std_error: float | None

    def interval(self, level: float = 0.95) -> tuple[float, float] | None:
        """The normal-approximation confidence interval `value ± z·std_error` at `level`.

        The server reports the standard error, not an interval: this is computed here, and is
        `None` when the estimate has no standard error."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be between 0 and 1 (got {level})")
        if self.std_error is None:
            return None
        z = NormalDist().inv_cdf(0.5 + level / 2.0)
        return (self.value - z * self.std_error, self.value + z * self.std_error)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Estimate:
        return cls(value=_number(obj.get("value")), std_error=_optional_number(obj.get("std_error")))


@dataclass(frozen=True)
class Decision:
    """The router's decision for a job: how it ran (or why not) and what it predicted."""

    strategy: str
    reason: str
    units_requested: int
    units_granted: int
    chunks: int
    predicted_cost_us: float | None
    predicted_wait_us: float | None
    error_factor: float | None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Decision:
        return cls(
            strategy=obj["strategy"],
            reason=obj["reason"],
            units_requested=int(obj["units_requested"]),
            units_granted=int(obj["units_granted"]),
            chunks=int(obj["chunks"]),
            predicted_cost_us=_optional_number(obj.get("predicted_cost_us")),
            predicted_wait_us=_optional_number(obj.get("predicted_wait_us")),
            error_factor=_optional_number(obj.get("error_factor")),
        )


@dataclass(frozen=True)
class Timings:
    """Where a job's time went, microseconds. `before_server_us` and `reserved_for_reply_us`
    are present when the request carried `X-Request-Start` (the client sends it when it
    retries, and a balancer may stamp it)."""

    queue_us: int
    service_us: int
    total_us: int
    before_server_us: int | None = None
    reserved_for_reply_us: int | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Timings:
        before = obj.get("before_server")
        reserved = obj.get("reserved_for_reply")
        return cls(
            queue_us=int(obj["queue"]),
            service_us=int(obj["service"]),
            total_us=int(obj["total"]),
            before_server_us=None if before is None else int(before),
            reserved_for_reply_us=None if reserved is None else int(reserved),
        )


@dataclass(frozen=True)
class TargetReport:
    """How an error-targeted job fared: the target asked (`std_error` or `relative_error`),
    the standard error it came to, the one reached, and the work it took."""

    estimate: str
    std_error: float | None
    relative_error: float | None
    target_std_error: float | None
    reached_std_error: float | None
    met: bool
    units: int
    rounds: int
    sized_from: str

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TargetReport:
        return cls(
            estimate=obj["estimate"],
            std_error=_optional_number(obj.get("std_error")),
            relative_error=_optional_number(obj.get("relative_error")),
            target_std_error=_optional_number(obj.get("target_std_error")),
            reached_std_error=_optional_number(obj.get("reached_std_error")),
            met=bool(obj["met"]),
            units=int(obj["units"]),
            rounds=int(obj["rounds"]),
            sized_from=obj["sized_from"],
        )


@dataclass(frozen=True)
class ErrorInfo:
    """The server's `error` object: its kind, the field at fault (if any), and what to fix."""

    kind: str
    field: str | None
    message: str

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ErrorInfo:
        return cls(kind=str(obj.get("kind", "")), field=obj.get("field"), message=str(obj.get("message", "")))


@dataclass(frozen=True)
class JobResult:
    """A job's outcome as `POST /v1/jobs` returns it. `arrays` are `numpy.ndarray`s of
    float64, flat as the server sends them (a matrix is row-major); `attempts` counts the
    requests this client made for it (more than 1 after a retry)."""

    id: int
    status: str
    kernel: str
    version: str | None
    runtime: str | None
    criticality: str
    decision: Decision | None
    estimates: dict[str, Estimate]
    arrays: dict[str, np.ndarray]
    timings: Timings
    budget_us: int
    budget_met: bool
    error: ErrorInfo | None = None
    fuel_used: int | None = None
    batch_size: int | None = None
    target: TargetReport | None = None
    attempts: int = 1
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def degraded(self) -> bool:
        """It ran with fewer units than it asked for, with a wider error bar
        (`decision.error_factor` says how much wider)."""
        return self.status == "degraded"

    def estimate(self, name: str) -> Estimate:
        """The estimate `name`; a `KeyError` lists the ones the answer has."""
        try:
            return self.estimates[name]
        except KeyError:
            raise KeyError(f"no estimate {name!r} in the answer: it has {sorted(self.estimates)}") from None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], attempts: int = 1) -> JobResult:
        decision = obj.get("decision")
        error = obj.get("error")
        target = obj.get("target")
        arrays = {
            name: np.array([_number(x) for x in values], dtype=np.float64)
            for name, values in (obj.get("arrays") or {}).items()
        }
        return cls(
            id=int(obj["id"]),
            status=obj["status"],
            kernel=obj["kernel"],
            version=obj.get("version"),
            runtime=obj.get("runtime"),
            criticality=obj["criticality"],
            decision=None if decision is None else Decision.from_json(decision),
            estimates={name: Estimate.from_json(e) for name, e in (obj.get("estimates") or {}).items()},
            arrays=arrays,
            timings=Timings.from_json(obj["timings_us"]),
            budget_us=int(obj["budget_us"]),
            budget_met=bool(obj["budget_met"]),
            error=None if error is None else ErrorInfo.from_json(error),
            fuel_used=obj.get("fuel_used"),
            batch_size=obj.get("batch_size"),
            target=None if target is None else TargetReport.from_json(target),
            attempts=attempts,
            raw=dict(obj),
        )

    @staticmethod
    def is_outcome(obj: Any) -> bool:
        """Whether a reply body is a whole job outcome (a rejection before decoding has only
        `status` and `error`)."""
        return isinstance(obj, Mapping) and "timings_us" in obj and "id" in obj


@dataclass(frozen=True)
class KernelBuild:
    """One registered build of a kernel (`native` or `wasm`), as `GET /v1/kernels` lists it."""

    name: str
    version: str
    runtime: str
    description: str | None
    module_sha256: str | None
    manifest: dict[str, Any]

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> KernelBuild:
        return cls(
            name=obj["name"],
            version=obj["version"],
            runtime=obj["runtime"],
            description=obj.get("description"),
            module_sha256=obj.get("module_sha256"),
            manifest=dict(obj.get("manifest") or {}),
        )


@dataclass(frozen=True)
class Kernel:
    """A kernel by name with every build serving it (`GET /v1/kernels/NAME`)."""

    name: str
    builds: list[KernelBuild]

    def build(self, runtime: str) -> KernelBuild:
        """The build for `runtime`; a `KeyError` names the runtimes there are."""
        for b in self.builds:
            if b.runtime == runtime:
                return b
        raise KeyError(f"kernel {self.name!r} has no {runtime} build: it has {[b.runtime for b in self.builds]}")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Kernel:
        return cls(name=obj["name"], builds=[KernelBuild.from_json(b) for b in obj.get("builds", [])])


@dataclass(frozen=True)
class Refusal:
    """A manifest a reload refused, and why; a kernel it registered before keeps serving."""

    source: str
    message: str


@dataclass(frozen=True)
class ReloadReport:
    """What a reload (or an upload) changed: `name@version (runtime)` loaded, `name (runtime)`
    removed, and the manifests refused."""

    loaded: list[str]
    removed: list[str]
    refused: list[Refusal]

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ReloadReport:
        return cls(
            loaded=list(obj.get("loaded", [])),
            removed=list(obj.get("removed", [])),
            refused=[Refusal(source=r.get("source", ""), message=r.get("message", "")) for r in obj.get("refused", [])],
        )


@dataclass(frozen=True)
class UploadResult:
    """An accepted upload: the build now serving, whether it replaced one, where its manifest
    landed on the server, and the reload it caused."""

    kernel: KernelBuild | None
    replaced: bool
    path: str
    report: ReloadReport

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> UploadResult:
        kernel = obj.get("kernel")
        return cls(
            kernel=None if kernel is None else KernelBuild.from_json(kernel),
            replaced=bool(obj["replaced"]),
            path=str(obj["path"]),
            report=ReloadReport.from_json(obj.get("report") or {}),
        )
