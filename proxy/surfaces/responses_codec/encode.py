"""Encoding canonical events as Open Responses streaming events and objects: pure.

    events -> stream_events(events, state) -> event dicts with type + sequence_number
           -> encode_stream (SSE: `event: <type>` + one `data:` line, then `data: [DONE]`)
           -> or the WebSocket emitter (one JSON message per event)
    ChatResult -> encode_result(result, state) -> the Response object

Every stream starts with `response.created` and `response.in_progress` and
ends in exactly one of `response.completed`, `response.incomplete` (a length
or content-filter stop: open items closed as incomplete) or `response.failed`
(carrying the error, after an `error` event on SSE). Each text block is a
message item with one `output_text` part, each reasoning block a reasoning
item with one `reasoning_text` part, each tool call a function_call item.

A tool call's provider_metadata (a Gemini thought signature its call id
could not carry) rides packed in the function_call item's extension field
`switchboard:provider_metadata`.

Reasoning deltas are named by the current spec (`response.reasoning.delta`
/ `.done`) unless the deployment picks OpenAI's names
(`response.reasoning_text.delta` / `.done`); one stream never uses both.
`ResponseState.on_terminal` is called with the final Response object before
the terminal event is yielded: the surface stores it there, so a client that
has seen `response.completed` can continue from it at once.
"""
from __future__ import annotations

import secrets
import time
from typing import Any, Callable, Iterable, Iterator

import orjson

from ...canonical import ChatResult, Event, ReasoningPart, TextPart, ToolCallPart, Usage
from ...errors import ProxyError
from . import opaque
from .decode import ResponseOptions, new_item_id

REASONING_NAMINGS = ("reasoning", "reasoning_text")
DONE = b"data: [DONE]\n\n"


def new_response_id() -> str:
    return f"resp_{secrets.token_hex(24)}"


def error_body(error: ProxyError) -> dict:
    """The Responses (= OpenAI) error body: {"error": {message, type, param, code}}."""
    return {"error": error.to_dict()}


def usage_object(usage: Usage | None) -> dict | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_input_tokens or 0},
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
    }


class ResponseState:
    """One response being produced: its id, the echoed options, its items."""

    __slots__ = ("id", "options", "created_at", "model", "output", "status", "error", "incomplete_details",
                 "usage", "completed_at", "reasoning_naming", "on_terminal", "final")

    def __init__(self, options: ResponseOptions, model: str | None = None, response_id: str | None = None,
                 created_at: int | None = None, reasoning_naming: str = "reasoning",
                 on_terminal: Callable[[dict], None] | None = None) -> None:
        if reasoning_naming not in REASONING_NAMINGS:
            raise ValueError(f"reasoning naming must be one of {REASONING_NAMINGS}, got {reasoning_naming!r}")
        self.id = response_id or new_response_id()
        self.options = options
        self.created_at = int(time.time()) if created_at is None else created_at
        self.model = model or options.model
        self.output: list[dict] = []
        self.status = "in_progress"
        self.error: dict | None = None
        self.incomplete_details: dict | None = None
        self.usage: dict | None = None
        self.completed_at: int | None = None
        self.reasoning_naming = reasoning_naming
        self.on_terminal = on_terminal
        self.final: dict | None = None  # the terminal Response object, once there is one

    def response(self) -> dict:
        """The Response object now: every key of the spec, nulls included."""
        o = self.options
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "status": self.status,
            "incomplete_details": self.incomplete_details,
            "model": self.model,
            "previous_response_id": o.previous_response_id,
            "instructions": o.instructions,
            "output": list(self.output),
            "error": self.error,
            "tools": list(o.tools),
            "tool_choice": o.tool_choice,
            "truncation": o.truncation,
            "parallel_tool_calls": o.parallel_tool_calls,
            "text": dict(o.text),
            "top_p": o.top_p,
            "presence_penalty": o.presence_penalty,
            "frequency_penalty": o.frequency_penalty,
            "top_logprobs": o.top_logprobs,
            "temperature": o.temperature,
            "reasoning": dict(o.reasoning) if o.reasoning is not None else {"effort": None, "summary": None},
            "usage": self.usage,
            "max_output_tokens": o.max_output_tokens,
            "max_tool_calls": o.max_tool_calls,
            "store": o.store,
            "background": o.background,
            "service_tier": o.service_tier,
            "metadata": dict(o.metadata),
            "safety_identifier": o.safety_identifier,
            "prompt_cache_key": o.prompt_cache_key,
        }

    def finish(self, status: str, *, error: ProxyError | None = None, reason: str | None = None) -> dict:
        """Set the terminal status and return the final Response object."""
        self.status = status
        if error is not None:
            self.error = {"code": error.code or "server_error", "message": error.message}
        if reason is not None:
            self.incomplete_details = {"reason": reason}
        self.completed_at = int(time.time()) if status == "completed" else None
        self.final = self.response()
        on_terminal, self.on_terminal = self.on_terminal, None  # once; and no cycle through its owner after
        if on_terminal is not None:
            on_terminal(self.final)
        return self.final


