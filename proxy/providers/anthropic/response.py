"""A non-streaming Messages API response (JSON) -> canonical events (pure).

    POST /v1/messages (stream false) -> decode_response(body) -> the same
    events a stream would have produced, so one accumulate() path serves both.

Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import orjson

from ...canonical import (
    Event,
    Finish,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    ResponseMetadata,
    TextDelta,
    TextEnd,
    TextStart,
    ToolCall,
    ToolInputDelta,
    ToolInputEnd,
    ToolInputStart,
)
from ...errors import UpstreamError
from .mapping import PROVIDER, UsageTotals, error_from_body, map_stop_reason
from .request import METADATA_KEY


def decode_response(body: bytes) -> Iterator[Event]:
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            f"{PROVIDER} answered with a body that is not JSON: {body[:200]!r}", code="malformed_response", provider=PROVIDER
        ) from None
    if not isinstance(message, Mapping):
        raise UpstreamError(f"{PROVIDER} answered with JSON that is not a message", code="malformed_response", provider=PROVIDER)
    if message.get("type") == "error" or "error" in message:
        raise error_from_body(message)
    content = message.get("content")
    if message.get("type", "message") != "message" or not isinstance(content, list):
        # A 200 that is no Messages answer (a proxy's page, an empty object) is
        # a failure, never an empty success.
        raise UpstreamError(f"{PROVIDER} answered 200 with JSON that is not a message (no content)",
                            code="malformed_response", provider=PROVIDER)
    message_id = message.get("id") or "msg"
    yield ResponseMetadata(message.get("id"), message.get("model"))
    for index, block in enumerate(content):
        yield from decode_block(block, f"{message_id}:{index}")
    usage = UsageTotals()
    usage.update(message.get("usage"))
    yield usage.event()
    stop_reason = message.get("stop_reason")
    yield Finish(map_stop_reason(stop_reason), stop_reason)


def decode_block(block: Any, block_id: str) -> Iterator[Event]:
    if not isinstance(block, Mapping):
        return
    kind = block.get("type")
    if kind == "text":
        yield TextStart(block_id)
        if block.get("text"):
            yield TextDelta(block_id, block["text"])
        yield TextEnd(block_id)
    elif kind == "thinking":
        yield ReasoningStart(block_id)
        if block.get("thinking"):
            yield ReasoningDelta(block_id, block["thinking"])
        signature = block.get("signature")
        yield ReasoningEnd(block_id, {METADATA_KEY: {"signature": signature}} if signature else None)
    elif kind == "redacted_thinking":
        metadata = {METADATA_KEY: {"redactedData": block.get("data") or ""}}
        yield ReasoningStart(block_id, metadata)
        yield ReasoningEnd(block_id, metadata)
    elif kind == "tool_use":
        tool_id = block.get("id") or block_id
        arguments = orjson.dumps(block.get("input") or {}).decode()
        yield ToolInputStart(tool_id, block.get("name") or "")
        yield ToolInputDelta(tool_id, arguments)
        yield ToolInputEnd(tool_id)
        yield ToolCall(tool_id, block.get("name") or "", arguments)
    # server tool blocks and newer block types are ignored
