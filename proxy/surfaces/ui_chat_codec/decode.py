"""UIMessage[] request bodies -> ChatRequest.

    POST {id, messages: UIMessage[], trigger, messageId?, ...extras}
        -> decode_request -> ChatRequest (history as canonical messages)
        -> decode_overrides -> the values the request sets itself (they beat a preset)

`DefaultChatTransport` posts the whole history as UIMessages (parts, no
`content`); apps add top-level keys or rewrite the body entirely
(`prepareSendMessagesRequest`), so unknown keys are ignored and the few that
matter are looked for in the places apps put them. Tool parts become an
assistant tool call followed by a tool result, split at the step where the
client answered them, the way the SDK's own `convertToModelMessages` does.
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Mapping

from ...canonical import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    ReasoningPart,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    split_data_url,
)
from ...errors import BadRequest

ROLES = ("system", "user", "assistant")
TRIGGERS = ("submit-message", "regenerate-message")
# tool part states whose result the client already has (it goes upstream as a tool result)
ANSWERED = ("output-available", "output-error", "output-denied")
IGNORED_PARTS = ("step-start", "source-url", "source-document", "custom", "reasoning-file")


@dataclass(slots=True, frozen=True)
class Overrides:
    """What the request itself asks for; None = not set (the preset decides)."""

    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    system: str | None = None


def is_ui_request(body: Any) -> bool:
    """A useChat (ai 5+) body, as opposed to the Workbench's {messages: [{role, content}]}:
    it has `trigger`, or a message with `parts` and no `content`."""
    if not isinstance(body, dict):
        return False
    if "trigger" in body:
        return True
    messages = body.get("messages")
    return isinstance(messages, list) and any(
        isinstance(m, dict) and "parts" in m and "content" not in m for m in messages)


def decode_overrides(body: Any, headers: Mapping[str, str]) -> Overrides:
    """Request values, first found wins: body `options`, top-level keys, `X-AI-*` headers."""
    body = body if isinstance(body, dict) else {}
    options = body.get("options")
    if options is not None and not isinstance(options, dict):
        raise BadRequest("'options' must be an object like {\"model\": ..., \"temperature\": ...}", param="options")
    options = options or {}

    def first(*candidates: tuple[str, Any]) -> tuple[str, Any] | None:
        for where, value in candidates:
            if value is not None and value != "":
                return where, value
        return None

    model = first(("options.model", options.get("model")), ("model", body.get("model")),
                  ("X-AI-Model", headers.get("X-AI-Model")))
    temperature = first(("options.temperature", options.get("temperature")), ("temperature", body.get("temperature")),
                        ("X-AI-Temperature", headers.get("X-AI-Temperature")))
    max_tokens = first(("options.maxTokens", options.get("maxTokens")), ("options.max_tokens", options.get("max_tokens")),
                       ("maxTokens", body.get("maxTokens")), ("max_tokens", body.get("max_tokens")),
                       ("X-AI-Max-Tokens", headers.get("X-AI-Max-Tokens")))
    system = first(("options.system", options.get("system")), ("system", body.get("system")))
    if model is not None and not isinstance(model[1], str):
        raise BadRequest(f"'{model[0]}' must be a string naming a model or preset", param=model[0])
    if system is not None and not isinstance(system[1], str):
        raise BadRequest(f"'{system[0]}' must be a string", param=system[0])
    return Overrides(
        model=None if model is None else model[1],
        temperature=None if temperature is None else _number(temperature, float, 0.0, 2.0),
        max_tokens=None if max_tokens is None else _number(max_tokens, int, 1, None),
        system=None if system is None else system[1],
    )


def _number(found: tuple[str, Any], kind: type, low: float, high: float | None):
    where, value = found
    try:
        if isinstance(value, bool):
            raise ValueError
        number = kind(float(value)) if kind is int else kind(value)
        if kind is int and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        raise BadRequest(f"'{where}' must be a number, got {value!r}", param=where) from None
    if number < low or (high is not None and number > high):
        limit = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise BadRequest(f"'{where}' must be {limit}, got {value!r}", param=where)
    return number


def decode_request(body: Any, headers: Mapping[str, str], context: Any) -> ChatRequest:
    """The body as a ChatRequest; `context` has `default_model` and `server_url`.
    Model, temperature, max tokens and system prompt are the request's own
    (decode_overrides): the blueprint lays them over the resolved preset."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object like {\"id\", \"messages\": [UIMessage...]}")
    trigger = body.get("trigger")
    if trigger is not None and trigger not in TRIGGERS:
        raise BadRequest(f"'trigger' must be one of {', '.join(TRIGGERS)}; got {trigger!r}", param="trigger")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("'messages' is required: a non-empty array of UIMessages {id, role, parts}",
                         param="messages")
    overrides = decode_overrides(body, headers)
    messages = decode_messages(history_of(body))
    if overrides.system:
        messages.insert(0, Message("system", (TextPart(overrides.system),)))
    tools = decode_tools(body.get("tools"))
    return ChatRequest(
        model=overrides.model or context.default_model,
        messages=messages,
        stream=True,
        tools=tools,
        tool_choice="auto" if tools else None,
        temperature=overrides.temperature,
        max_tokens=overrides.max_tokens,
        server_url=getattr(context, "server_url", None),
    )