# -- items ---------------------------------------------------------------------


def _text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, text: str | None, status: str) -> dict:
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": [] if text is None else [_text_part(text)]}


def reasoning_item(item_id: str, text: str | None, metadata, status: str) -> dict:
    return {"type": "reasoning", "id": item_id, "status": status, "summary": [],
            "content": [] if text is None else [{"type": "reasoning_text", "text": text}],
            "encrypted_content": opaque.encrypted_from_metadata(metadata)}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str, metadata=None) -> dict:
    item = {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}
    if metadata:  # e.g. a Gemini thought signature the call id could not carry
        item[opaque.CALL_METADATA] = opaque.pack(metadata)
    return item


def output_items(result: ChatResult, status: str = "completed") -> list[dict]:
    """The output items of a folded stream (non-streaming answers, and what a
    cut-short stream produced)."""
    items: list[dict] = []
    for part in result.parts:
        if isinstance(part, TextPart):
            items.append(message_item(new_item_id("message"), part.text, status))
        elif isinstance(part, ReasoningPart):
            items.append(reasoning_item(new_item_id("reasoning"), part.text, part.provider_metadata, status))
        elif isinstance(part, ToolCallPart):
            items.append(function_call_item(new_item_id("function_call"), part.id, part.name, part.arguments, status,
                                            part.provider_metadata))
    if result.files:
        markdown = "\n".join(f"![{f.media_type}]({f.url})" for f in result.files)
        items.append(message_item(new_item_id("message"), markdown, status))
    return items


def _terminal_of(result: ChatResult) -> tuple[str, str | None]:
    unified = result.finish.unified if result.finish is not None else "other"
    if unified == "length":
        return "incomplete", "max_output_tokens"
    if unified == "content-filter":
        return "incomplete", "content_filter"
    return "completed", None


def encode_result(result: ChatResult, state: ResponseState) -> dict:
    """The Response object of a finished non-streaming answer."""
    status, reason = _terminal_of(result)
    state.output = output_items(result, "completed" if status == "completed" else "incomplete")
    state.usage = usage_object(result.usage)
    return state.finish(status, reason=reason)


def incomplete_response(result: ChatResult, state: ResponseState, reason: str = "cancelled") -> dict:
    """What a stream cut short by the client produced, marked incomplete."""
    if not state.output:
        state.output = output_items(result, "incomplete")
    state.usage = usage_object(result.usage)
    return state.finish("incomplete", reason=reason)


def failed_response(state: ResponseState, error: ProxyError) -> dict:
    return state.finish("failed", error=error)


# -- streaming -------------------------------------------------------------------


