"""Schemathesis hooks for host/tests/openapi.rs: the 5xx the API documents.

`POST /v1/jobs` answers 500 when the kernel ran and failed (`numeric_failure`, `panic`,
`sandbox`) and 503 while the kernel is quarantined after such failures or the server drains;
`GET /readyz` answers 503 while the server drains or has no kernel. Every other 5xx, and any of
these with a body that does not say so, is a failure.
"""

import schemathesis

KERNEL_FAILURES = {"numeric_failure", "panic", "sandbox"}


def documented(method, path, status, body):
    if not isinstance(body, dict):
        return False
    if (method, path, status) == ("GET", "/readyz", 503):
        return body.get("status") in ("draining", "no_kernels")
    if method != "POST" or path != "/v1/jobs":
        return False
    if status == 500:
        error = body.get("error") or {}
        return body.get("status") == "failed" and error.get("kind") in KERNEL_FAILURES
    if status == 503:
        decision = body.get("decision") or {}
        draining = (body.get("error") or {}).get("kind") == "draining"
        return draining or decision.get("reason") == "quarantined"
    return False


@schemathesis.check
def server_errors_are_documented_kernel_failures(ctx, response, case):
    """No 5xx but a kernel's own failure or quarantine, a drain, or readiness."""
    status = response.status_code
    if status < 500:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    if not documented(case.method.upper(), case.operation.path, status, body):
        raise AssertionError(f"undocumented {status} from {case.method} {case.operation.path}: {response.text[:500]}")
