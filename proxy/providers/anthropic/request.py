"""Canonical ChatRequest -> Anthropic Messages API request body (pure).

    AnthropicProvider.open -> build_payload(request, route params) -> POST /v1/messages

What the API requires and OpenAI-style clients do not give
(docs/anthropic.md, "Request"): system messages lifted to the top-level
`system`; `max_tokens` always present; only `user` / `assistant` turns, with
consecutive same-role turns merged; tool results as `tool_result` blocks in a
user turn, first in its content; tool call arguments as JSON objects; images
as base64 or url sources; thinking blocks sent back with their signatures,
first in their assistant turn; temperature at most 1, and unset with thinking.
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from typing import Any, Mapping

import orjson

from ...canonical import ChatRequest, ImagePart, Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from ...errors import BadRequest

DEFAULT_MAX_TOKENS = 4096
# reasoning_effort -> thinking budget_tokens (the API's minimum is 1024)
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
MIN_THINKING_BUDGET = 1024
# Where a ReasoningPart / ReasoningEnd keeps what must round-trip unchanged.
METADATA_KEY = "anthropic"


def build_payload(
    request: ChatRequest, model: str, params: Mapping[str, Any] | None = None, stream: bool = True
) -> dict:
    """The JSON body for POST /v1/messages. `params` are the route's defaults
    (max_tokens, temperature, top_p, stop, reasoning_effort, thinking_budget,
    thinking); the request's own values win over them."""
    params = params or {}
    messages = build_messages(request.messages)
    max_tokens = _positive_int(request.max_tokens or params.get("max_tokens") or DEFAULT_MAX_TOKENS, "max_tokens")
    payload: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
    system = request.system_text
    if system:
        payload["system"] = system

    tool_choice = request.tool_choice if request.tool_choice is not None else params.get("tool_choice")
    thinking = thinking_config(request, params)
    if thinking is not None and (_forces_tool(tool_choice) or (messages and messages[-1]["role"] == "assistant")):
        # The API rejects thinking with a forced tool or an assistant prefill;
        # both are explicit client contracts, thinking is optional: drop it.
        thinking = None
    if thinking is not None:
        payload["thinking"] = thinking
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int):
            # max_tokens counts thinking too: keep the client's limit for the answer.
            payload["max_tokens"] = max_tokens + budget

    temperature = request.temperature if request.temperature is not None else params.get("temperature")
    top_p = request.top_p if request.top_p is not None else params.get("top_p")
    if thinking is None:
        if temperature is not None:
            # OpenAI's range is 0-2, Anthropic's 0-1 (values above 1 are a 400).
            payload["temperature"] = min(max(float(temperature), 0.0), 1.0)
        if top_p is not None:
            payload["top_p"] = float(top_p)
    elif top_p is not None:
        # With thinking the API accepts top_p only in 0.95-1; temperature must be unset.
        payload["top_p"] = min(max(float(top_p), 0.95), 1.0)

    stop = request.stop or params.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    if stop:
        payload["stop_sequences"] = list(stop)

    if request.tools:
        payload["tools"] = [build_tool(tool) for tool in request.tools]
        choice = build_tool_choice(tool_choice)
        if choice is not None:
            payload["tool_choice"] = choice
    if request.user:
        payload["metadata"] = {"user_id": request.user}
    if stream:
        payload["stream"] = True
    return payload


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"'{name}' must be a positive integer, got {value!r}", param=name)
    return value


def _forces_tool(tool_choice: Any) -> bool:
    return tool_choice == "required" or isinstance(tool_choice, dict)


