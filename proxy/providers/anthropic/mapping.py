"""Anthropic words -> canonical ones, shared by the stream and JSON decoders (pure).

    stop_reason -> Finish(unified, raw); usage -> Usage; error object -> ProxyError

Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from typing import Any, Mapping

from ...canonical import Usage
from ...errors import ProxyError, from_upstream_status

PROVIDER = "anthropic"

# https://docs.anthropic.com/en/api/messages (stop_reason); docs/anthropic.md, "Stop reasons"
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool-calls",
    "refusal": "content-filter",
    "pause_turn": "other",
}

# error.type -> the HTTP status the API uses for it (https://docs.anthropic.com/en/api/errors)
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def map_stop_reason(raw: str | None) -> str:
    if raw is None:
        return "stop"
    return STOP_REASONS.get(raw, "other")


class UsageTotals:
    """Anthropic reports running totals (message_start, then message_delta):
    each report overwrites, nothing is summed (docs/anthropic.md, "Usage")."""

    __slots__ = ("input", "cache_creation", "cache_read", "output", "seen")

    def __init__(self) -> None:
        self.input = self.cache_creation = self.output = 0
        self.cache_read: int | None = None
        self.seen = False

    def update(self, usage: Mapping[str, Any] | None) -> None:
        if not isinstance(usage, Mapping):
            return
        self.seen = True
        if usage.get("input_tokens") is not None:
            self.input = usage["input_tokens"]
        if usage.get("cache_creation_input_tokens") is not None:
            self.cache_creation = usage["cache_creation_input_tokens"]
        if usage.get("cache_read_input_tokens") is not None:
            self.cache_read = usage["cache_read_input_tokens"]
        if usage.get("output_tokens") is not None:
            self.output = usage["output_tokens"]

    def event(self) -> Usage:
        # input_tokens excludes cached tokens: the total input adds both cache fields.
        total_input = self.input + self.cache_creation + (self.cache_read or 0)
        return Usage(input_tokens=total_input, output_tokens=self.output, cached_input_tokens=self.cache_read)


def error_from_body(body: Mapping[str, Any]) -> ProxyError:
    """An in-band `event: error` payload -> the error the same HTTP status
    would have given (what the official SDK does); overloaded is retryable."""
    error = body.get("error") if isinstance(body.get("error"), Mapping) else {}
    kind = error.get("type")
    kind = kind if isinstance(kind, str) and kind else "api_error"
    message = error.get("message") or kind
    message = message if isinstance(message, str) else str(message)[:500]
    request_id = body.get("request_id")
    suffix = f" (request-id {request_id})" if request_id else ""
    status = ERROR_STATUS.get(kind, 500)
    proxy_error = from_upstream_status(status, f"{PROVIDER} stream error {kind}: {message}{suffix}", provider=PROVIDER)
    proxy_error.code = kind
    return proxy_error
