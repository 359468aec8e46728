"""A fake Anthropic Messages API on top of FakeUpstream: real sockets, the
real wire format (docs/anthropic.md).

    AnthropicUpstream(key=...)  checks x-api-key (401 authentication_error),
    anthropic-version and max_tokens (400 invalid_request_error) like the API,
    before any scripted reply is used; every answer carries a request-id and
    the anthropic-ratelimit-* headers with RFC 3339 resets.

    AnthropicUpstream(require_thinking=True, signatures={signature: thinking}, redacted={data})
    also enforces the extended-thinking tool-loop rule (opt-in, so the other
    tests keep imitating requests without thinking history): with thinking
    enabled, the assistant turn before the last tool results must start with
    its thinking blocks, and every thinking block sent back must be one this
    fake issued, text and signature unchanged (the API verifies signatures).
"""
from __future__ import annotations

import dataclasses
import itertools
import json

from .upstream import FakeUpstream, Received, Reply, transcript

KEY = "sk-ant-test-0123456789"
VERSION = "2023-06-01"
RATE_LIMIT_HEADERS = {
    "anthropic-ratelimit-requests-limit": "1000",
    "anthropic-ratelimit-requests-remaining": "999",
    "anthropic-ratelimit-requests-reset": "2025-08-21T12:40:59Z",
    "anthropic-ratelimit-tokens-limit": "96000",
    "anthropic-ratelimit-tokens-remaining": "96000",
    "anthropic-ratelimit-tokens-reset": "2025-08-21T12:40:59Z",
}
_request_ids = itertools.count(1)


def sse(name: str, **kwargs) -> Reply:
    """A scripted streamed answer replaying tests/transcripts/anthropic/<name>."""
    return Reply.sse(transcript("anthropic", name), **kwargs)


def error_reply(status: int, kind: str, message: str, headers: dict | None = None) -> Reply:
    """A pre-stream error exactly as the API sends it (compact JSON)."""
    request_id = f"req_011CFake{next(_request_ids):08d}"
    body = json.dumps(
        {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}, separators=(",", ":")
    ).encode()
    return Reply.json(None, status=status, raw=body, headers={"request-id": request_id, **(headers or {})})


THINKING_FIRST = (
    "messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. When "
    "`thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost "
    "set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To "
    "avoid this requirement, disable `thinking`."
)


def thinking_problem(messages: list, signatures: dict[str, str], redacted: set[str]) -> str | None:
    """What the API says about a thinking tool loop sent back wrong, or None."""
    for index, message in enumerate(messages):
        content = message.get("content")
        for number, block in enumerate(content if isinstance(content, list) else ()):
            if block.get("type") == "thinking" and signatures.get(block.get("signature")) != block.get("thinking"):
                return f"messages.{index}.content.{number}: Invalid `signature` in `thinking` block"
            if block.get("type") == "redacted_thinking" and block.get("data") not in redacted:
                return f"messages.{index}.content.{number}: Invalid `data` in `redacted_thinking` block"
    last = messages[-1].get("content") if messages else None
    if len(messages) >= 2 and isinstance(last, list) and any(b.get("type") == "tool_result" for b in last):
        assistant = messages[-2]
        content = assistant.get("content")
        first = content[0].get("type") if isinstance(content, list) and content else "text"
        if assistant.get("role") == "assistant" and first not in ("thinking", "redacted_thinking"):
            return THINKING_FIRST.format(index=len(messages) - 2, found=first)
    return None


class AnthropicUpstream(FakeUpstream):
    def __init__(self, key: str = KEY, require_thinking: bool = False, signatures: dict[str, str] | None = None,
                 redacted: set[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.require_thinking = require_thinking
        self.signatures = signatures or {}
        self.redacted = redacted or set()

    def _next_reply(self, received: Received) -> Reply:
        headers = {name.lower(): value for name, value in received.headers.items()}
        reply = self._check(received, headers)
        if reply is None:
            reply = super()._next_reply(received)
        else:
            with self._lock:
                self.received.append(received)
        headers = {"request-id": f"req_011CFake{next(_request_ids):08d}", **RATE_LIMIT_HEADERS, **reply.headers}
        return dataclasses.replace(reply, headers=headers)

    def _check(self, received: Received, headers: dict) -> Reply | None:
        """The API's own checks, before any scripted reply is used."""
        if received.method != "POST" or received.path != "/v1/messages":
            reply = error_reply(404, "not_found_error", f"{received.method} {received.path} not found")
        elif headers.get("x-api-key") != self.key:
            reply = error_reply(401, "authentication_error", "invalid x-api-key")
        elif not headers.get("anthropic-version"):
            reply = error_reply(400, "invalid_request_error", "anthropic-version: header is required")
        elif "max_tokens" not in (received.json if received.body else {}):
            reply = error_reply(400, "invalid_request_error", "max_tokens: Field required")
        else:
            body = received.json
            roles = {m.get("role") for m in body.get("messages", [])}
            if roles - {"user", "assistant"}:
                return error_reply(400, "invalid_request_error", f"messages: unexpected role {sorted(roles)}")
            if body.get("thinking", {}).get("type") == "enabled" and body.get("temperature", 1) != 1:
                return error_reply(400, "invalid_request_error", "temperature may only be set to 1 when thinking is enabled")
            if body.get("temperature", 0) > 1:
                return error_reply(400, "invalid_request_error", "temperature: must be at most 1")
            if self.require_thinking and body.get("thinking", {}).get("type") == "enabled":
                problem = thinking_problem(body.get("messages", []), self.signatures, self.redacted)
                if problem:
                    return error_reply(400, "invalid_request_error", problem)
            return None
        return reply


def make_app(fake: FakeUpstream, **settings):
    """A Switchboard app whose `anthropic/...` models reach `fake`."""
    from proxy import create_app
    from proxy.config import ProviderSettings

    providers = {"anthropic": ProviderSettings(api_key=KEY, base_url=fake.url, key_variable="ANTHROPIC_API_KEY")}
    # Provider tests check the provider's own error mapping; the router's
    # retries are proven in tests/test_router.py.
    return create_app({"demo_delay": 0, "max_retries": 0, "providers": providers, **settings})
