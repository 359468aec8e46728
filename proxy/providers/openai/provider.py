"""The OpenAI Chat Completions provider, also for OpenAI-compatible servers.

    router -> OpenAIProvider.open(request, route)
           -> payload.build_payload -> open_upstream(<base>/chat/completions)
           -> SSE events -> decode.StreamDecoder -> canonical events
    (stream=False: the JSON body -> StreamDecoder.whole -> the same events)

One class serves api.openai.com and every compatible server (Ollama, vLLM,
llama.cpp, DeepSeek, OpenRouter, Perplexity) through a base URL such as
`https://api.openai.com/v1` or `http://localhost:11434/v1`. Servers that need
no key (a local Ollama) work without one: a base URL other than OpenAI's own
is enough, and no Authorization header is sent then.
"""
from __future__ import annotations

from ...canonical import ChatRequest
from ...config import ProviderSettings
from ..base import ModelRoute, Provider, UpstreamStream
from ..http import UpstreamClient, open_upstream
from .decode import StreamDecoder
from .endpoint import completions_url, is_official, needs_key
from .payload import build_payload


class OpenAIProvider(Provider):
    name = "openai"
    key_variables = ("OPENAI_API_KEY",)
    base_url_variable = "OPENAI_BASE_URL"

    def __init__(self, credentials: ProviderSettings, settings, store=None) -> None:
        super().__init__(credentials, settings, store)
        self.client = UpstreamClient(self.name, settings)

    @classmethod
    def usable(cls, credentials: ProviderSettings) -> bool:
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
        return open_upstream(self.client, completions_url(credentials.base_url), body, headers,
                             StreamDecoder(self.name, secrets), stream=request.stream, secrets=secrets)
