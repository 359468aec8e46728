"""GenerateContentResponse objects -> canonical events (docs/gemini.md, "Streaming").

    stream:      each SSE `data:` JSON -> ResponseDecoder.feed(chunk) -> events
    non-stream:  the whole JSON body   -> ResponseDecoder.feed(body)  -> events
    end of body  -> ResponseDecoder.end() -> Usage, Finish (or an error)

Every streamed chunk is a whole response whose parts are new content only:
text parts -> text deltas, `thought: true` parts -> reasoning deltas,
`functionCall` parts arrive whole (start + one delta + end + ToolCall, with
an id synthesized when Gemini sent none), `inlineData` parts -> File events.
`thoughtSignature` may sit on any part; it is kept in provider_metadata of
the ToolCall or of a ReasoningEnd so it can be sent back unchanged, and a
functionCall's signature also rides in its call id (call_ids.py) for
clients that send back nothing but the id.
`usageMetadata` repeats cumulative totals on every chunk: the last one wins.
There is no `[DONE]`: a body is complete when a candidate carried a
finishReason; one that ends without it was cut. Pure.
"""
from __future__ import annotations

from typing import Any

import orjson

from ...canonical import (
    Event,
    File,
    Finish,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    ResponseMetadata,
    Source,
    TextDelta,
    TextEnd,
    TextStart,
    ToolCall,
    ToolInputDelta,
    ToolInputEnd,
    ToolInputStart,
    Usage,
)
from ...errors import UpstreamError
from ...sse import Event as SSEEvent
from ..base import Decoder
from .call_ids import SYNTHETIC_ID_PREFIX, with_signature
from .errors import PROVIDER, from_error_object
from .request import METADATA_KEY

CONTENT_FILTER = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
})
TOOL_FAILURE = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"})


def map_finish_reason(raw: str, saw_tool_calls: bool) -> str:
    """Gemini finishReason -> unified; there is no tool-call reason (calls end with STOP)."""
    if raw == "STOP":
        return "tool-calls" if saw_tool_calls else "stop"
    if raw == "MAX_TOKENS":
        return "length"
    if raw in CONTENT_FILTER:
        return "content-filter"
    if raw in TOOL_FAILURE:
        return "error"
    return "other"


