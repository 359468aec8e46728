"""Canonical events -> UI message stream chunks (protocol v1) -> SSE frames.

    guarded events -> chunks(events, message_id, metadata) -> dicts
                   -> frame(chunk) -> b"data: {...}\\n\\n" ... b"data: [DONE]\\n\\n"

The client (`processUIMessageStream` in the `ai` package) validates every
chunk and enforces the order: a `text-delta` needs an open `text-start` with
its id, ids are never reused, tool input starts before its deltas. So the
encoder owns the ids (providers' block ids may repeat across blocks), opens a
block a provider forgot to open, closes open blocks before the step ends,
and ends with exactly one of `finish` or `error` followed by `[DONE]`.
A stream that fails after the first byte ends with `error` and no `finish`:
the client's chat then shows an error instead of a complete answer.
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Iterator

from ... import sse
from ...canonical import Event, PlanStep
from ...errors import ProxyError, UpstreamError

# What the SDK's own server helpers send (UI_MESSAGE_STREAM_HEADERS), less
# `Connection`: a hop-by-hop header a WSGI application may not set.
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "x-vercel-ai-ui-message-stream": "v1",
}
TEXT_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

# canonical finish reason -> the client's; they share the vocabulary
FINISH_REASONS = {"stop", "length", "content-filter", "tool-calls", "error", "other"}

# data parts the client replaces in place: one id per message is enough
PLAN_ID = "plan"
TODO_ID = "todo"


def error_body(error: ProxyError) -> dict:
    """The JSON of a non-2xx answer before the stream: the client turns the
    whole body text into the chat's error, so it leads with the message."""
    return {"error": error.to_dict()}


def error_text(error: ProxyError) -> str:
    return f"{error.message} ({error.code})" if error.code else error.message


def error_chunk(error: ProxyError) -> dict:
    return {"type": "error", "errorText": error_text(error)}


def frame(chunk: dict) -> bytes:
    return sse.encode_json(chunk)


def _steps(steps: Iterable[PlanStep]) -> list[dict]:
    return [{"id": step.id, "title": step.title, "status": step.status} for step in steps]


def _json_input(text: str) -> Any:
    """Tool input goes to the client as JSON; text that does not parse stays text."""
    if not text or not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return text


def usage_metadata(usage: Any) -> dict:
    data = {"inputTokens": usage.input_tokens, "outputTokens": usage.output_tokens,
            "totalTokens": usage.total_tokens}
    if usage.reasoning_tokens is not None:
        data["reasoningTokens"] = usage.reasoning_tokens
    if usage.cached_input_tokens is not None:
        data["cachedInputTokens"] = usage.cached_input_tokens
    return data


