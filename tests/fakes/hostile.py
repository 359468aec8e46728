"""A hostile upstream: answers that try to make Switchboard leak its provider key.

    test -> HostileUpstream(vendor) (a FakeUpstream) + Bystander (another origin, another port)
    Switchboard provider -> hostile upstream -> a redirect to the bystander, an error
                            echoing the key it was sent, or a 200 that is no answer

Each behaviour is a function of the request the fake received, so the key it
echoes is the key Switchboard really sent (Authorization: Bearer, x-api-key
or x-goog-api-key), in several encodings: as is, URL-quoted, JSON-escaped
with `\\/`, and in response headers. The bystander records every request it
gets, with its headers: whatever reaches it has left for another origin.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from .upstream import FakeUpstream, Received, Reply

KEYS = {
    # Characters that change under URL-quoting and JSON escaping, so each form is checked.
    "openai": "sk-hostile-openai/0123456789+abcdef",
    "anthropic": "sk-ant-hostile/0123456789+abcdef",
    "gemini": "AIzaHostile/0123456789+abcdefghij",
}


def sent_key(vendor: str, received: Received) -> str:
    headers = {name.lower(): value for name, value in received.headers.items()}
    if vendor == "openai":
        return headers.get("authorization", "").removeprefix("Bearer ")
    return headers.get("x-api-key" if vendor == "anthropic" else "x-goog-api-key", "")


def forms(key: str) -> list[str]:
    """The key as a leak could spell it."""
    return [key, quote(key, safe=""), key.replace("/", "\\/")]


def echo(key: str) -> str:
    """An error text that repeats the key every way a careless server might."""
    return f"invalid key {key} (quoted {quote(key, safe='')}, escaped {key.replace('/', chr(92) + '/')})"


def echo_headers(key: str) -> dict[str, str]:
    return {"x-echo-key": key, "www-authenticate": f'Bearer realm="{key}"', "x-request-id": f"req-{quote(key)}"}


# -- each vendor's wire format -------------------------------------------------------


def _data(payload: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload)}\n\n".encode()


def text_events(vendor: str, text: str) -> list[bytes]:
    """The opening of a streamed answer that delivers `text` (content reaches the client)."""
    if vendor == "openai":
        return [_data({"id": "c1", "object": "chat.completion.chunk", "model": "m",
                       "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}]})]
    if vendor == "anthropic":
        return [
            _data({"type": "message_start", "message": {"id": "msg_h", "model": "m", "usage": {"input_tokens": 1}}},
                  "message_start"),
            _data({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                  "content_block_start"),
            _data({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
                  "content_block_delta"),
        ]
    return [_data({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}],
                   "responseId": "r1"})]


def inband_error(vendor: str, key: str) -> bytes:
    """The vendor's own in-band error event, its message echoing the key."""
    if vendor == "openai":
        return _data({"error": {"message": echo(key), "type": key, "code": key}})
    if vendor == "anthropic":
        return _data({"type": "error", "error": {"type": "api_error", "message": echo(key)}}, "error")
    return _data({"error": {"code": 500, "status": "INTERNAL", "message": echo(key)}})


def error_json(vendor: str, key: str) -> dict:
    if vendor == "gemini":
        return {"error": {"code": 500, "status": "INTERNAL", "message": echo(key)}}
    if vendor == "anthropic":
        return {"type": "error", "error": {"type": "api_error", "message": echo(key)}}
    return {"error": {"message": echo(key), "type": "server_error", "code": key}}


def not_an_answer(vendor: str) -> dict:
    """A 200 JSON body that holds no answer (and no error)."""
    return {"openai": {"id": "x", "object": "chat.completion", "choices": []},
            "anthropic": {"id": "msg_x", "type": "message", "model": "m"},
            "gemini": {"responseId": "r", "modelVersion": "m"}}[vendor]


# -- behaviours -------------------------------------------------------------------------


Behaviour = Callable[[str, Received, str], Reply]  # (vendor, what was received, the bystander's URL) -> reply


