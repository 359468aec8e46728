"""Shared set-up for the Gemini provider tests: an app whose `gemini/...`
models reach a FakeUpstream guarded like the real API (tests/fakes/gemini.py)."""
from __future__ import annotations

from typing import Any

from proxy import create_app
from proxy.canonical import ChatRequest, Message, TextPart
from proxy.config import ProviderSettings
from proxy.streaming import guard
from tests.fakes.gemini import KEY
from tests.fakes.upstream import transcript

MODEL = "gemini/gemini-2.5-flash"


def gemini_app(fake, **settings: Any):
    config = {
        "demo_delay": 0,
        # provider tests check the provider's own error mapping; the router's
        # retries are proven in tests/test_router.py
        "max_retries": 0,
        "providers": {"gemini": ProviderSettings(api_key=KEY, base_url=fake.url, key_variable="GEMINI_API_KEY")},
    }
    config.update(settings)
    return create_app(config)


def sse(name: str) -> bytes:
    return transcript("gemini", name)


def ask(text: str = "What is the capital of France?", **fields: Any) -> ChatRequest:
    fields.setdefault("model", MODEL)
    return ChatRequest(messages=[Message("user", (TextPart(text),))], **fields)


def run(app, request: ChatRequest) -> list:
    """Open the request through the router and collect the guarded events."""
    stream = app.extensions["switchboard"].router.open(request)
    return list(guard(stream))


def kinds(events: list) -> list[str]:
    return [event.type for event in events]
