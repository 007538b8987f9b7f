"""When a dropped job is tried again: only if the server said it may help (429 or 503, with
`Retry-After`), only as often as asked, and only if the wait ends before the job's deadline.
A retry carries `X-Request-Start` with the first attempt's time, so the server takes the time
already spent from the job's budget instead of granting it afresh
(`host/src/serve/request_start.rs`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .errors import HelixError

#: The header a retry carries, and the wait assumed when a refusal names none (the server
#: always sends one; a proxy might strip it).
REQUEST_START = "X-Request-Start"
DEFAULT_WAIT_S = 1.0


@dataclass
class RetryPlan:
    """One job's attempts: `retries` more after the first, within `budget_ms` of the first.

    The deadline is kept on the monotonic clock (a wall-clock step cannot stretch it); the
    header carries wall-clock time, which is what the server compares with its own."""

    budget_ms: float
    retries: int
    attempts: int = 0
    started_wall: float = field(default=0.0, init=False)
    started_monotonic: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"retries must be a whole number of at least 0 (got {self.retries!r})")

    def headers(self) -> dict[str, str]:
        """The headers of the next attempt, counting it. The first attempt carries none: it
        starts the job's clock, and a stamp from this machine's clock would charge the job for
        any skew between the clocks of client and server."""
        self.attempts += 1
        if self.attempts == 1:
            self.started_wall = time.time()
            self.started_monotonic = time.monotonic()
            return {}
        return {REQUEST_START: f"t={self.started_wall:.3f}"}

    def deadline_left_s(self, now: float | None = None) -> float:
        """Seconds until the job's budget, counted from the first attempt, runs out."""
        now = time.monotonic() if now is None else now
        return self.started_monotonic + self.budget_ms / 1e3 - now

    def wait_before_retry(self, error: HelixError, now: float | None = None) -> float | None:
        """Seconds to wait before the next attempt, or `None` when there is to be none: the
        error is not one a retry can help (`error.retryable`), the retries are used up, or the
        wait would end at or past the job's deadline."""
        if not error.retryable or self.attempts > self.retries:
            return None
        wait = getattr(error, "retry_after", None)
        wait = DEFAULT_WAIT_S if wait is None else float(wait)
        if wait >= self.deadline_left_s(now):
            return None
        return wait