def history_of(body: dict) -> list:
    """The messages to answer. `useChat` drops the reply it regenerates
    itself; a body that still ends with it (a hand-made request) loses it here."""
    raw = body["messages"]
    if body.get("trigger") == "regenerate-message" and len(raw) > 1 and isinstance(raw[-1], dict) \
            and raw[-1].get("role") == "assistant":
        return raw[:-1]
    return raw


def decode_messages(raw: list) -> list[Message]:
    decoded: list[Message] = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise BadRequest(f"{where} must be a UIMessage object {{id, role, parts}}", param=where)
        role = message.get("role")
        if role not in ROLES:
            raise BadRequest(f"{where}.role must be one of {', '.join(ROLES)}; got {role!r}", param=f"{where}.role")
        parts = message.get("parts")
        if parts is None and isinstance(message.get("content"), str):
            parts = [{"type": "text", "text": message["content"]}]  # a hand-written body; be lenient
        if not isinstance(parts, list):
            raise BadRequest(f"{where}.parts must be an array of parts like {{\"type\": \"text\", \"text\": ...}}",
                             param=f"{where}.parts")
        if role == "assistant":
            decoded.extend(_assistant(parts, where))
            continue
        content = [decoded_part for number, part in enumerate(parts)
                   if (decoded_part := _content_part(part, f"{where}.parts[{number}]", role)) is not None]
        if content:
            decoded.append(Message(role, tuple(content)))
    if not any(m.role != "system" for m in decoded):
        raise BadRequest("'messages' holds no user or assistant content to answer", param="messages")
    return decoded


def _content_part(part: Any, where: str, role: str) -> Part | None:
    if not isinstance(part, dict):
        raise BadRequest(f"{where} must be a part object with a 'type'", param=where)
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise BadRequest(f"{where}.text must be a string", param=f"{where}.text")
        return TextPart(text) if text else None
    if kind == "file":
        return _file(part, where)
    if kind == "reasoning":
        if role != "assistant":
            return None
        metadata = part.get("providerMetadata")
        return ReasoningPart(str(part.get("text") or ""), metadata if isinstance(metadata, dict) else None)
    if kind in IGNORED_PARTS or (isinstance(kind, str) and kind.startswith("data-")):
        return None
    if not isinstance(kind, str):
        raise BadRequest(f"{where}.type must be a string", param=f"{where}.type")
    if role != "assistant" and (kind.startswith("tool-") or kind == "dynamic-tool"):
        raise BadRequest(f"{where}: tool parts belong in assistant messages", param=f"{where}.type")
    raise BadRequest(f"{where}.type {kind!r} is not supported here; use text, file or reasoning",
                     param=f"{where}.type")


def _file(part: dict, where: str) -> Part:
    url = part.get("url")
    media_type = part.get("mediaType")
    if not isinstance(url, str) or not url:
        raise BadRequest(f"{where}.url must be a data: URL or an https:// URL", param=f"{where}.url")
    if not isinstance(media_type, str) or not media_type:
        raise BadRequest(f"{where}.mediaType is required (for example image/png)", param=f"{where}.mediaType")
    if media_type.startswith("image/"):
        if not (url.startswith("data:") or url.startswith("https://") or url.startswith("http://")):
            raise BadRequest(f"{where}.url must be a data: URL or an https:// URL", param=f"{where}.url")
        return ImagePart(url, media_type)
    if media_type.startswith("text/") or media_type in ("application/json", "application/xml"):
        # Text attachments go upstream as text, as every provider reads text.
        try:
            _, payload = split_data_url(url)
            text = base64.b64decode(payload, validate=True).decode("utf-8")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise BadRequest(f"{where}.url: a {media_type} attachment must be a base64 data: URL of UTF-8 text",
                             param=f"{where}.url") from None
        name = part.get("filename")
        return TextPart(f"[{name}]\n{text}" if isinstance(name, str) and name else text)
    raise BadRequest(f"{where}.mediaType {media_type!r} is not supported: send images (image/*) or text files",
                     param=f"{where}.mediaType")


