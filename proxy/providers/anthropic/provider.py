"""The Anthropic provider: Claude over the Messages API.

    router -> AnthropicProvider.open(request, route)
        -> request.build_payload -> open_upstream(POST {base}/v1/messages, x-api-key, anthropic-version)
        -> stream:     SSE events -> stream.StreamDecoder -> canonical events
        -> non-stream: JSON body  -> response.decode_response -> canonical events

All IO is here and in providers/http.py; the modules beside this one are pure.
Errors before the first byte (status codes, 529 included) are raised by
open_upstream; after it they come out of the iteration.
"""
from __future__ import annotations

from ...canonical import ChatRequest
from ..base import ModelRoute, Provider, UpstreamStream
from ..http import UpstreamClient, open_upstream
from .request import build_payload
from .stream import StreamDecoder

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"


def messages_url(base_url: str | None) -> str:
    """ANTHROPIC_BASE_URL is the host root (as in the SDK); a base ending in
    /v1 is accepted too."""
    base = (base_url or DEFAULT_BASE_URL).rstrip("/")
    return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"


class AnthropicProvider(Provider):
    name = "anthropic"
    key_variables = ("ANTHROPIC_API_KEY",)
    base_url_variable = "ANTHROPIC_BASE_URL"

    def __init__(self, credentials, settings, store=None) -> None:
        super().__init__(credentials, settings, store)
        self.client = UpstreamClient(self.name, settings)

    def open(self, request: ChatRequest, route: ModelRoute) -> UpstreamStream:
        credentials = route.credentials or self.credentials
        key = credentials.api_key or ""
        payload = build_payload(request, route.upstream_model, route.params, stream=request.stream)
        headers = {"x-api-key": key, "anthropic-version": API_VERSION}
        beta = credentials.options.get("beta")
        if beta:
            headers["anthropic-beta"] = beta if isinstance(beta, str) else ",".join(beta)
        if request.stream:
            headers["Accept"] = "text/event-stream"
        return open_upstream(self.client, messages_url(credentials.base_url), payload, headers, StreamDecoder(),
                             stream=request.stream, secrets=(key,))
