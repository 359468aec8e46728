"""The OpenAI Chat Completions provider, also for OpenAI-compatible servers.

    router -> OpenAIProvider.open(request, route)
           -> payload.build_payload -> UpstreamClient.post(<base>/chat/completions)
           -> SSEReader events -> decode.StreamDecoder -> canonical events
    (stream=False: the JSON body -> decode.decode_response -> the same events)

One class serves api.openai.com and every compatible server (Ollama, vLLM,
llama.cpp, DeepSeek, OpenRouter, Perplexity) through a base URL such as
`https://api.openai.com/v1` or `http://localhost:11434/v1`. Servers that need
no key (a local Ollama) work without one: a base URL other than OpenAI's own
is enough, and no Authorization header is sent then.
"""
from __future__ import annotations

import time
from typing import Iterator
from urllib.parse import urlsplit

from ...canonical import ChatRequest, Error, Event
from ...config import ProviderSettings
from ..base import ModelRoute, Provider, UpstreamStream
from ..http import SSEReader, UpstreamClient, transport_error
from .decode import StreamDecoder, decode_response
from .payload import build_payload

DEFAULT_BASE_URL = "https://api.openai.com/v1"
OFFICIAL_HOST = "api.openai.com"


def completions_url(base_url: str | None) -> str:
    """`https://api.openai.com/v1` -> `.../v1/chat/completions` (a full URL is kept)."""
    base = (base_url or DEFAULT_BASE_URL).rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


def is_official(base_url: str | None) -> bool:
    return (urlsplit(base_url or DEFAULT_BASE_URL).hostname or "") == OFFICIAL_HOST


def needs_key(credentials: ProviderSettings) -> bool:
    """api.openai.com needs a key; a declared compatible server may not."""
    if credentials.options.get("keyless"):
        return False
    if credentials.options.get("key_required"):
        return True
    return is_official(credentials.base_url)


class OpenAIProvider(Provider):
    name = "openai"

    def __init__(self, credentials: ProviderSettings, settings) -> None:
        super().__init__(credentials, settings)
        self.client = UpstreamClient(self.name, settings)

    @property
    def configured(self) -> bool:
        return self.usable(self.credentials)

    @staticmethod
    def usable(credentials: ProviderSettings) -> bool:
        return bool(credentials.api_key) or not needs_key(credentials)

    def open(self, request: ChatRequest, route: ModelRoute) -> UpstreamStream:
        credentials = route.credentials or self.credentials
        key = credentials.api_key
        secrets = (key,) if key else ()
        headers = {"Accept": "text/event-stream" if request.stream else "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        for option, header in (("organization", "OpenAI-Organization"), ("project", "OpenAI-Project")):
            if credentials.options.get(option):
                headers[header] = str(credentials.options[option])
        headers.update(credentials.options.get("headers") or {})
        body = build_payload(request, route.upstream_model, official=is_official(credentials.base_url),
                             stream=request.stream)
        url = completions_url(credentials.base_url)
        response = self.client.post(url, body, headers, stream=True, secrets=secrets)
        if not request.stream:
            return self._complete(response, secrets)
        reader = SSEReader(response, self.name, self.settings)
        # The generator only runs after `stream` exists, so the lambda can name it.
        stream = UpstreamStream(self._events(reader, lambda: stream, secrets), on_cancel=reader.cancel)
        return stream

    def _events(self, reader: SSEReader, owner, secrets: tuple[str, ...]) -> Iterator[Event]:
        decoder = StreamDecoder(self.name, secrets)
        stream: UpstreamStream = owner()
        try:
            for event in reader.events():
                for item in decoder.feed(event.data):
                    yield item
                    if isinstance(item, Error):
                        return
                if decoder.done:
                    break
            if stream.cancelled.is_set():
                return
            yield from decoder.finish()
        finally:
            reader.response.close()
            stream.finished_at = time.monotonic()

    def _complete(self, response, secrets: tuple[str, ...]) -> UpstreamStream:
        """The non-streaming call: the whole body is read here, before the first byte
        goes to the client, so its errors still get a real HTTP status."""
        try:
            body = response.content
        except Exception as exc:  # a cut or stalled body
            raise transport_error(exc, self.name, self.settings) from None
        finally:
            response.close()
        stream = UpstreamStream(decode_response(body, self.name, secrets))
        stream.finished_at = time.monotonic()
        return stream
