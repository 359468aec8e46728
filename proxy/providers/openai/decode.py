"""Chat Completions chunks -> canonical events (docs/openai.md, "Streaming").

    SSEReader events -> StreamDecoder.feed(data) ... .finish() -> canonical events
    non-streaming JSON body -> decode_response(body) -> the same events

One decoder for OpenAI and every compatible server: reasoning from
`reasoning_content` (DeepSeek, llama.cpp), `reasoning` (OpenRouter, Ollama,
vLLM), `reasoning_details` (OpenRouter) or inline `<think>` tags; tool calls
keyed by `index` (streamed in fragments or whole in one chunk); usage from any
chunk (the last wins); Perplexity citations as `Source` events; OpenRouter
images as `File` events; a top-level `error` or `finish_reason: "error"` is an
in-band error. Pure: no IO.
"""
from __future__ import annotations

from typing import Any, Iterator

import orjson

from ...canonical import (
    Error,
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
from ...errors import ProxyError, RateLimited, UpstreamError, from_upstream_status
from ..base import Decoder
from ..redaction import redact
from .think import ThinkSplitter

FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool-calls",
    "function_call": "tool-calls",
    "content_filter": "content-filter",
    "error": "error",
}


def inband_error(error: Any, provider: str, secrets: tuple[str, ...] = ()) -> ProxyError:
    """A ProxyError from an error object found inside a 200 response."""
    if isinstance(error, dict):
        message = str(error.get("message") or error)
        code, kind = error.get("code"), str(error.get("type") or "")
    else:
        message, code, kind = str(error), None, ""
    message = f"{provider} reported an error: {redact(message, secrets)}"
    if isinstance(code, int) and 400 <= code < 600:
        return from_upstream_status(code, message, provider=provider)
    if code == "rate_limit_exceeded" or "rate_limit" in kind:
        return RateLimited(message, provider=provider)
    return UpstreamError(message, code=code if isinstance(code, str) and code else kind or "upstream_error",
                         provider=provider)


def decode_usage(usage: dict) -> Usage:
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        reasoning_tokens=completion.get("reasoning_tokens"),
        cached_input_tokens=prompt.get("cached_tokens"),
    )


class _ToolState:
    __slots__ = ("id", "name", "arguments")

    def __init__(self, id: str, name: str) -> None:
        self.id, self.name, self.arguments = id, name, []


