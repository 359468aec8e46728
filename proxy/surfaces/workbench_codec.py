"""The AI Workbench "Proxy GPT" codec (docs/workbench.md): pure functions.

    POST /api/chat body -> decode_request -> ChatRequest
    canonical events -> encode_stream -> SSE frames
    canonical events -> socket_messages -> (event name, payload) for Socket.IO

Text goes out as `data: {"content"}`, reasoning as `event: thinking`, agent
progress as `event: plan_update` / `event: todo_update`. Generated images
become Markdown images in the content (what the example server streams).
Errors after the first byte become a visible content fragment plus an
`event: error`, and every stream ends with `data: [DONE]`.
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from .. import sse
from ..canonical import ChatRequest, Event, PlanStep
from ..errors import ProxyError
from .markdown import file_markdown, sources_markdown
from .messages import decode_model, decode_simple_messages, require_messages, require_object


def decode_request(body: Any, default_model: str, server_url: str | None = None) -> ChatRequest:
    body = require_object(body)
    messages = decode_simple_messages(require_messages(body))
    return ChatRequest(model=decode_model(body, default_model), messages=messages, stream=True, server_url=server_url)


def decode(body: Any, headers: Any, context: Any) -> ChatRequest:
    """The chat runner's entry: headers carry nothing the Workbench reads."""
    return decode_request(body, context.default_model, context.server_url)


def error_body(error: ProxyError) -> dict:
    return {"error": error.to_dict()}


def _steps(steps: Iterable[PlanStep]) -> list[dict]:
    return [{"id": step.id, "status": step.status, "title": step.title} for step in steps]


def error_text_of(payload: dict) -> str:
    return f"\n\n[Error: {payload['message']}]"


def messages(events: Iterable[Event]) -> Iterator[tuple[str, dict | None]]:
    """(Workbench event name, payload) for each event that shows: the one
    mapping both the SSE and the Socket.IO transports use. Ends with
    ("complete", None) or ("error", {"message", "code"})."""
    sources = []
    for event in events:
        kind = event.type
        if kind == "text-delta":
            yield "content", {"content": event.delta}
        elif kind == "reasoning-delta":
            yield "thinking", {"content": event.delta}
        elif kind == "plan-update":
            yield "plan_update", {"current_task_id": event.current_task_id, "steps": _steps(event.steps)}
        elif kind == "todo-update":
            yield "todo_update", {"items": _steps(event.items)}
        elif kind == "file":
            yield "content", {"content": file_markdown(event.media_type, event.url)}
        elif kind == "source":
            sources.append(event)
        elif kind == "finish":
            if sources:
                yield "content", {"content": sources_markdown(sources)}
            yield "complete", None
            return
        elif kind == "error":
            yield "error", {"message": event.error.message, "code": event.error.code}
            return


def encode_stream(events: Iterable[Event]) -> Iterator[bytes]:
    """SSE frames for /api/chat; always ends with `data: [DONE]`."""
    for name, payload in messages(events):
        if name == "content":
            yield sse.encode_json(payload)
        elif name == "complete":
            break
        elif name == "error":
            # The UI is only known to render content, so the error is also
            # shown there (docs/workbench.md, "Errors").
            yield sse.encode_json({"content": error_text_of(payload)})
            yield sse.encode_json(payload, "error")
            break
        else:
            yield sse.encode_json(payload, name)
    yield sse.DONE