def stream_events(events: Iterable[Event], state: ResponseState, error_event: bool = True) -> Iterator[dict]:
    """The streaming events for a canonical event stream, numbered from 0.

    `error_event=False` leaves out the `error` event before `response.failed`
    (the WebSocket transport: its clients end a turn at any `error` message).
    The canonical stream is closed once the terminal event is out, so what
    taps it (the runner's recorders) learns at once that it is over."""
    iterator = iter(events)
    try:
        yield from _stream_events(iterator, state, error_event)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def _stream_events(events: Iterator[Event], state: ResponseState, error_event: bool) -> Iterator[dict]:
    sequence = 0
    output = state.output
    reasoning_prefix = "response.reasoning_text." if state.reasoning_naming == "reasoning_text" else "response.reasoning."
    reasoning_delta, reasoning_done = reasoning_prefix + "delta", reasoning_prefix + "done"
    # The open items: (kind, item dict, output index, accumulated text fragments)
    text_item: list | None = None
    reasoning: list | None = None
    calls: dict[str, list] = {}  # call id -> [item, index, fragments]

    def event(kind: str, **fields: Any) -> dict:
        nonlocal sequence
        head = {"type": kind, "sequence_number": sequence}
        sequence += 1
        head.update(fields)
        return head

    def open_item(item: dict) -> tuple[dict, int]:
        index = len(output)
        output.append(item)
        return event("response.output_item.added", output_index=index, item=dict(item, content=[]) if "content" in item else dict(item)), index

    def close_text(status: str) -> Iterator[dict]:
        nonlocal text_item
        item, index, fragments = text_item
        text_item = None
        text = "".join(fragments)
        part = _text_part(text)
        item_id = item["id"]
        yield event("response.output_text.done", item_id=item_id, output_index=index, content_index=0, text=text,
                    logprobs=[])
        yield event("response.content_part.done", item_id=item_id, output_index=index, content_index=0, part=part)
        final = message_item(item_id, text, status)
        output[index] = final
        yield event("response.output_item.done", output_index=index, item=final)

    def close_reasoning(status: str, metadata=None) -> Iterator[dict]:
        nonlocal reasoning
        item, index, fragments, opened_metadata = reasoning
        reasoning = None
        text = "".join(fragments)
        item_id = item["id"]
        yield event(reasoning_done, item_id=item_id, output_index=index, content_index=0, text=text)
        yield event("response.content_part.done", item_id=item_id, output_index=index, content_index=0,
                    part={"type": "reasoning_text", "text": text})
        final = reasoning_item(item_id, text, metadata or opened_metadata, status)
        output[index] = final
        yield event("response.output_item.done", output_index=index, item=final)

    def open_text() -> Iterator[dict]:
        nonlocal text_item
        item = message_item(new_item_id("message"), None, "in_progress")
        added, index = open_item(item)
        yield added
        yield event("response.content_part.added", item_id=item["id"], output_index=index, content_index=0,
                    part=_text_part(""))
        text_item = [item, index, []]

    def open_reasoning(metadata) -> Iterator[dict]:
        nonlocal reasoning
        item = reasoning_item(new_item_id("reasoning"), None, None, "in_progress")
        added, index = open_item(item)
        yield added
        yield event("response.content_part.added", item_id=item["id"], output_index=index, content_index=0,
                    part={"type": "reasoning_text", "text": ""})
        reasoning = [item, index, [], metadata]

    def open_call(call_id: str, name: str) -> Iterator[dict]:
        item = function_call_item(new_item_id("function_call"), call_id, name, "", "in_progress")
        added, index = open_item(item)
        calls[call_id] = [item, index, []]
        yield added

    def close_all(status: str) -> Iterator[dict]:
        if text_item is not None:
            yield from close_text(status)
        if reasoning is not None:
            yield from close_reasoning(status)
        for call_id in list(calls):
            item, index, fragments = calls.pop(call_id)
            arguments = "".join(fragments)
            yield event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                        arguments=arguments)
            final = function_call_item(item["id"], call_id, item["name"], arguments, status)
            output[index] = final
            yield event("response.output_item.done", output_index=index, item=final)

    yield event("response.created", response=state.response())
    yield event("response.in_progress", response=state.response())
    for item in events:
        kind = item.type
        if kind == "text-delta":
            if text_item is None:
                if reasoning is not None:
                    yield from close_reasoning("completed")
                yield from open_text()
            text_item[2].append(item.delta)
            yield event("response.output_text.delta", item_id=text_item[0]["id"], output_index=text_item[1],
                        content_index=0, delta=item.delta, logprobs=[])
        elif kind == "reasoning-delta":
            if reasoning is None:
                if text_item is not None:
                    yield from close_text("completed")
                yield from open_reasoning(None)
            reasoning[2].append(item.delta)
            yield event(reasoning_delta, item_id=reasoning[0]["id"], output_index=reasoning[1], content_index=0,
                        delta=item.delta)
        elif kind == "text-start":
            if text_item is not None:
                yield from close_text("completed")
            if reasoning is not None:
                yield from close_reasoning("completed")
            yield from open_text()
        elif kind == "text-end":
            if text_item is not None:
                yield from close_text("completed")
        elif kind == "reasoning-start":
            if reasoning is not None:
                yield from close_reasoning("completed")
            if text_item is not None:
                yield from close_text("completed")
            yield from open_reasoning(item.provider_metadata)
        elif kind == "reasoning-end":
            if reasoning is None:
                if item.provider_metadata is None:
                    continue
                yield from open_reasoning(None)  # a signature with no text (Gemini): still an item
            yield from close_reasoning("completed", item.provider_metadata)
        elif kind == "tool-input-start":
            yield from open_call(item.id, item.name)
        elif kind == "tool-input-delta":
            call = calls.get(item.id)
            if call is not None:
                call[2].append(item.delta)
                yield event("response.function_call_arguments.delta", item_id=call[0]["id"], output_index=call[1],
                            delta=item.delta)
        elif kind == "tool-call":
            if text_item is not None:
                yield from close_text("completed")
            if reasoning is not None:
                yield from close_reasoning("completed")
            call = calls.pop(item.id, None)
            if call is None:
                yield from open_call(item.id, item.name)
                call = calls.pop(item.id)
                yield event("response.function_call_arguments.delta", item_id=call[0]["id"], output_index=call[1],
                            delta=item.input)
            yield event("response.function_call_arguments.done", item_id=call[0]["id"], output_index=call[1],
                        arguments=item.input)
            final = function_call_item(call[0]["id"], item.id, item.name, item.input, "completed",
                                       item.provider_metadata)
            output[call[1]] = final
            yield event("response.output_item.done", output_index=call[1], item=final)
        elif kind == "file":
            if text_item is None:
                yield from open_text()
            markdown = f"\n![{item.media_type}]({item.url})\n"
            text_item[2].append(markdown)
            yield event("response.output_text.delta", item_id=text_item[0]["id"], output_index=text_item[1],
                        content_index=0, delta=markdown, logprobs=[])
        elif kind == "usage":
            state.usage = usage_object(item)
        elif kind == "response-metadata":
            pass  # the Response keeps the model the client asked for
        elif kind == "finish":
            status = "completed"
            reason = None
            if item.unified == "length":
                status, reason = "incomplete", "max_output_tokens"
            elif item.unified == "content-filter":
                status, reason = "incomplete", "content_filter"
            yield from close_all("completed" if status == "completed" else "incomplete")
            final = state.finish(status, reason=reason)
            yield event("response.completed" if status == "completed" else "response.incomplete", response=final)
            return
        elif kind == "error":
            error = item.error
            yield from close_all("incomplete")
            if error_event:
                yield event("error", error={"type": error.type, "code": error.code, "message": error.message,
                                            "param": error.param})
            yield event("response.failed", response=state.finish("failed", error=error))
            return


def frame(event: dict) -> bytes:
    """One SSE message: `event:` equal to `type`, one `data:` line, written whole."""
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def encode_stream(events: Iterable[Event], state: ResponseState) -> Iterator[bytes]:
    """SSE frames for a canonical event stream, ending with `data: [DONE]`."""
    for event in stream_events(events, state):
        yield frame(event)
    yield DONE
