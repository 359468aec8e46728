"""Decoding a Chat Completions request (docs/openai-chat.md, "Requests"): pure.

    POST /v1/chat/completions body -> decode_request -> ChatRequest
    body + headers                 -> decode_options -> EncodeOptions (usage chunk, reasoning field)

Lenient where clients differ (unknown fields are ignored, `developer` is a
system message, reasoning sent back on assistant messages is kept, with its
signatures when it comes as `thinking_blocks`), strict
where a wrong value would silently change the answer: every BadRequest names
the field (`param`) to fix. Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ...canonical import (
    ChatRequest,
    Message,
    ReasoningPart,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from ...errors import BadRequest
from ..messages import decode_content, decode_model, require_messages, require_object
from ..route_hints import route_hints
from .thinking_blocks import FIELD as THINKING_BLOCKS
from .thinking_blocks import decode_thinking_blocks

THINKING_HEADER = "X-Switchboard-Thinking"
THINKING_MODES = ("reasoning_content", "reasoning", "workbench")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
# Fields with no canonical slot that providers may still honour.
PASS_THROUGH = ("parallel_tool_calls", "seed", "presence_penalty", "frequency_penalty", "logit_bias")


def decode_request(body: Any, default_model: str, server_url: str | None = None) -> ChatRequest:
    """The request body as a ChatRequest; BadRequest (with `param`) says what to fix."""
    body = require_object(body)
    n = body.get("n")
    if n is not None and n != 1:
        raise BadRequest(f"'n' must be 1: Switchboard returns one choice per request, got {n!r}", param="n")
    tools = _decode_tools(body.get("tools"))
    max_tokens = body.get("max_completion_tokens")
    max_tokens = _number(body, "max_tokens", int) if max_tokens is None else _number(body, "max_completion_tokens", int)
    if max_tokens is not None and max_tokens < 1:
        raise BadRequest("the output token limit must be a positive integer", param="max_tokens")
    return ChatRequest(
        model=decode_model(body, default_model),
        messages=decode_messages(require_messages(body)),
        stream=_stream_flag(body),
        tools=tools,
        tool_choice=_decode_tool_choice(body.get("tool_choice"), tools),
        temperature=_number(body, "temperature", float),
        top_p=_number(body, "top_p", float),
        max_tokens=max_tokens,
        stop=_decode_stop(body.get("stop")),
        response_format=_decode_response_format(body.get("response_format")),
        reasoning_effort=_choice(body, "reasoning_effort", REASONING_EFFORTS),
        user=_string(body, "user"),
        extra={name: body[name] for name in PASS_THROUGH if body.get(name) is not None},
        server_url=server_url,
    )


def decode(body: Any, headers: Mapping[str, str], context: Any) -> ChatRequest:
    """The chat runner's entry: the body, its headers and the server's defaults.
    Coze-style headers (x-model-type, x-bot-id, ...) become route hints."""
    request = decode_request(body, context.default_model, context.server_url)
    request.hints = route_hints(headers)
    return request


def decode_messages(messages: list) -> list[Message]:
    """system / developer / user / assistant (with tool_calls) / tool messages."""
    decoded: list[Message] = []
    tool_names: dict[str, str] = {}  # tool call id -> name, for the results that follow
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise BadRequest(f"{where} must be an object with 'role' and 'content'", param=where)
        role = message.get("role")
        if role in ("system", "developer"):
            decoded.append(Message("system", _text_parts(message.get("content"), f"{where}.content")))
        elif role == "user":
            if "content" not in message:
                raise BadRequest(f"{where}.content is required", param=f"{where}.content")
            decoded.append(Message("user", decode_content(message["content"], f"{where}.content")))
        elif role == "assistant":
            decoded.append(_decode_assistant(message, where, tool_names))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise BadRequest(f"{where}.tool_call_id is required: the id of the tool call this answers",
                                 param=f"{where}.tool_call_id")
            text = "".join(p.text for p in _text_parts(message.get("content"), f"{where}.content"))
            decoded.append(Message("tool", (ToolResultPart(call_id, text, tool_names.get(call_id)),)))
        else:
            raise BadRequest(f"{where}.role must be one of system, developer, user, assistant, tool; got {role!r}",
                             param=f"{where}.role")
    return decoded


def _decode_assistant(message: dict, where: str, tool_names: dict[str, str]) -> Message:
    parts: list = []
    # Signed thinking (LiteLLM's field, which this surface sends out) carries
    # the same text as reasoning_content, plus what Anthropic verifies.
    blocks = message.get(THINKING_BLOCKS)
    if blocks is not None:
        parts.extend(decode_thinking_blocks(blocks, f"{where}.{THINKING_BLOCKS}"))
    # Interleaved-thinking clients send the earlier reasoning back.
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if not parts and isinstance(reasoning, str) and reasoning:
        parts.append(ReasoningPart(reasoning))
    parts.extend(_text_parts(message.get("content"), f"{where}.content"))
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise BadRequest(f"{where}.tool_calls must be an array", param=f"{where}.tool_calls")
    for number, call in enumerate(calls or []):
        at = f"{where}.tool_calls[{number}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise BadRequest(f"{at} must be {{\"id\", \"type\": \"function\", \"function\": {{\"name\", \"arguments\"}}}}",
                             param=at)
        name, arguments = function.get("name"), function.get("arguments", "")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{at}.function.name must be a non-empty string", param=f"{at}.function.name")
        if not isinstance(arguments, str):
            raise BadRequest(f"{at}.function.arguments must be a JSON string", param=f"{at}.function.arguments")
        tool_names[call["id"]] = name
        parts.append(ToolCallPart(call["id"], name, arguments or "{}"))
    return Message("assistant", tuple(parts))


def _text_parts(content: Any, where: str) -> tuple:
    """Content that may only hold text (system, assistant, tool messages)."""
    parts = decode_content(content, where)
    for number, part in enumerate(parts):
        if not isinstance(part, TextPart):
            raise BadRequest(f"{where}[{number}] must be a text part here", param=f"{where}[{number}]")
    return parts


def _decode_tools(tools: Any) -> list[Tool]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array of {\"type\": \"function\", \"function\": {...}}", param="tools")
    decoded = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type", "function") != "function":
            raise BadRequest(f"{where} must be {{\"type\": \"function\", \"function\": {{\"name\", \"parameters\"}}}}",
                             param=where)
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{where}.function.name must be a non-empty string", param=f"{where}.function.name")
        parameters = function.get("parameters")
        if parameters is None:
            parameters = {"type": "object", "properties": {}}
        elif not isinstance(parameters, dict):
            raise BadRequest(f"{where}.function.parameters must be a JSON Schema object",
                             param=f"{where}.function.parameters")
        description = function.get("description")
        decoded.append(Tool(name, description if isinstance(description, str) else None, parameters))
    return decoded


def _decode_tool_choice(choice: Any, tools: list[Tool]) -> str | dict | None:
    if choice is None:
        return None
    if choice in ("none", "auto", "required"):
        return choice
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if not any(tool.name == name for tool in tools):
            raise BadRequest(f"tool_choice names the function {name!r}, which is not in 'tools'", param="tool_choice")
        return {"name": name}
    raise BadRequest("'tool_choice' must be \"none\", \"auto\", \"required\" or "
                     "{\"type\": \"function\", \"function\": {\"name\": ...}}", param="tool_choice")


def _decode_stop(stop: Any) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise BadRequest("'stop' must be a string or an array of strings", param="stop")


def _decode_response_format(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in RESPONSE_FORMATS:
        raise BadRequest("'response_format' must be {\"type\": \"text\" | \"json_object\" | \"json_schema\", ...}",
                         param="response_format")
    if value["type"] == "json_schema" and not isinstance(value.get("json_schema"), dict):
        raise BadRequest("response_format.json_schema must be {\"name\", \"schema\"}", param="response_format.json_schema")
    return value


def _stream_flag(body: dict) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false", param="stream")
    return stream


def _number(body: dict, name: str, kind: type) -> Any:
    value = body.get(name)
    if value is None:
        return None
    # bool is an int in Python, never a number in JSON
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
        raise BadRequest(f"'{name}' must be {'an integer' if kind is int else 'a number'}, got {value!r}", param=name)
    return kind(value)


def _string(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string", param=name)
    return value


def _choice(body: dict, name: str, allowed: tuple[str, ...]) -> str | None:
    value = body.get(name)
    if value is not None and value not in allowed:
        raise BadRequest(f"'{name}' must be one of {', '.join(allowed)}; got {value!r}", param=name)
    return value


@dataclass(slots=True, frozen=True)
class EncodeOptions:
    include_usage: bool = False
    thinking: str = "reasoning_content"


def decode_options(body: dict, headers: Mapping[str, str], default_thinking: str = "reasoning_content") -> EncodeOptions:
    """How to encode the answer: the usage chunk and the reasoning field.

    The thinking mode comes from the `X-Switchboard-Thinking` header, else the
    deployment's default (YAML `openai_chat: {thinking: ...}`)."""
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise BadRequest("'stream_options' must be an object like {\"include_usage\": true}", param="stream_options")
        if body.get("stream") is not True:
            raise BadRequest("'stream_options' is only allowed when 'stream' is true", param="stream_options")
    thinking = headers.get(THINKING_HEADER) or default_thinking
    if thinking not in THINKING_MODES:
        raise BadRequest(f"the {THINKING_HEADER} header must be one of {', '.join(THINKING_MODES)}; got {thinking!r}")
    return EncodeOptions(bool((options or {}).get("include_usage")), thinking)