def _tool_name(part: dict) -> str:
    kind = part["type"]
    if kind == "dynamic-tool":
        return str(part.get("toolName") or "")
    return kind[len("tool-"):]


def _assistant(parts: list, where: str) -> list[Message]:
    """One assistant UIMessage may hold several steps: text, tool calls, the
    client's results, more text. Upstream that is assistant (calls) -> tool
    (results) -> assistant ..., split where content follows answered calls."""
    out: list[Message] = []
    current: list[Part] = []
    results: list[ToolResultPart] = []

    def flush() -> None:
        if current:
            out.append(Message("assistant", tuple(current)))
            current.clear()
        for result in results:
            out.append(Message("tool", (result,)))
        results.clear()

    for number, part in enumerate(parts):
        at = f"{where}.parts[{number}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if isinstance(kind, str) and (kind.startswith("tool-") or kind == "dynamic-tool"):
            call, result = _tool(part, at)
            if call is None:
                continue
            if results and not current:
                flush()
            current.append(call)
            if result is not None:
                results.append(result)
            continue
        decoded = _content_part(part, at, "assistant")
        if decoded is None:
            continue
        if results:
            flush()
        current.append(decoded)
    flush()
    return out


def _tool(part: dict, where: str) -> tuple[ToolCallPart | None, ToolResultPart | None]:
    call_id = part.get("toolCallId")
    name = _tool_name(part)
    if not isinstance(call_id, str) or not call_id or not name:
        raise BadRequest(f"{where} must have a toolCallId and a tool name", param=where)
    state = part.get("state")
    if state not in ANSWERED:
        # A call the client has not answered yet (or still streaming): no
        # provider accepts a call without its result, so it is left out.
        return None, None
    arguments = part.get("input")
    if arguments is None:
        arguments = part.get("rawInput")
    text = arguments if isinstance(arguments, str) else json.dumps(arguments if arguments is not None else {},
                                                                  ensure_ascii=False)
    metadata = part.get("callProviderMetadata") or part.get("providerMetadata")
    call = ToolCallPart(call_id, name, text, metadata if isinstance(metadata, dict) else None)
    if state == "output-available":
        output = part.get("output")
        content = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
        return call, ToolResultPart(call_id, content, name)
    if state == "output-denied":
        return call, ToolResultPart(call_id, "The user denied this tool call.", name, is_error=True)
    return call, ToolResultPart(call_id, str(part.get("errorText") or "the tool failed"), name, is_error=True)


def decode_tools(tools: Any) -> list[Tool]:
    """Function tools: OpenAI `{type: function, function: {...}}`, a bare
    `{name, description, parameters | inputSchema}`, or a map name -> spec."""
    if tools is None:
        return []
    if isinstance(tools, dict):
        tools = [{"name": name, **(spec if isinstance(spec, dict) else {})} for name, spec in tools.items()]
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array of function tools {name, description, parameters}",
                         param="tools")
    decoded = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise BadRequest(f"{where} must be an object", param=where)
        spec = tool.get("function") if tool.get("type") == "function" and isinstance(tool.get("function"), dict) \
            else tool
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{where}.name is required", param=f"{where}.name")
        schema = spec.get("parameters") or spec.get("inputSchema") or spec.get("input_schema")
        if isinstance(schema, dict) and isinstance(schema.get("jsonSchema"), dict):
            schema = schema["jsonSchema"]  # the SDK's jsonSchema() wrapper, serialised
        if schema is None:
            schema = {"type": "object", "properties": {}}
        if not isinstance(schema, dict):
            raise BadRequest(f"{where}.parameters must be a JSON schema object", param=f"{where}.parameters")
        description = spec.get("description")
        decoded.append(Tool(name, description if isinstance(description, str) else None, schema))
    return decoded
