"""Anthropic Messages SSE events -> canonical events (pure).

    SSEReader.events() -> decode_stream(events) -> ResponseMetadata, text /
    reasoning / tool events, Usage, Finish   (or an Error / raised ProxyError)

A per-index block state machine (docs/anthropic.md, "Streaming"): text,
thinking (its signature arrives as one `signature_delta` before the block
stops), redacted_thinking (complete in its start event), tool_use (the
`partial_json` fragments are the arguments; the start block's `input: {}`
is not). Unknown events and block types are ignored, `ping` too.
`message_stop` is the only clean end: a stream that stops without it, or
says `event: error`, ends in an error, never in a Finish.
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import orjson

from ...canonical import (
    Error,
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
from ...errors import ProxyError, UpstreamError
from ..base import Decoder
from .mapping import PROVIDER, UsageTotals, error_from_body, map_stop_reason
from .request import METADATA_KEY
from .response import decode_response


class _Block:
    """One open content block: its kind, canonical id and what it gathers."""

    __slots__ = ("kind", "id", "name", "parts", "signature", "metadata")

    def __init__(self, kind: str, block_id: str, name: str = "", metadata: dict | None = None) -> None:
        self.kind = kind
        self.id = block_id
        self.name = name
        self.parts: list[str] = []  # tool_use: the partial_json fragments
        self.signature = ""
        self.metadata = metadata


def malformed(detail: str) -> UpstreamError:
    return UpstreamError(f"{PROVIDER} sent a malformed stream event: {detail}", code="malformed_event", provider=PROVIDER)


class StreamDecoder(Decoder):
    """Decodes one stream; `usage` stays readable if the stream breaks."""

    def __init__(self) -> None:
        self.usage = UsageTotals()
        self.blocks: dict[int, _Block] = {}
        self.message_id = "msg"
        self.stop_reason: str | None = None
        self.done = False

    def decode(self, events: Iterable[Any]) -> Iterator[Event]:
        for sse_event in events:
            yield from self.feed(sse_event)
            if self.done:
                return
        yield from self.end()

    def feed(self, sse_event: Any) -> Iterator[Event]:
        data = sse_event.data
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise malformed(f"not JSON: {data[:200]!r}") from None
        if not isinstance(payload, dict):
            raise malformed(f"not a JSON object: {data[:200]!r}")
        kind = payload.get("type") or sse_event.event
        if kind == "content_block_delta":
            yield from self._delta(payload)
        elif kind == "content_block_start":
            yield from self._start(payload)
        elif kind == "content_block_stop":
            yield from self._stop(payload)
        elif kind == "message_start":
            yield self._message_start(payload)
        elif kind == "message_delta":
            delta = payload.get("delta") or {}
            if delta.get("stop_reason") is not None:
                self.stop_reason = delta["stop_reason"]
            self.usage.update(payload.get("usage"))
        elif kind == "message_stop":
            self.done = True
            yield self.usage.event()
            yield Finish(map_stop_reason(self.stop_reason), self.stop_reason)
        elif kind == "error":
            self.done = True
            if self.usage.seen:
                yield self.usage.event()
            yield Error(error_from_body(payload))
        # ping and event types added later are ignored (docs/anthropic.md, "Streaming")

    def end(self) -> Iterator[Event]:
        raise UpstreamError(
            f"{PROVIDER} stream ended without message_stop", code="stream_incomplete", provider=PROVIDER
        )
        yield  # a generator, like feed()

    def interrupted(self) -> Iterator[Event]:
        """The provisional usage of message_start: better than none for accounting."""
        if self.usage.seen:
            yield self.usage.event()

    def whole(self, body: bytes) -> Iterator[Event]:
        return decode_response(body)

    def _message_start(self, payload: dict) -> ResponseMetadata:
        message = payload.get("message") or {}
        self.message_id = message.get("id") or self.message_id
        self.usage.update(message.get("usage"))
        return ResponseMetadata(message.get("id"), message.get("model"))

    def _index(self, payload: dict) -> int:
        index = payload.get("index")
        if not isinstance(index, int):
            raise malformed(f"{payload.get('type')} without an index")
        return index

    def _start(self, payload: dict) -> Iterator[Event]:
        index = self._index(payload)
        block = payload.get("content_block") or {}
        kind = block.get("type")
        block_id = f"{self.message_id}:{index}"
        if kind == "text":
            self.blocks[index] = _Block("text", block_id)
            yield TextStart(block_id)
            if block.get("text"):  # always "" on the wire today
                yield TextDelta(block_id, block["text"])
        elif kind == "thinking":
            state = self.blocks[index] = _Block("thinking", block_id)
            state.signature = block.get("signature") or ""
            yield ReasoningStart(block_id)
            if block.get("thinking"):
                yield ReasoningDelta(block_id, block["thinking"])
        elif kind == "redacted_thinking":
            # Complete in its start event, no deltas: nothing to show, data to keep.
            metadata = {METADATA_KEY: {"redactedData": block.get("data") or ""}}
            self.blocks[index] = _Block("redacted_thinking", block_id, metadata=metadata)
            yield ReasoningStart(block_id, metadata)
        elif kind == "tool_use":
            tool_id = block.get("id") or block_id
            self.blocks[index] = _Block("tool_use", tool_id, block.get("name") or "")
            yield ToolInputStart(tool_id, block.get("name") or "")
        # server tool blocks and newer block types: ignored, deltas included

    def _delta(self, payload: dict) -> Iterator[Event]:
        state = self.blocks.get(self._index(payload))
        if state is None:
            return
        delta = payload.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            if delta.get("text"):
                yield TextDelta(state.id, delta["text"])
        elif kind == "input_json_delta":
            fragment = delta.get("partial_json")
            if fragment:  # the first fragment is often ""
                state.parts.append(fragment)
                yield ToolInputDelta(state.id, fragment)
        elif kind == "thinking_delta":
            if delta.get("thinking"):
                yield ReasoningDelta(state.id, delta["thinking"])
        elif kind == "signature_delta":
            state.signature += delta.get("signature") or ""

    def _stop(self, payload: dict) -> Iterator[Event]:
        state = self.blocks.pop(self._index(payload), None)
        if state is None:
            return
        if state.kind == "text":
            yield TextEnd(state.id)
        elif state.kind == "thinking":
            metadata = {METADATA_KEY: {"signature": state.signature}} if state.signature else None
            yield ReasoningEnd(state.id, metadata)
        elif state.kind == "redacted_thinking":
            yield ReasoningEnd(state.id, state.metadata)
        elif state.kind == "tool_use":
            # The call is complete here; a tool without parameters streams nothing.
            yield ToolInputEnd(state.id)
            yield ToolCall(state.id, state.name, "".join(state.parts) or "{}")


def decode_stream(events: Iterable[Any], decoder: StreamDecoder | None = None) -> Iterator[Event]:
    """Canonical events of one Messages stream; raises ProxyError on a bad or
    cut stream, after reporting the usage known so far (the provisional
    numbers of message_start: better than none for accounting)."""
    decoder = decoder or StreamDecoder()
    try:
        yield from decoder.decode(events)
    except ProxyError:
        yield from decoder.interrupted()
        raise