def redirect(status: int) -> Behaviour:
    def reply(vendor: str, received: Received, elsewhere: str) -> Reply:
        key = sent_key(vendor, received)
        location = f"{elsewhere}/steal{received.path}?key={quote(key, safe='')}"
        return Reply.json(None, status=status, raw=b"", headers={"Location": location, **echo_headers(key)})

    reply.__name__ = f"redirect_{status}"
    return reply


def error_status_json(vendor: str, received: Received, elsewhere: str) -> Reply:
    key = sent_key(vendor, received)
    return Reply.json(error_json(vendor, key), status=500, headers=echo_headers(key))


def error_status_text(vendor: str, received: Received, elsewhere: str) -> Reply:
    key = sent_key(vendor, received)
    return Reply(chunks=[f"<html>bad gateway: {echo(key)}</html>".encode()], status=502, content_type="text/html",
                 headers=echo_headers(key))


def error_first(vendor: str, received: Received, elsewhere: str) -> Reply:
    """A 200 stream whose first event is the vendor's error (nothing delivered yet)."""
    key = sent_key(vendor, received)
    return Reply(chunks=[inband_error(vendor, key)], headers=echo_headers(key))


def error_after_text(vendor: str, received: Received, elsewhere: str) -> Reply:
    """Content first, then the vendor's error: the client gets an in-band error."""
    key = sent_key(vendor, received)
    return Reply(chunks=[*text_events(vendor, "Hello"), inband_error(vendor, key)], headers=echo_headers(key))


def non_json_line(vendor: str, received: Received, elsewhere: str) -> Reply:
    key = sent_key(vendor, received)
    return Reply(chunks=[*text_events(vendor, "Hello"), f"data: oops {echo(key)}\n\n".encode()],
                 headers=echo_headers(key))


def error_json_in_200(vendor: str, received: Received, elsewhere: str) -> Reply:
    """200 with a bare `{"error": ...}` JSON body (no `type`), whether a stream was asked for or not."""
    key = sent_key(vendor, received)
    return Reply.json({"error": {"message": echo(key), "type": "api_error", "code": key}}, headers=echo_headers(key))


def empty_200(vendor: str, received: Received, elsewhere: str) -> Reply:
    """200 with JSON that is no answer at all."""
    return Reply.json(not_an_answer(vendor))


def empty_stream(vendor: str, received: Received, elsewhere: str) -> Reply:
    """A 200 stream that ends without ever answering."""
    raw = {"openai": b"data: [DONE]\n\n", "anthropic": b": ping\n\n", "gemini": b"data: {}\n\n"}[vendor]
    return Reply(chunks=[raw])


BEHAVIOURS: list[Behaviour] = [
    redirect(301), redirect(302), redirect(307), redirect(308), error_status_json, error_status_text, error_first,
    error_after_text, non_json_line, error_json_in_200, empty_200, empty_stream,
]
# Where a key could reach nobody but the client: answers that must still be errors.
NOT_ANSWERS = {"empty_200", "empty_stream", "error_json_in_200"}


@dataclass
class Hostile:
    """The hostile upstream of one vendor and the bystander it redirects to."""

    vendor: str
    upstream: FakeUpstream
    bystander: FakeUpstream

    @property
    def key(self) -> str:
        return KEYS[self.vendor]

    def play(self, behaviour: Behaviour) -> None:
        """Answer every request (retries included) with `behaviour`."""
        vendor, elsewhere = self.vendor, self.bystander.url
        self.upstream.default = lambda received: behaviour(vendor, received, elsewhere)

    def close(self) -> None:
        self.upstream.close()
        self.bystander.close()


def start(vendor: str) -> Hostile:
    # The bystander answers like a real upstream would: a leak must not fail loudly to be seen.
    bystander = FakeUpstream(default=Reply.json({"stolen": True}))
    return Hostile(vendor, FakeUpstream(), bystander)
