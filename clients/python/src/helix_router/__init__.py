"""Python client for HelixRouter: submit latency-budgeted jobs with numpy in and out, read
typed outcomes (estimates with standard errors, the routing decision, timings), and handle
each refusal by its own exception, with optional retries that stay within the job's budget.

    >>> from helix_router import Client
    >>> with Client("http://127.0.0.1:8080") as helix:          # doctest: +SKIP
    ...     r = helix.submit("mc-option", {"spot": 100, "strike": 105, "vol": 0.2, "maturity": 1},
    ...                      budget_ms=50, seed=3)
    ...     r.estimates["price"].value, r.decision.strategy
"""

from .async_client import AsyncClient
from .client import Client
from .errors import (
    AdminDisabled,
    BudgetTooSmall,
    Draining,
    Dropped,
    HelixError,
    InvalidInput,
    InvalidKernel,
    KernelFailed,
    NeverFits,
    PayloadTooLarge,
    TransportError,
    Unauthorized,
    UnknownKernel,
)
from .metrics import Metrics, Sample
from .results import (
    Decision,
    ErrorInfo,
    Estimate,
    JobResult,
    Kernel,
    KernelBuild,
    Refusal,
    ReloadReport,
    TargetReport,
    Timings,
    UploadResult,
)

__version__ = "0.1.0"

__all__ = [
    "AdminDisabled",
    "AsyncClient",
    "BudgetTooSmall",
    "Client",
    "Decision",
    "Draining",
    "Dropped",
    "ErrorInfo",
    "Estimate",
    "HelixError",
    "InvalidInput",
    "InvalidKernel",
    "JobResult",
    "Kernel",
    "KernelBuild",
    "KernelFailed",
    "Metrics",
    "NeverFits",
    "PayloadTooLarge",
    "Refusal",
    "ReloadReport",
    "Sample",
    "TargetReport",
    "Timings",
    "TransportError",
    "Unauthorized",
    "UnknownKernel",
    "UploadResult",
]
