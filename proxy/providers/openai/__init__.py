"""The OpenAI Chat Completions provider package (also every OpenAI-compatible server).

    provider.py   OpenAIProvider (the IO half: builds the call, opens it)
    endpoint.py   base URL -> completions URL, whether a key is needed  (pure)
    payload.py    ChatRequest -> Chat Completions payload                (pure)
    decode.py     chunks / a whole body -> canonical events              (pure)
    think.py      inline <think> tags -> reasoning                       (pure)

Imports only pure modules, so importing one of them does not pull in
requests; `OpenAIProvider` is loaded on first use.
"""
from .endpoint import DEFAULT_BASE_URL, completions_url, is_official, needs_key

__all__ = ["DEFAULT_BASE_URL", "completions_url", "is_official", "needs_key", "OpenAIProvider"]


def __getattr__(name: str):
    if name == "OpenAIProvider":
        from .provider import OpenAIProvider

        return OpenAIProvider
    raise AttributeError(name)
