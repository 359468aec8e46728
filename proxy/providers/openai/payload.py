"""Canonical ChatRequest -> Chat Completions request body (docs/openai.md, "Request shaping").

    OpenAIProvider.open() -> build_payload(request, upstream_model, ...) -> JSON body

Pure: no IO. Per-server shaping: api.openai.com gets `max_completion_tokens`
(and no sampling parameters for reasoning models, which reject them);
OpenAI-compatible servers get `max_tokens`, the field they still read.
Reasoning from earlier turns is not sent back (DeepSeek rejects it).
"""
from __future__ import annotations

from typing import Any

from ...canonical import ChatRequest, ImagePart, Message, TextPart, Tool, ToolCallPart, ToolResultPart

# OpenAI reasoning models reject non-default temperature/top_p.
REASONING_MODEL_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def is_reasoning_model(model: str) -> bool:
    return model.startswith(REASONING_MODEL_PREFIXES)


def build_payload(request: ChatRequest, upstream_model: str, *, official: bool, stream: bool) -> dict[str, Any]:
    """The request body. `official` is True when the upstream is api.openai.com."""
    payload: dict[str, Any] = {"model": upstream_model, "messages": encode_messages(request.messages)}
    if request.tools:
        payload["tools"] = [encode_tool(tool) for tool in request.tools]
    if request.tool_choice is not None:
        payload["tool_choice"] = encode_tool_choice(request.tool_choice)
    reasoning = official and is_reasoning_model(upstream_model)
    if request.temperature is not None and not reasoning:
        payload["temperature"] = request.temperature
    if request.top_p is not None and not reasoning:
        payload["top_p"] = request.top_p
    if request.max_tokens is not None:
        payload["max_completion_tokens" if official else "max_tokens"] = request.max_tokens
    if request.stop:
        payload["stop"] = list(request.stop)
    if request.response_format is not None:
        payload["response_format"] = dict(request.response_format)
    if request.reasoning_effort is not None:
        payload["reasoning_effort"] = request.reasoning_effort
    if request.user is not None:
        payload["user"] = request.user
    for name, value in request.extra.items():  # pass-through fields the client asked for
        payload.setdefault(name, value)
    payload["stream"] = stream
    if stream:
        # Without it OpenAI, Ollama and vLLM send no usage at all.
        options = dict(payload.get("stream_options") or {})
        options["include_usage"] = True
        payload["stream_options"] = options
    else:
        payload.pop("stream_options", None)
    return payload


def encode_messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        results = [part for part in message.parts if isinstance(part, ToolResultPart)]
        if results:
            # Each tool result is its own `tool` message.
            out.extend({"role": "tool", "tool_call_id": r.tool_call_id, "content": r.content} for r in results)
            rest = tuple(part for part in message.parts if not isinstance(part, ToolResultPart))
            if not rest:
                continue
            message = Message("user" if message.role == "tool" else message.role, rest)
        if message.role == "assistant":
            out.append(encode_assistant(message))
        elif message.role == "system":
            out.append({"role": "system", "content": message.text})
        else:
            out.append({"role": message.role, "content": encode_content(message)})
    return out


def encode_content(message: Message) -> str | list[dict[str, Any]]:
    if message.is_text_only:
        return message.text
    parts: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            image: dict[str, Any] = {"url": part.url}
            if part.detail:
                image["detail"] = part.detail
            parts.append({"type": "image_url", "image_url": image})
    return parts


def encode_assistant(message: Message) -> dict[str, Any]:
    text = message.text
    calls = [part for part in message.parts if isinstance(part, ToolCallPart)]
    encoded: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        encoded["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments or "{}"}}
            for call in calls
        ]
    return encoded


def encode_tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": dict(tool.parameters)}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def encode_tool_choice(choice: str | dict) -> str | dict:
    if isinstance(choice, dict):
        return {"type": "function", "function": {"name": choice["name"]}}
    return choice