class StreamDecoder(Decoder):
    """Feed it each SSE event (or its `data:` payload); it yields canonical events."""

    def __init__(self, provider: str = "openai", secrets: tuple[str, ...] = ()) -> None:
        self.provider = provider
        self.secrets = secrets
        self.metadata_sent = False
        self.text_id: str | None = None
        self.reasoning_id: str | None = None
        self.blocks = 0
        self.think = ThinkSplitter()
        self.tools: dict[int, _ToolState] = {}
        self.usage: dict | None = None
        self.citations: list | None = None
        self.search_results: list | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.answered = False  # a choice came at all

    @property
    def finished(self) -> bool:
        """True once the upstream said it was done ([DONE] or a finish_reason)."""
        return self.done or self.finish_reason is not None

    # -- input ------------------------------------------------------------

    def feed(self, data: Any) -> Iterator[Event]:
        if not isinstance(data, str):
            data = data.data  # an sse.Event
        if data == "[DONE]":
            self.done = True
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                f"{self.provider} sent a malformed stream event: {redact(data[:200], self.secrets)!r}",
                code="malformed_stream", provider=self.provider,
            ) from None
        if not isinstance(chunk, dict):
            raise UpstreamError(f"{self.provider} sent a stream event that is not an object", code="malformed_stream",
                                provider=self.provider)
        yield from self.chunk(chunk, "delta")

    def chunk(self, chunk: dict, field: str) -> Iterator[Event]:
        """One chunk (or a whole non-streaming body with field="message")."""
        if not self.metadata_sent:
            self.metadata_sent = True
            yield ResponseMetadata(chunk.get("id"), chunk.get("model"), chunk.get("created"))
        error = chunk.get("error")
        if error:
            yield Error(inband_error(error, self.provider, self.secrets))
            return
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        if chunk.get("citations"):
            self.citations = chunk["citations"]
        if chunk.get("search_results"):
            self.search_results = chunk["search_results"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                raise UpstreamError(f"{self.provider} sent a choice that is not an object", code="malformed_stream",
                                    provider=self.provider)
            self.answered = True
            if choice.get("index", 0) != 0:
                continue  # n > 1 is not supported: the first choice is the answer
            delta = choice.get(field) or {}
            yield from self._delta(delta)
            reason = choice.get("finish_reason")
            if reason:
                if reason == "error":
                    yield Error(UpstreamError(f"{self.provider} ended the answer with an error",
                                              code="upstream_error", provider=self.provider))
                    return
                self.finish_reason = reason

    def _delta(self, delta: dict) -> Iterator[Event]:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if not reasoning and delta.get("reasoning_details"):
            reasoning = "".join(
                str(item.get("text") or item.get("summary") or "")
                for item in delta["reasoning_details"] if isinstance(item, dict)
            )
        if reasoning and isinstance(reasoning, str):
            yield from self._reasoning(reasoning)
        content = delta.get("content")
        if content and isinstance(content, str):
            for kind, piece in self.think.feed(content):
                yield from (self._reasoning(piece) if kind == "reasoning" else self._text(piece))
        refusal = delta.get("refusal")
        if refusal and isinstance(refusal, str):
            yield from self._text(refusal)
        for position, call in enumerate(delta.get("tool_calls") or ()):
            yield from self._tool(position, call)
        for image in delta.get("images") or ():
            url = (image.get("image_url") or {}).get("url") if isinstance(image, dict) else None
            if url:
                media_type = url[5:].split(";", 1)[0] if url.startswith("data:") else "image/png"
                yield File(media_type or "image/png", url)

    # -- blocks -------------------------------------------------------------

    def _next_id(self, prefix: str) -> str:
        self.blocks += 1
        return f"{prefix}-{self.blocks}"

    def _reasoning(self, text: str) -> Iterator[Event]:
        if self.text_id is not None:
            yield from self._end_text()
        if self.reasoning_id is None:
            self.reasoning_id = self._next_id("reasoning")
            yield ReasoningStart(self.reasoning_id)
        yield ReasoningDelta(self.reasoning_id, text)

    def _text(self, text: str) -> Iterator[Event]:
        if self.reasoning_id is not None:
            yield from self._end_reasoning()
        if self.text_id is None:
            self.text_id = self._next_id("text")
            yield TextStart(self.text_id)
        yield TextDelta(self.text_id, text)

    def _end_text(self) -> Iterator[Event]:
        yield TextEnd(self.text_id)
        self.text_id = None

    def _end_reasoning(self) -> Iterator[Event]:
        yield ReasoningEnd(self.reasoning_id)
        self.reasoning_id = None

    def _tool(self, position: int, call: dict) -> Iterator[Event]:
        index = call.get("index", position)
        function = call.get("function") or {}
        arguments = function.get("arguments")
        state = self.tools.get(index)
        if state is None:
            yield from self._close_blocks()
            state = _ToolState(call.get("id") or f"call_{index}", function.get("name") or "")
            self.tools[index] = state
            yield ToolInputStart(state.id, state.name)
        if isinstance(arguments, dict):  # some servers send an object, not JSON text
            arguments = orjson.dumps(arguments).decode()
        if arguments:
            state.arguments.append(arguments)
            yield ToolInputDelta(state.id, arguments)

    def _close_blocks(self) -> Iterator[Event]:
        for kind, piece in self.think.flush():
            yield from (self._reasoning(piece) if kind == "reasoning" else self._text(piece))
        if self.reasoning_id is not None:
            yield from self._end_reasoning()
        if self.text_id is not None:
            yield from self._end_text()

    # -- end ------------------------------------------------------------------

    def end(self) -> Iterator[Event]:
        return self.finish()

    def whole(self, body: bytes) -> list[Event]:
        return decode_response(body, self.provider, self.secrets)

    def finish(self) -> Iterator[Event]:
        """Closing events once the upstream ended; raises if it was cut short."""
        if not self.finished:
            raise UpstreamError(
                f"{self.provider} ended the stream without [DONE] or a finish_reason (truncated)",
                code="stream_incomplete", provider=self.provider,
            )
        if not self.answered:
            raise UpstreamError(f"{self.provider} ended the stream without sending any choice (no answer)",
                                code="empty_response", provider=self.provider)
        yield from self._close_blocks()
        for state in self.tools.values():
            yield ToolInputEnd(state.id)
            yield ToolCall(state.id, state.name, "".join(state.arguments) or "{}")
        if self.citations:
            titles = {r.get("url"): r.get("title") for r in self.search_results or () if isinstance(r, dict)}
            for number, url in enumerate(self.citations, 1):
                if isinstance(url, str):
                    yield Source(url, titles.get(url), str(number))
        if self.usage:
            yield decode_usage(self.usage)
        raw = self.finish_reason
        if raw is None:  # [DONE] without a finish_reason
            unified = "tool-calls" if self.tools else "stop"
        else:
            unified = FINISH_REASONS.get(raw, "other")
        yield Finish(unified, raw)


def decode_response(body: bytes, provider: str = "openai", secrets: tuple[str, ...] = ()) -> list[Event]:
    """A non-streaming body (leading blank lines allowed: DeepSeek sends them) as events."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"{provider} answered with a body that is not JSON", code="malformed_response",
                            provider=provider) from None
    if not isinstance(data, dict):
        raise UpstreamError(f"{provider} answered with JSON that is not an object", code="malformed_response",
                            provider=provider)
    if data.get("error"):
        raise inband_error(data["error"], provider, secrets)
    choices = data.get("choices")
    if not isinstance(choices, list) or not any(isinstance(c, dict) and isinstance(c.get("message"), dict)
                                                for c in choices):
        # A 200 without an answer (an empty object, a proxy's JSON) is a failure, never an empty success.
        raise UpstreamError(f"{provider} answered 200 with JSON that holds no choices[].message",
                            code="malformed_response", provider=provider)
    decoder = StreamDecoder(provider, secrets)
    events = list(decoder.chunk(data, "message"))
    for event in events:
        if isinstance(event, Error):
            raise event.error
    if decoder.finish_reason is None:
        decoder.done = True  # a complete body is complete even without finish_reason
    events.extend(decoder.finish())
    return events
