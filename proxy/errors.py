"""The error tree shared by every provider and surface.

Providers raise (before the first byte) or yield inside an `Error` event
(after it) one of these; each surface renders them in its own protocol's
error shape. Each error knows its HTTP status, an OpenAI-style `type`, a
machine `code`, and whether retrying could help.

Pure: imports neither flask nor requests.
"""
from __future__ import annotations


class ProxyError(Exception):
    status = 500
    type = "api_error"
    code = "internal_error"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        upstream_status: int | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable
        self.param = param
        self.retry_after = retry_after
        self.upstream_status = upstream_status
        self.provider = provider

    def to_dict(self) -> dict:
        """The OpenAI error object body; other surfaces reuse its fields."""
        return {"message": self.message, "type": self.type, "param": self.param, "code": self.code}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status})"


class BadRequest(ProxyError):
    """The client's request is wrong; the message says what to fix."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class PayloadTooLarge(BadRequest):
    status = 413
    code = "request_too_large"


class UnsupportedMediaType(BadRequest):
    """A body that is not JSON: refusing other content types makes browsers
    send a CORS preflight before any cross-origin request can run."""

    status = 415
    code = "unsupported_media_type"


class AuthenticationFailed(ProxyError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(ProxyError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(ProxyError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class ProviderNotConfigured(ProxyError):
    """A model needs a provider whose key is not set; names the variable."""

    status = 503
    type = "api_error"
    code = "provider_not_configured"


class RateLimited(ProxyError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True


class UpstreamError(ProxyError):
    """The upstream failed: 5xx, overloaded, malformed or cut stream."""

    status = 502
    type = "api_error"
    code = "upstream_error"
    retryable = True


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class StoreUnavailable(ProxyError):
    """The store (SQLite / Redis) could not do what was asked."""

    status = 503
    type = "api_error"
    code = "store_unavailable"
    retryable = True


class ServerShutdown(ProxyError):
    """The worker is stopping (restart, deploy) before the stream could end."""

    status = 503
    type = "api_error"
    code = "server_shutdown"
    retryable = True


class Cancelled(ProxyError):
    """The client went away; nothing is sent, the upstream is closed."""

    status = 499
    code = "cancelled"


def from_upstream_status(
    status: int, message: str, *, retry_after: float | None = None, provider: str | None = None
) -> ProxyError:
    """Map an upstream HTTP status to the error tree, keeping the status."""
    kwargs = {"upstream_status": status, "provider": provider}
    if status == 400 or status == 422:
        return BadRequest(message, **kwargs)
    if status == 401:
        return AuthenticationFailed(message, **kwargs)
    if status == 403:
        return PermissionDenied(message, **kwargs)
    if status == 404:
        return ModelNotFound(message, **kwargs)
    if status == 408:
        return UpstreamTimeout(message, **kwargs)
    if status == 409:
        return UpstreamError(message, status=409, **kwargs)
    if status == 413:
        return PayloadTooLarge(message, **kwargs)
    if status == 429:
        return RateLimited(message, retry_after=retry_after, **kwargs)
    if status >= 500:
        return UpstreamError(message, retry_after=retry_after, **kwargs)
    return UpstreamError(message, retryable=False, **kwargs)


def answered(error: BaseException) -> None:
    """Forget where an answered error was raised. Its traceback holds every
    frame it passed through (the chat among their locals), and a frame that
    raised it from a local or a parameter holds it back: a reference cycle
    that would keep the whole failed request alive until a full garbage
    collection. Called once the error has been turned into a response."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