def chunks(events: Iterable[Event], message_id: str, metadata: dict | None = None,
           client_tools: Iterable[str] = ()) -> Iterator[dict]:
    """UI message chunks for one assistant message.

    `metadata` goes out on `start` (the resolved model and preset); usage is
    added on `finish`. Tools the client declared (`client_tools`) come out as
    static `tool-<name>` parts; any other tool as a `dynamic-tool` part.
    """
    client_tools = frozenset(client_tools)
    start: dict = {"type": "start", "messageId": message_id}
    if metadata is not None:
        start["messageMetadata"] = metadata
    yield start
    yield {"type": "start-step"}
    open_blocks: dict[tuple[str, str], str] = {}  # (kind, canonical id) -> ui id
    counters = {"text": 0, "reasoning": 0, "source": 0}
    tools_started: set[str] = set()
    todo: dict[str, dict] = {}
    usage = None

    def open_block(kind: str, canonical_id: str, provider_metadata=None) -> Iterator[dict]:
        ui_id = f"{kind[0]}{counters[kind]}"
        counters[kind] += 1
        open_blocks[(kind, canonical_id)] = ui_id
        chunk = {"type": f"{kind}-start", "id": ui_id}
        if provider_metadata:
            chunk["providerMetadata"] = dict(provider_metadata)
        yield chunk

    def close_all() -> Iterator[dict]:
        for (kind, _), ui_id in list(open_blocks.items()):
            yield {"type": f"{kind}-end", "id": ui_id}
        open_blocks.clear()

    def tool_flag(name: str) -> dict:
        return {} if name in client_tools else {"dynamic": True}

    for event in events:
        kind = event.type
        if kind == "text-delta" or kind == "reasoning-delta":  # the hot path: most events are deltas
            block = "text" if kind == "text-delta" else "reasoning"
            ui_id = open_blocks.get((block, event.id))
            if ui_id is None:
                yield from open_block(block, event.id)
                ui_id = open_blocks[(block, event.id)]
            if event.delta:
                yield {"type": kind, "id": ui_id, "delta": event.delta}
        elif kind == "text-start":
            if ("text", event.id) not in open_blocks:
                yield from open_block("text", event.id)
        elif kind == "reasoning-start":
            if ("reasoning", event.id) not in open_blocks:
                yield from open_block("reasoning", event.id, event.provider_metadata)
        elif kind == "text-end" or kind == "reasoning-end":
            block = kind.split("-")[0]
            ui_id = open_blocks.pop((block, event.id), None)
            if ui_id is None:
                continue
            chunk = {"type": f"{block}-end", "id": ui_id}
            if getattr(event, "provider_metadata", None):
                chunk["providerMetadata"] = dict(event.provider_metadata)
            yield chunk
        elif kind == "tool-input-start":
            tools_started.add(event.id)
            yield {"type": "tool-input-start", "toolCallId": event.id, "toolName": event.name, **tool_flag(event.name)}
        elif kind == "tool-input-delta":
            if event.id in tools_started and event.delta:
                yield {"type": "tool-input-delta", "toolCallId": event.id, "inputTextDelta": event.delta}
        elif kind == "tool-call":
            chunk = {"type": "tool-input-available", "toolCallId": event.id, "toolName": event.name,
                     "input": _json_input(event.input), **tool_flag(event.name)}
            if event.provider_metadata:
                chunk["providerMetadata"] = dict(event.provider_metadata)
            yield chunk
        elif kind == "file":
            yield {"type": "file", "url": event.url, "mediaType": event.media_type}
        elif kind == "source":
            source_id = event.id or f"s{counters['source']}"
            counters["source"] += 1
            chunk = {"type": "source-url", "sourceId": source_id, "url": event.url}
            if event.title:
                chunk["title"] = event.title
            yield chunk
        elif kind == "plan-update":
            yield {"type": f"data-{PLAN_ID}", "id": PLAN_ID,
                   "data": {"currentTaskId": event.current_task_id, "steps": _steps(event.steps)}}
        elif kind == "todo-update":
            # Each data-todo replaces the last one: send the whole list so far.
            for item in _steps(event.items):
                todo[item["id"]] = item
            yield {"type": f"data-{TODO_ID}", "id": TODO_ID, "data": {"items": list(todo.values())}}
        elif kind == "usage":
            usage = event
        elif kind == "finish":
            yield from close_all()
            yield {"type": "finish-step"}
            reason = event.unified if event.unified in FINISH_REASONS else "other"
            finish: dict = {"type": "finish", "finishReason": reason}
            if usage is not None:
                finish["messageMetadata"] = {"usage": usage_metadata(usage)}
            yield finish
            return
        elif kind == "error":
            yield error_chunk(event.error)
            return
    # Only an unguarded stream gets here: it was cut short.
    yield error_chunk(UpstreamError("the upstream stream ended before it finished", code="stream_incomplete"))


def encode_stream(events: Iterable[Event], message_id: str, metadata: dict | None = None,
                  client_tools: Iterable[str] = ()) -> Iterator[bytes]:
    """SSE frames of the UI message stream, ending with `data: [DONE]`."""
    for chunk in chunks(events, message_id, metadata, client_tools):
        yield frame(chunk)
    yield sse.DONE
