"""Coze errors -> the error tree (pure).

    JSON envelope {code, msg, data, detail.logid} -> parse_envelope -> Envelope
    a Coze code (HTTP-200 body, chat.failed, event:error, workflow Error) -> coze_error

Coze signals most failures with HTTP 200 and a `code` in the body; the codes
are mapped to statuses here (docs/coze.md, "Errors").
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ...errors import AuthenticationFailed, BadRequest, PermissionDenied, ProxyError, RateLimited, UpstreamError

PROVIDER = "coze"


@dataclass(slots=True)
class Envelope:
    code: int
    msg: str
    logid: str | None
    data: Any
    body: dict


def parse_envelope(raw: bytes, logid: str | None = None) -> Envelope:
    """Coze's JSON reply; a body that is not its envelope is an UpstreamError."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"{PROVIDER} answered with a body that is not JSON: {raw[:200]!r}",
                            code="malformed_response", provider=PROVIDER) from None
    if not isinstance(body, dict):
        raise UpstreamError(f"{PROVIDER} answered with unexpected JSON: {raw[:200]!r}", code="malformed_response",
                            provider=PROVIDER)
    detail = body.get("detail") if isinstance(body.get("detail"), dict) else {}
    code = body.get("code", 0)
    try:
        code = int(code)
    except (TypeError, ValueError):
        code = -1
    return Envelope(code, str(body.get("msg") or ""), detail.get("logid") or logid, body.get("data"), body)


def coze_error(code: int | None, msg: str, logid: str | None = None) -> ProxyError:
    """A Coze error code (sent with HTTP 200, or in a stream) -> the error tree.

    https://www.coze.com/docs/developer_guides/coze_error_codes
    """
    where = f" (Coze logid {logid})" if logid else ""
    message = f"{PROVIDER} error {code}: {msg or 'no message'}{where}"
    if code in (4100, 4101):
        return AuthenticationFailed(
            message + " — check COZE_API_KEY and that COZE_BASE_URL is the region of the token (api.coze.com or api.coze.cn)",
            code="invalid_api_key", provider=PROVIDER)
    if code == 4013:
        return RateLimited(message, provider=PROVIDER)
    if code == 4016:
        return UpstreamError(message, status=409, code="conversation_busy", retryable=True, provider=PROVIDER)
    if code == 4104:
        return UpstreamError(message, status=409, code="chat_not_cancellable", retryable=False, provider=PROVIDER)
    if code == 4200:
        return BadRequest(message + " — the bot or workflow must exist, be published as an API service "
                          "and be reachable with this token", code="coze_resource_unavailable", provider=PROVIDER)
    if code == 6003:
        return PermissionDenied(message, code="coze_premium_feature", provider=PROVIDER)
    if code is not None and 4000 <= code < 5000:
        return BadRequest(message, code="coze_invalid_request", provider=PROVIDER)
    return UpstreamError(message, code="coze_error", provider=PROVIDER)


def envelope_error(envelope: Envelope) -> ProxyError:
    return coze_error(envelope.code, envelope.msg, envelope.logid)


def malformed(detail: str) -> UpstreamError:
    return UpstreamError(f"{PROVIDER} sent a malformed stream event: {detail}", code="malformed_event", provider=PROVIDER)


def incomplete(what: str) -> UpstreamError:
    return UpstreamError(f"{PROVIDER} stream ended {what}", code="stream_incomplete", provider=PROVIDER)
