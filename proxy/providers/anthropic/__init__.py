"""The Anthropic provider: Claude over the Messages API (docs/anthropic.md).

    router -> AnthropicProvider.open(request, route)
        -> request.build_payload -> POST {base}/v1/messages (x-api-key, anthropic-version)
        -> stream:     SSEReader.events() -> stream.decode_stream -> canonical events
        -> non-stream: JSON body          -> response.decode_response -> canonical events

All IO is here and in providers/http.py; the modules beside this one are pure.
Errors before the first byte (status codes, 529 included) are raised by
UpstreamClient.post; after it they come out of the iteration.
"""
from __future__ import annotations

import time
from typing import Iterator

import requests
import urllib3.exceptions

from ...canonical import ChatRequest, Event
from ...errors import ProxyError
from ..base import ModelRoute, Provider, UpstreamStream
from ..http import SSEReader, UpstreamClient, transport_error
from .request import build_payload
from .response import decode_response
from .stream import decode_stream

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"


def messages_url(base_url: str | None) -> str:
    """ANTHROPIC_BASE_URL is the host root (as in the SDK); a base ending in
    /v1 is accepted too."""
    base = (base_url or DEFAULT_BASE_URL).rstrip("/")
    return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"


class AnthropicProvider(Provider):
    name = "anthropic"

    def __init__(self, credentials, settings) -> None:
        super().__init__(credentials, settings)
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
        response = self.client.post(messages_url(credentials.base_url), payload, headers, stream=True, secrets=(key,))
        if request.stream:
            reader = SSEReader(response, self.name, self.settings)
            stream = UpstreamStream((), on_cancel=reader.cancel)
            stream._events = self._stream(reader, stream)
        else:
            stream = UpstreamStream((), on_cancel=lambda: _shutdown(response))
            stream._events = self._whole(response, stream)
        return stream

    def _stream(self, reader: SSEReader, stream: UpstreamStream) -> Iterator[Event]:
        events = reader.events()
        try:
            for event in decode_stream(events):
                if event.type == "finish" or event.type == "error":
                    # Consumers stop at the terminal event (streaming.guard):
                    # release the upstream now, not when this generator is collected.
                    events.close()
                    stream.finished_at = time.monotonic()
                yield event
        except ProxyError:
            if not stream.cancelled.is_set():
                raise
        finally:
            events.close()  # closes the upstream response (a no-op when already closed)
            if stream.finished_at is None:
                stream.finished_at = time.monotonic()

    def _whole(self, response: requests.Response, stream: UpstreamStream) -> Iterator[Event]:
        try:
            try:
                body = response.content
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                if stream.cancelled.is_set():
                    return
                raise transport_error(exc, self.name, self.settings) from None
        finally:
            response.close()
            stream.finished_at = time.monotonic()
        yield from decode_response(body)


def _shutdown(response: requests.Response) -> None:
    """Wake a read blocked on the socket (never close() from another thread)."""
    try:
        response.raw.shutdown()
    except Exception:  # already closed
        pass
