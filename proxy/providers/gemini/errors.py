"""Gemini error bodies -> the error tree (docs/gemini.md, "Errors and quotas").

    UpstreamClient.post(refine_error=refine)   non-2xx answers before the stream
    stream decoder -> from_error_object(...)    `{"error": ...}` inside a 200 body

Google's RPC error model says more than the HTTP status: an invalid API key
is `400 INVALID_ARGUMENT` with `ErrorInfo.reason = API_KEY_INVALID`, and the
wait before retrying a 429 lives in `RetryInfo.retryDelay` ("32s", "2.5s"),
or, from some front ends, in a Retry-After header (kept when the body has
none). A per-day quota will not recover by waiting. Bodies may be a
JSON list holding the error object. Pure: no flask, no requests.
"""
from __future__ import annotations

from typing import Any

import orjson

from ...errors import (
    AuthenticationFailed,
    BadRequest,
    ModelNotFound,
    PermissionDenied,
    ProxyError,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    from_upstream_status,
)

PROVIDER = "gemini"

# Google RPC status -> HTTP status, for error objects that carry only the name.
RPC_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


def error_object(body: bytes | Any) -> dict | None:
    """The `error` object of a Gemini error body (bytes or parsed), or None."""
    if isinstance(body, (bytes, str)):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return None


def parse_duration(value: Any) -> float | None:
    """A protobuf Duration in JSON ("32s", "2.500s") -> seconds."""
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            return None
    return None


def _details(error: dict, kind: str) -> list[dict]:
    suffix = "google.rpc." + kind
    return [d for d in error.get("details") or () if isinstance(d, dict) and str(d.get("@type", "")).endswith(suffix)]


def retry_delay(error: dict) -> float | None:
    for detail in _details(error, "RetryInfo"):
        delay = parse_duration(detail.get("retryDelay"))
        if delay is not None:
            return delay
    return None


def is_daily_quota(error: dict) -> bool:
    for detail in _details(error, "QuotaFailure"):
        for violation in detail.get("violations") or ():
            if isinstance(violation, dict) and "PerDay" in str(violation.get("quotaId", "")):
                return True
    return False


def _reasons(error: dict) -> set[str]:
    return {str(d.get("reason")) for d in _details(error, "ErrorInfo")}


def classify(status: int, error: dict, message: str, retry_after: float | None = None) -> ProxyError:
    """The ProxyError for an HTTP status plus Google's error object; the body's
    RetryInfo delay wins over `retry_after` (from a Retry-After header)."""
    rpc_status = str(error.get("status") or "")
    delay = retry_delay(error)
    if delay is None:
        delay = retry_after
    kwargs = {"upstream_status": status, "provider": PROVIDER}
    if "API_KEY_INVALID" in _reasons(error) or rpc_status == "UNAUTHENTICATED":
        return AuthenticationFailed(message, code="invalid_api_key", **kwargs)
    if status == 429 or rpc_status == "RESOURCE_EXHAUSTED":
        if is_daily_quota(error):
            # Waiting the suggested delay will not bring a daily quota back.
            return RateLimited(message, code="insufficient_quota", retryable=False, retry_after=delay, **kwargs)
        return RateLimited(message, retry_after=delay, **kwargs)
    if rpc_status == "FAILED_PRECONDITION":
        return BadRequest(message, code="failed_precondition", **kwargs)
    if status == 403 or rpc_status == "PERMISSION_DENIED":
        return PermissionDenied(message, **kwargs)
    if status == 404 or rpc_status == "NOT_FOUND":
        return ModelNotFound(message, **kwargs)
    if status == 504 or rpc_status == "DEADLINE_EXCEEDED":
        return UpstreamTimeout(message, **kwargs)
    if status == 503 or rpc_status == "UNAVAILABLE":
        return UpstreamError(message, code="overloaded", retry_after=delay, **kwargs)
    return from_upstream_status(status, message, retry_after=delay, provider=PROVIDER)


def refine(error: ProxyError, body: bytes) -> ProxyError:
    """Hook for UpstreamClient.post: reclassify using the body; the message
    (already redacted of keys) is kept."""
    found = error_object(body)
    if found is None:
        return error
    return classify(error.upstream_status or error.status, found, error.message, error.retry_after)


def from_error_object(error: dict) -> ProxyError:
    """An `{"error": ...}` object that arrived inside a 200 body (mid-stream)."""
    code = error.get("code")
    status = code if isinstance(code, int) else RPC_STATUS.get(str(error.get("status") or ""), 500)
    message = f"{PROVIDER} stream failed ({error.get('status') or status}): {error.get('message') or 'no message'}"
    return classify(status, error, message)