class ResponseDecoder(Decoder):
    """Decodes one response (its chunks, in order) into canonical events."""

    __slots__ = ("model", "_metadata_sent", "_text", "_reasoning", "_blocks", "_calls", "_finish_raw",
                 "_usage", "_blocked", "_response_id", "_sources")

    def __init__(self, model: str | None = None) -> None:
        self.model = model
        self._metadata_sent = False
        self._text: str | None = None  # id of the open text block
        self._reasoning: str | None = None  # id of the open reasoning block
        self._blocks = 0
        self._calls = 0
        self._finish_raw: str | None = None
        self._usage: dict | None = None
        self._blocked: str | None = None
        self._response_id: str | None = None
        self._sources: set[str] = set()

    # -- feeding -----------------------------------------------------------

    def feed_bytes(self, data: bytes | str) -> list[Event]:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{PROVIDER} sent a chunk that is not JSON: {str(data)[:200]!r}",
                                code="malformed_stream", provider=PROVIDER) from None
        return self.feed(chunk)

    def feed(self, chunk: Any) -> list[Event]:
        """One SSE event, or one parsed chunk (a dict, or a list of them)."""
        if isinstance(chunk, SSEEvent):
            return self.feed_bytes(chunk.data) if chunk.data else []
        if isinstance(chunk, list):  # error bodies (and the non-SSE stream form) come as lists
            events: list[Event] = []
            for item in chunk:
                events.extend(self.feed(item))
            return events
        if not isinstance(chunk, dict):
            raise UpstreamError(f"{PROVIDER} sent an unexpected chunk: {str(chunk)[:200]!r}",
                                code="malformed_stream", provider=PROVIDER)
        error = chunk.get("error")
        if isinstance(error, dict):
            raise from_error_object(error)
        events = []
        if not self._metadata_sent:
            self._metadata_sent = True
            self._response_id = chunk.get("responseId")
            events.append(ResponseMetadata(id=self._response_id, model=chunk.get("modelVersion") or self.model))
        usage = chunk.get("usageMetadata")
        if usage:
            self._usage = usage  # cumulative: the last one is the total
        feedback = chunk.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            self._blocked = feedback["blockReason"]
        for candidate in chunk.get("candidates") or ():
            if candidate.get("index", 0) != 0:
                continue  # one answer per stream: candidateCount is never set above 1
            content = candidate.get("content") or {}
            for part in content.get("parts") or ():
                self._part(part, events)
            self._grounding(candidate.get("groundingMetadata"), events)
            if candidate.get("finishReason"):
                self._finish_raw = candidate["finishReason"]
        return events

    def _part(self, part: dict, events: list[Event]) -> None:
        signature = part.get("thoughtSignature")
        if "functionCall" in part:
            self._close(events)
            self._function_call(part["functionCall"] or {}, signature, events)
            return
        inline = part.get("inlineData")
        if isinstance(inline, dict) and inline.get("data"):
            self._close(events)
            mime = inline.get("mimeType") or "application/octet-stream"
            events.append(File(mime, f"data:{mime};base64,{inline['data']}"))
        text = part.get("text")
        if part.get("thought"):
            if self._text is not None:
                self._close_text(events)
            if self._reasoning is None:
                self._reasoning = self._new_id("reasoning")
                events.append(ReasoningStart(self._reasoning))
            if text:
                events.append(ReasoningDelta(self._reasoning, text))
            if signature:
                self._close_reasoning(events, signature)
            return
        if text:  # never an empty delta: the signature-only final part has ""
            if self._reasoning is not None:
                self._close_reasoning(events)
            if self._text is None:
                self._text = self._new_id("text")
                events.append(TextStart(self._text))
            events.append(TextDelta(self._text, text))
        if signature:
            # A signature on a (possibly empty) text part: an empty reasoning
            # block carries it, marked to go back on the text it came with.
            self._close(events)
            block = self._new_id("reasoning")
            events.append(ReasoningStart(block))
            events.append(ReasoningEnd(block, {METADATA_KEY: {"thoughtSignature": signature, "onText": bool(text)}}))

    def _function_call(self, call: dict, signature: str | None, events: list[Event]) -> None:
        name = call.get("name") or ""
        call_id = call.get("id") or f"{SYNTHETIC_ID_PREFIX}{self._response_id or 'response'}_{self._calls}"
        # The id carries the signature too: OpenAI-format clients echo only the id.
        call_id = with_signature(call_id, signature)
        self._calls += 1
        arguments = orjson.dumps(call.get("args") or {}).decode()
        metadata = {METADATA_KEY: {"thoughtSignature": signature}} if signature else None
        events.append(ToolInputStart(call_id, name))
        events.append(ToolInputDelta(call_id, arguments))
        events.append(ToolInputEnd(call_id))
        events.append(ToolCall(call_id, name, arguments, metadata))

    def _grounding(self, grounding: Any, events: list[Event]) -> None:
        if not isinstance(grounding, dict):
            return
        for chunk in grounding.get("groundingChunks") or ():
            web = chunk.get("web") if isinstance(chunk, dict) else None
            if isinstance(web, dict) and web.get("uri") and web["uri"] not in self._sources:
                self._sources.add(web["uri"])
                events.append(Source(web["uri"], web.get("title")))

    # -- blocks --------------------------------------------------------------

    def _new_id(self, kind: str) -> str:
        self._blocks += 1
        return f"{kind}-{self._blocks}"

    def _close_text(self, events: list[Event]) -> None:
        events.append(TextEnd(self._text))
        self._text = None

    def _close_reasoning(self, events: list[Event], signature: str | None = None) -> None:
        metadata = {METADATA_KEY: {"thoughtSignature": signature}} if signature else None
        events.append(ReasoningEnd(self._reasoning, metadata))
        self._reasoning = None

    def _close(self, events: list[Event]) -> None:
        if self._text is not None:
            self._close_text(events)
        if self._reasoning is not None:
            self._close_reasoning(events)

    # -- the end -------------------------------------------------------------

    def usage(self) -> Usage | None:
        usage = self._usage
        if not usage:
            return None
        thoughts = usage.get("thoughtsTokenCount")
        return Usage(
            input_tokens=usage.get("promptTokenCount") or 0,
            # thoughts are not part of candidatesTokenCount, but are billed as output
            output_tokens=(usage.get("candidatesTokenCount") or 0) + (thoughts or 0),
            reasoning_tokens=thoughts,
            cached_input_tokens=usage.get("cachedContentTokenCount"),
        )

    def whole(self, body: bytes) -> list[Event]:
        """A non-streamed generateContent body: one chunk that is the whole answer."""
        return self.feed_bytes(body) + self.end()

    def end(self) -> list[Event]:
        """The closing events once the body ended; raises if it was cut short."""
        events: list[Event] = []
        self._close(events)
        if self._finish_raw is None and self._blocked is None:
            raise UpstreamError(f"{PROVIDER}: the response ended without a finishReason (cut short)",
                                code="stream_incomplete", provider=PROVIDER)
        usage = self.usage()
        if usage is not None:
            events.append(usage)
        if self._finish_raw is None:  # prompt blocked: 200, promptFeedback, no candidates
            events.append(Finish("content-filter", self._blocked))
        else:
            events.append(Finish(map_finish_reason(self._finish_raw, self._calls > 0), self._finish_raw))
        return events
