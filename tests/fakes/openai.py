"""OpenAI-flavoured answers for FakeUpstream (docs/openai.md).

    fake.reply(chat(transcript("openai", "text.sse")))    # checks the bearer key first

A real api.openai.com answers a wrong key with 401 and its 4-space indented
error body, and streams with `text/event-stream; charset=utf-8` plus an
`x-request-id`; these helpers reproduce that around any transcript.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from .upstream import Received, Reply, transcript

KEY = "sk-test-0123456789abcdef"


def error_body(message: str, kind: str, code: Any = None) -> bytes:
    """OpenAI's pre-stream error body: 4-space indented JSON and a trailing newline."""
    return (json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}, indent=4) + "\n").encode()


def error(status: int, message: str, kind: str = "server_error", code: Any = None, **headers: str) -> Reply:
    return Reply.json(None, status=status, raw=error_body(message, kind, code),
                      headers={"x-request-id": "req_fake", **headers})


def chat(raw: bytes, key: str | None = KEY, **kwargs: Any) -> Callable[[Received], Reply]:
    """Stream `raw` to a request bearing `key` (None: any or no key, like Ollama)."""

    def answer(received: Received) -> Reply:
        if key is not None and received.headers.get("Authorization") != f"Bearer {key}":
            return Reply.json(None, status=401, raw=transcript("openai", "error_invalid_api_key.json"),
                              headers={"x-request-id": "req_fake"})
        return Reply.sse(raw, headers={"x-request-id": "req_fake"}, **kwargs)

    return answer


def completion(raw: bytes, key: str | None = KEY) -> Callable[[Received], Reply]:
    """A non-streaming JSON body, after the same key check."""

    def answer(received: Received) -> Reply:
        if key is not None and received.headers.get("Authorization") != f"Bearer {key}":
            return Reply.json(None, status=401, raw=transcript("openai", "error_invalid_api_key.json"))
        return Reply.json(None, raw=raw, headers={"x-request-id": "req_fake"})

    return answer


def text_stream(*pieces: str, model: str = "gpt-4o-mini", finish: str | None = "stop") -> bytes:
    """A plain OpenAI text stream (as api.openai.com streams it) with the given content pieces."""
    head = f'{{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1755007032,"model":"{model}","choices":'

    def chunk(delta: dict, reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        return f"data: {head}{json.dumps([choice], separators=(',', ':'))}}}\n\n".encode()

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": piece}) for piece in pieces]
    if finish:
        out.append(chunk({}, finish))
        out.append(b"data: [DONE]\n\n")
    return b"".join(out)