def thinking_config(request: ChatRequest, params: Mapping[str, Any]) -> dict | None:
    """The `thinking` object, or None. From the request's reasoning_effort,
    else the route's `thinking` (passed through), `thinking_budget` or
    `reasoning_effort`."""
    effort = request.reasoning_effort
    if effort is None:
        if isinstance(params.get("thinking"), Mapping):
            return dict(params["thinking"])
        if params.get("thinking_budget"):
            budget = _positive_int(params["thinking_budget"], "thinking_budget")
            return {"type": "enabled", "budget_tokens": max(budget, MIN_THINKING_BUDGET)}
        effort = params.get("reasoning_effort")
    if effort is None or effort == "none":
        return None
    budget = THINKING_BUDGETS.get(effort)
    if budget is None:
        raise BadRequest(
            f"'reasoning_effort' must be one of none, {', '.join(THINKING_BUDGETS)}; got {effort!r}",
            param="reasoning_effort",
        )
    return {"type": "enabled", "budget_tokens": budget}


def build_tool(tool) -> dict:
    entry = {"name": tool.name, "input_schema": dict(tool.parameters or {"type": "object", "properties": {}})}
    if tool.description:
        entry["description"] = tool.description
    return entry


def build_tool_choice(choice: Any) -> dict | None:
    if choice is None or choice == "auto":
        return {"type": "auto"} if choice == "auto" else None
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, Mapping) and isinstance(choice.get("name"), str):
        return {"type": "tool", "name": choice["name"]}
    raise BadRequest(
        f"'tool_choice' must be 'auto', 'none', 'required' or a tool name, got {choice!r}", param="tool_choice"
    )


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


def build_messages(messages: list[Message]) -> list[dict]:
    """user/assistant turns with content blocks; same-role turns merged."""
    turns: list[dict] = []
    for index, message in enumerate(messages):
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"  # tool results go in a user turn
        blocks = [block for part in message.parts if (block := build_block(part, index)) is not None]
        if not blocks:
            continue  # the API rejects empty content
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        first = "tool_result" if turn["role"] == "user" else ("thinking", "redacted_thinking")
        content = turn["content"]
        # tool_result blocks must open their user turn; thinking blocks must
        # open their assistant turn (and come before its tool_use blocks).
        if any(block["type"] in first for block in content):
            turn["content"] = [b for b in content if b["type"] in first] + [b for b in content if b["type"] not in first]
    return turns


def build_block(part: Any, index: int) -> dict | None:
    where = f"messages[{index}]"
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ImagePart):
        return build_image(part, where)
    if isinstance(part, ToolCallPart):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": parse_arguments(part, where)}
    if isinstance(part, ToolResultPart):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_call_id, "content": part.content}
        if part.is_error:
            block["is_error"] = True
        return block
    if isinstance(part, ReasoningPart):
        return build_thinking(part)
    raise BadRequest(f"{where} has a content part of type {getattr(part, 'type', part)!r} that Anthropic cannot take")


def build_image(part: ImagePart, where: str) -> dict:
    if part.is_data_url:
        try:
            media_type, data = part.data()
        except ValueError as error:
            raise BadRequest(f"{where}: image data URL is not usable ({error}); send data:image/png;base64,...") from None
        return {"type": "image", "source": {"type": "base64", "media_type": part.media_type or media_type, "data": data}}
    if part.url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    raise BadRequest(f"{where}: an image must be an https:// URL or a base64 data: URL")


def parse_arguments(part: ToolCallPart, where: str) -> dict:
    """Tool call arguments are JSON text in canonical form, an object here."""
    if not part.arguments or not part.arguments.strip():
        return {}
    try:
        value = orjson.loads(part.arguments)
    except orjson.JSONDecodeError:
        raise BadRequest(f"{where}: the arguments of tool call {part.id!r} are not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: the arguments of tool call {part.id!r} must be a JSON object")
    return value


def build_thinking(part: ReasoningPart) -> dict | None:
    """Earlier thinking goes back only with its signature (or as redacted
    data): the API verifies it, and thinking from another provider has none."""
    metadata = (part.provider_metadata or {}).get(METADATA_KEY) or {}
    if metadata.get("redactedData"):
        return {"type": "redacted_thinking", "data": metadata["redactedData"]}
    if metadata.get("signature"):
        return {"type": "thinking", "thinking": part.text, "signature": metadata["signature"]}
    return None
