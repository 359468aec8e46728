"""The store's serialisation: canonical parts and messages <-> JSON.

    StoredMessage -> message_to_json -> bytes (sqlite column, Redis list item)
    bytes -> message_from_json -> StoredMessage

A small explicit codec, one branch per part type (never pickle: stored data
must not be able to run code, and must survive refactors of the classes).
Also turns a finished or cut-short stream (`ChatResult`) into the assistant
message a conversation keeps. Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from typing import Any

import orjson

from ..canonical import ChatResult, ImagePart, Part, PlanUpdate, ReasoningPart, TextPart, ToolCallPart, ToolResultPart


def part_to_dict(part: Part) -> dict:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ReasoningPart):
        out: dict[str, Any] = {"type": "reasoning", "text": part.text}
        if part.provider_metadata is not None:
            out["provider_metadata"] = dict(part.provider_metadata)
        return out
    if isinstance(part, ImagePart):
        return {"type": "image", "url": part.url, "media_type": part.media_type, "detail": part.detail}
    if isinstance(part, ToolCallPart):
        out = {"type": "tool-call", "id": part.id, "name": part.name, "arguments": part.arguments}
        if part.provider_metadata is not None:
            out["provider_metadata"] = dict(part.provider_metadata)
        return out
    if isinstance(part, ToolResultPart):
        return {"type": "tool-result", "tool_call_id": part.tool_call_id, "content": part.content,
                "name": part.name, "is_error": part.is_error}
    raise TypeError(f"cannot store a part of type {type(part).__name__}")


def part_from_dict(data: dict) -> Part:
    kind = data.get("type")
    if kind == "text":
        return TextPart(data["text"])
    if kind == "reasoning":
        return ReasoningPart(data["text"], data.get("provider_metadata"))
    if kind == "image":
        return ImagePart(data["url"], data.get("media_type"), data.get("detail"))
    if kind == "tool-call":
        return ToolCallPart(data["id"], data["name"], data["arguments"], data.get("provider_metadata"))
    if kind == "tool-result":
        return ToolResultPart(data["tool_call_id"], data["content"], data.get("name"), bool(data.get("is_error")))
    raise ValueError(f"unknown stored part type {kind!r}")


def parts_to_json(parts) -> bytes:
    return orjson.dumps([part_to_dict(part) for part in parts])


def parts_from_json(data: bytes | str) -> tuple:
    return tuple(part_from_dict(item) for item in orjson.loads(data))


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(data: bytes | str | None, default: Any = None) -> Any:
    if data is None:
        return default
    return orjson.loads(data)


def plan_to_dict(plan: PlanUpdate) -> dict:
    return {"current_task_id": plan.current_task_id,
            "steps": [{"id": s.id, "title": s.title, "status": s.status} for s in plan.steps]}


def assistant_turn(result: ChatResult, completed: bool) -> tuple[tuple, str, dict]:
    """(parts, status, meta) of the assistant message a stream produced.

    Text, reasoning and tool calls are parts; the plan, files, sources, usage
    and how it ended go in meta. A stream that did not finish cleanly is
    "incomplete" and says why."""
    meta: dict[str, Any] = {}
    if result.model:
        meta["model"] = result.model
    if result.plan is not None:
        meta["plan"] = plan_to_dict(result.plan)
    if result.files:
        meta["files"] = [{"media_type": f.media_type, "url": f.url} for f in result.files]
    if result.sources:
        meta["sources"] = [{"url": s.url, "title": s.title} for s in result.sources]
    if result.usage is not None:
        meta["usage"] = {"input_tokens": result.usage.input_tokens, "output_tokens": result.usage.output_tokens}
    if result.finish is not None:
        meta["finish_reason"] = result.finish.unified
    if result.error is not None:
        meta["error"] = {"message": result.error.message, "code": result.error.code}
    status = "complete" if completed and result.complete else "incomplete"
    return tuple(result.parts), status, meta
