"""The Anthropic provider package: Claude over the Messages API (docs/anthropic.md).

    provider.py   AnthropicProvider (the IO half: builds the call, opens it)
    request.py    ChatRequest -> Messages API payload            (pure)
    stream.py     SSE events -> canonical events (StreamDecoder)  (pure)
    response.py   a non-streamed body -> canonical events        (pure)
    mapping.py    stop reasons, usage, error bodies              (pure)

This file imports nothing, so importing a pure module of the package does not
pull in requests; `AnthropicProvider` is loaded on first use.
"""


def __getattr__(name: str):
    if name == "AnthropicProvider":
        from .provider import AnthropicProvider

        return AnthropicProvider
    raise AttributeError(name)
