"""The exceptions a call raises, one per kind of answer the server gives (its status table is
in the main README), and `from_response`, which picks the one a reply calls for."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .results import JobResult


class HelixError(Exception):
    """Any error answer from HelixRouter, or no answer at all (`TransportError`).

    `status` is the HTTP status (`None` when there was no reply), `kind` and `field` come from
    the body's `error` object, `body` is the decoded body, and `outcome` is the job's outcome
    when the reply carried one (a dropped, failed or rejected job)."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        kind: str | None = None,
        field: str | None = None,
        body: Any = None,
        outcome: JobResult | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind
        self.field = field
        self.body = body
        self.outcome = outcome

    def __str__(self) -> str:
        where = f" `{self.field}`" if self.field else ""
        head = f"HTTP {self.status}" if self.status is not None else "no reply"
        return f"{head} {self.kind or 'error'}{where}: {self.message}"


class TransportError(HelixError):
    """The request got no HTTP answer (refused connection, timeout); `__cause__` is httpx's
    error."""


class Dropped(HelixError):
    """The job was dropped before it ran (429, or 503 for a quarantined kernel): `reason` is
    the decision's reason (`queue_full`, `shed_under_pressure`, `quarantined`, ...) and
    `retry_after` the seconds the server asked the client to wait. Safe to retry: answers are
    deterministic by seed. `attempts` counts the requests made for the job."""

    retryable = True

    def __init__(self, message: str, *, reason: str, retry_after: float | None, attempts: int = 1, **kw: Any):
        super().__init__(message, **kw)
        self.reason = reason
        self.retry_after = retry_after
        self.attempts = attempts

    def __str__(self) -> str:
        wait = f", retry after {self.retry_after:g} s" if self.retry_after is not None else ""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"HTTP {self.status} dropped ({self.reason}{wait}){tries}: {self.message}"


class Draining(Dropped):
    """The server is shutting down (503 `draining`): another replica, or this one once it is
    back, will take the job."""


class BudgetTooSmall(HelixError):
    """422 `budget_too_small`: not even an idle server could run the job's smallest run within
    its budget. Retrying cannot help: raise `budget_ms` or ask for fewer units.

    From the server's message: `floor_units` (the smallest run), `floor_cost_us` (what it
    costs), `usable_us` (what the budget leaves for work), and `min_budget_ms`, the budget
    below which no server can run it (same ratio of usable to total), or `None` where the
    message does not say. The server prices that run split over every idle permit, so a
    budget just above `min_budget_ms` may still be dropped (429 `budget_unreachable`)."""

    _FLOOR = re.compile(r"\((\d+) units\) needs about ([0-9.]+) us, more than the ([0-9.]+) us")

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.floor_units: int | None = None
        self.floor_cost_us: float | None = None
        self.usable_us: float | None = None
        self.min_budget_ms: float | None = None
        found = self._FLOOR.search(message)
        if found:
            self.floor_units = int(found.group(1))
            self.floor_cost_us = float(found.group(2))
            self.usable_us = float(found.group(3))
            if self.outcome is not None and self.usable_us > 0:
                # The budget's usable share scales with the budget: keep the server's ratio.
                needed_us = self.outcome.budget_us * self.floor_cost_us / self.usable_us
                self.min_budget_ms = math.ceil(needed_us) / 1e3


#: The same error by the policy's name for it (`Reason::NeverFits`).
NeverFits = BudgetTooSmall


class InvalidInput(HelixError):
    """400: malformed JSON, an unknown field, or a parameter that breaks its manifest's rule;
    `field` names it (a parameter such as `vol`, or `budget_ms`, `X-Request-Start`)."""


class UnknownKernel(HelixError):
    """404 `unknown_kernel`: no kernel by that name (or none for the runtime asked for);
    `suggestion` is the nearest registered name, when the server offers one."""

    _DID_YOU_MEAN = re.compile(r'did you mean "((?:[^"\\]|\\.)*)"\?')

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        found = self._DID_YOU_MEAN.search(message)
        self.suggestion: str | None = found.group(1) if found else None


class KernelFailed(HelixError):
    """500: the kernel ran and failed; `kind` says how (`sandbox`, `panic`,
    `numeric_failure`, or `internal` for a router bug that failed this job alone)."""


class Unauthorized(HelixError):
    """401: an admin call without the right bearer token (pass `admin_token=`)."""


class AdminDisabled(Unauthorized):
    """403: the server has no admin token configured, so its admin API is off."""


class InvalidKernel(HelixError):
    """422 on an upload: the manifest or module was refused (schema, sha256, exports,
    imports, compilation); the message says which."""


class PayloadTooLarge(HelixError):
    """413: the body is over the server's `max_body_bytes` (jobs) or `max_upload_bytes`
    (uploads)."""


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        # The HTTP-date form; HelixRouter always sends seconds.
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def from_response(status: int, headers: Mapping[str, str], body: Any, attempts: int = 1) -> HelixError:
    """The exception for an error reply: `status`, its headers (case-insensitive mapping) and
    its decoded JSON body (or its text when it was not JSON)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    error = error if isinstance(error, Mapping) else {}
    kind = error.get("kind")
    field = error.get("field")
    message = str(error.get("message") or (body if isinstance(body, str) else "")) or f"HTTP {status}"
    outcome = JobResult.from_json(body, attempts) if JobResult.is_outcome(body) else None
    common: dict[str, Any] = {"status": status, "kind": kind, "field": field, "body": body, "outcome": outcome}
    reason = outcome.decision.reason if outcome is not None and outcome.decision is not None else None
    if status in (429, 503):
        retry = _retry_after(headers)
        if kind == "draining":
            return Draining(message, reason="draining", retry_after=retry, attempts=attempts, **common)
        if outcome is not None:
            text = message if error else f"the job was dropped: {reason}"
            return Dropped(text, reason=reason or "unknown", retry_after=retry, attempts=attempts, **common)
    if status == 422 and reason == "budget_too_small":
        return BudgetTooSmall(message, **common)
    if status == 422 and kind == "invalid_kernel":
        return InvalidKernel(message, **common)
    if status == 400:
        return InvalidInput(message, **common)
    if status == 404 and kind == "unknown_kernel":
        return UnknownKernel(message, **common)
    if status == 401:
        return Unauthorized(message, **common)
    if status == 403:
        return AdminDisabled(message, **common)
    if status == 413:
        return PayloadTooLarge(message, **common)
    if status == 500 and outcome is not None:
        return KernelFailed(message, **common)
    return HelixError(message, **common)
