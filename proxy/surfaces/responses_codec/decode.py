"""Decoding a `POST /v1/responses` body (Open Responses `CreateResponseBody`): pure.

    body -> input_items (the input as items, string input made a user message, ids filled in)
         -> build_messages(instructions, history items, new items) -> canonical messages
         -> decode_request -> ChatRequest          decode_options -> ResponseOptions (echoed back)

Lenient with what clients add (unknown fields are ignored, a message item
may omit `type`), strict where a wrong value would silently change the
answer: every BadRequest names the field to fix. Consecutive assistant-side
items (assistant messages, reasoning, function calls) become one assistant
message, because providers that verify signed thinking (Anthropic) need the
thinking and the tool calls of one turn together.
"""
from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

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
)
from ...errors import BadRequest
from ..route_hints import route_hints
from . import opaque

REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
REASONING_SUMMARIES = ("auto", "concise", "detailed")
TRUNCATIONS = ("auto", "disabled")
MESSAGE_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
TEXT_MEDIA = ("text/", "application/json", "application/xml", "application/x-yaml", "application/csv")
ITEM_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs",
               "compaction": "cmp"}


def new_item_id(kind: str) -> str:
    return f"{ITEM_PREFIX.get(kind, 'item')}_{secrets.token_hex(12)}"


@dataclass(slots=True, frozen=True)
class ResponseOptions:
    """What the request asked for that the Response object echoes back."""

    model: str
    stream: bool = False
    store: bool = True
    previous_response_id: str | None = None
    instructions: str | None = None
    tools: tuple = ()
    tool_choice: Any = "auto"
    truncation: str = "disabled"
    parallel_tool_calls: bool = True
    text: Mapping[str, Any] = field(default_factory=lambda: {"format": {"type": "text"}})
    temperature: float = 1.0
    top_p: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    top_logprobs: int = 0
    reasoning: Mapping[str, Any] | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    background: bool = False
    service_tier: str = "default"
    metadata: Mapping[str, Any] = field(default_factory=dict)
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None


def require_object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object, for example {\"model\": \"mock\", \"input\": \"Hi\"}")
    return body


def require_model(body: Any, default: str | None = None) -> str:
    body = require_object(body)
    model = body.get("model")
    if model is None or model == "":
        if default:
            return default
        raise BadRequest("'model' is required: a model id from GET /v1/models", param="model")
    if not isinstance(model, str):
        raise BadRequest("'model' must be a string naming a model from GET /v1/models", param="model")
    return model


# -- input items ------------------------------------------------------------


def input_items(body: Mapping[str, Any]) -> list[dict]:
    """The request's input as a list of items, each with `type` and `id`
    (what is stored and listed by GET /v1/responses/{id}/input_items)."""
    value = body.get("input")
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "id": new_item_id("message"), "role": "user", "status": "completed",
                 "content": [{"type": "input_text", "text": value}]}]
    if not isinstance(value, list):
        raise BadRequest("'input' must be a string or an array of items", param="input")
    return [_normalize_item(item, f"input[{index}]") for index, item in enumerate(value)]


def _normalize_item(item: Any, where: str) -> dict:
    if not isinstance(item, dict):
        raise BadRequest(f"{where} must be an item object, for example {{\"role\": \"user\", \"content\": \"Hi\"}}",
                         param=where)
    kind = item.get("type")
    if kind is None and "role" in item:
        kind = "message"  # OpenAI's "easy input message" has no type
    if kind not in ("message", "function_call", "function_call_output", "reasoning", "item_reference", "compaction"):
        raise BadRequest(f"{where}.type {kind!r} is not supported; use message, function_call, function_call_output, "
                         "reasoning, item_reference or compaction", param=f"{where}.type")
    normalized = dict(item)
    normalized["type"] = kind
    if kind == "message":
        role = item.get("role")
        if role not in MESSAGE_ROLES:
            raise BadRequest(f"{where}.role must be one of {', '.join(MESSAGE_ROLES)}, got {role!r}", param=f"{where}.role")
        content = item.get("content")
        if isinstance(content, str):
            part = {"type": "output_text", "text": content, "annotations": []} if role == "assistant" \
                else {"type": "input_text", "text": content}
            normalized["content"] = [part]
        elif not isinstance(content, list):
            raise BadRequest(f"{where}.content must be a string or an array of content parts", param=f"{where}.content")
        normalized.setdefault("status", "completed")
    if kind != "item_reference" and not isinstance(normalized.get("id"), str):
        normalized["id"] = new_item_id(kind)
    return normalized


# -- items -> canonical messages ----------------------------------------------


def build_messages(instructions: str | None, history: Sequence[dict], items: Sequence[dict],
                   check_tool_outputs: bool = True) -> list[Message]:
    """Canonical messages: instructions, then the stored history items, then
    the new items. With `check_tool_outputs`, a function_call_output must
    answer a function_call earlier in the context (as OpenAI requires: a
    provider would reject the orphan result anyway, less clearly)."""
    messages: list[Message] = []
    if instructions:
        messages.append(Message("system", (TextPart(instructions),)))
    calls: dict[str, str] = {}  # call_id -> tool name
    references = {item.get("id"): item for item in history if isinstance(item.get("id"), str)}
    assistant: list[Part] = []

    def flush() -> None:
        if assistant:
            messages.append(Message("assistant", tuple(assistant)))
            assistant.clear()

    labelled = [(item, "previous_response") for item in history] + [(item, f"input[{i}]") for i, item in enumerate(items)]
    for item, where in labelled:
        kind = item.get("type")
        if kind == "item_reference":
            reference = references.get(item.get("id"))
            if reference is None:
                raise BadRequest(f"{where}: item_reference {item.get('id')!r} names no item of the previous responses",
                                 param=f"{where}.id")
            item, kind = reference, reference.get("type")
        if kind == "message":
            role = MESSAGE_ROLES[item["role"]]
            parts = _content(item.get("content"), f"{where}.content", role)
            if role == "assistant":
                assistant.extend(parts)
                continue
            flush()
            messages.append(Message(role, parts))
        elif kind == "reasoning":
            assistant.append(_reasoning(item, where))
        elif kind == "function_call":
            call = _function_call(item, where)
            calls[call.id] = call.name
            assistant.append(call)
        elif kind == "function_call_output":
            flush()
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise BadRequest(f"{where}.call_id is required: the call_id of the function_call this answers",
                                 param=f"{where}.call_id")
            if check_tool_outputs and call_id not in calls:
                raise BadRequest(f"No tool call found for function call output with call_id {call_id!r} "
                                 f"({where}): send the function_call item, or continue its response with "
                                 "previous_response_id", param=f"{where}.call_id")
            messages.append(Message("tool", (ToolResultPart(call_id, _tool_output(item.get("output"), f"{where}.output"),
                                                            calls.get(call_id)),)))
        elif kind == "compaction":
            flush()
            messages.append(Message("system", (TextPart(_compaction_summary(item, where)),)))
    flush()
    return messages


def _content(content: Any, where: str, role: str) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list):
        raise BadRequest(f"{where} must be a string or an array of content parts", param=where)
    parts: list[Part] = []
    for index, part in enumerate(content):
        at = f"{where}[{index}]"
        if not isinstance(part, dict):
            raise BadRequest(f"{at} must be a content part like {{\"type\": \"input_text\", \"text\": \"...\"}}", param=at)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise BadRequest(f"{at}.text must be a string", param=f"{at}.text")
            parts.append(TextPart(text))
        elif kind == "refusal":
            parts.append(TextPart(str(part.get("refusal") or "")))
        elif kind == "input_image" and role != "assistant":
            parts.append(_image(part, at))
        elif kind == "input_file" and role != "assistant":
            parts.append(_file(part, at))
        else:
            raise BadRequest(f"{at}.type {kind!r} is not supported in a {role} message", param=f"{at}.type")
    return tuple(parts)


def _image(part: dict, where: str) -> ImagePart:
    url = part.get("image_url")
    if isinstance(url, dict):
        url = url.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:")):
        if part.get("file_id"):
            raise BadRequest(f"{where}.file_id: uploaded files are not supported; send image_url as an https:// or "
                             "data: URL", param=f"{where}.file_id")
        raise BadRequest(f"{where}.image_url must be an https:// or data: URL", param=f"{where}.image_url")
    detail = part.get("detail")
    return ImagePart(url, None, detail if detail in ("low", "high", "auto") else None)


def _file(part: dict, where: str) -> Part:
    """A file part. Images become image parts and text files their text; the
    canonical model has no document part yet, so other files (PDF) become a
    note naming the file, never silently nothing."""
    filename = part.get("filename") if isinstance(part.get("filename"), str) else None
    data = part.get("file_data")
    if isinstance(data, str) and data:
        if not data.startswith("data:"):
            data = f"data:application/octet-stream;base64,{data}"
        header, _, payload = data[5:].partition(",")
        media_type = header.split(";")[0] or "application/octet-stream"
        if media_type.startswith("image/"):
            return ImagePart(data, media_type)
        if media_type.startswith(TEXT_MEDIA):
            try:
                text = base64.b64decode(payload, validate=False).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise BadRequest(f"{where}.file_data is not valid base64 UTF-8 text", param=f"{where}.file_data") from None
            return TextPart(f"[file {filename or 'attachment'}]\n{text}")
        size = len(payload) * 3 // 4
        return TextPart(f"[attached file {filename or 'attachment'} ({media_type}, about {size} bytes); "
                        "its contents are not passed to the model]")
    url = part.get("file_url")
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return TextPart(f"[attached file {filename or url}: {url}]")
    raise BadRequest(f"{where} must carry file_data (a data: URL or base64, with filename) or file_url; "
                     "uploaded file ids are not supported", param=f"{where}.file_data")


def _reasoning(item: dict, where: str) -> ReasoningPart:
    texts = [p.get("text", "") for p in item.get("content") or [] if isinstance(p, dict)]
    if not texts:
        texts = [p.get("text", "") for p in item.get("summary") or [] if isinstance(p, dict)]
    encrypted = item.get("encrypted_content")
    if encrypted is not None and not isinstance(encrypted, str):
        raise BadRequest(f"{where}.encrypted_content must be a string", param=f"{where}.encrypted_content")
    metadata = opaque.metadata_from_encrypted(encrypted) if encrypted else None
    return ReasoningPart("".join(t for t in texts if isinstance(t, str)), metadata)


def _function_call(item: dict, where: str) -> ToolCallPart:
    call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments", "")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest(f"{where}.call_id must be a non-empty string", param=f"{where}.call_id")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}.name must be a non-empty string", param=f"{where}.name")
    if not isinstance(arguments, str):
        raise BadRequest(f"{where}.arguments must be a JSON string", param=f"{where}.arguments")
    packed = item.get(opaque.CALL_METADATA)
    metadata = None
    if packed is not None:
        try:
            metadata = opaque.unpack(packed)
        except ValueError:
            raise BadRequest(f"{where}.{opaque.CALL_METADATA} is not a value this server made; send it back as "
                             "received, or leave it out", param=f"{where}.{opaque.CALL_METADATA}") from None
    return ToolCallPart(call_id, name, arguments or "{}", metadata)


def _tool_output(output: Any, where: str) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        texts = []
        for part in output:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, dict):
                texts.append(f"[{part.get('type', 'part')}]")
        return "".join(texts)
    raise BadRequest(f"{where} must be a string or an array of content parts", param=where)


def _compaction_summary(item: dict, where: str) -> str:
    summary = opaque.unseal_summary(item.get("encrypted_content") or "")
    if summary is None:
        raise BadRequest(f"{where}.encrypted_content is not a compaction this server made "
                         "(POST /v1/responses/compact makes them)", param=f"{where}.encrypted_content")
    return "Summary of the earlier conversation:\n" + summary


# -- the request --------------------------------------------------------------


def decode_tools(value: Any) -> tuple[list[Tool], list[dict]]:
    """(canonical tools, the tools as the Response echoes them)."""
    if value is None:
        return [], []
    if not isinstance(value, list):
        raise BadRequest("'tools' must be an array of {\"type\": \"function\", \"name\", \"parameters\"}", param="tools")
    tools, echoed = [], []
    for index, tool in enumerate(value):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise BadRequest(f"{where} must be an object", param=where)
        if tool.get("type") != "function":
            raise BadRequest(f"{where}.type {tool.get('type')!r} is not supported: only function tools are",
                             param=f"{where}.type")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{where}.name must be a non-empty string (tools are flat here, not nested under "
                             "'function')", param=f"{where}.name")
        parameters = tool.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise BadRequest(f"{where}.parameters must be a JSON Schema object", param=f"{where}.parameters")
        description = tool.get("description") if isinstance(tool.get("description"), str) else None
        tools.append(Tool(name, description, parameters or {"type": "object", "properties": {}}))
        strict = tool.get("strict")
        echoed.append({"type": "function", "name": name, "description": description, "parameters": parameters,
                       "strict": strict if isinstance(strict, bool) else None})
    return tools, echoed


def decode_tool_choice(value: Any, tools: list[Tool]) -> tuple[Any, list[Tool], Any]:
    """(echoed tool_choice, the tools the model may use, canonical tool_choice)."""
    if value is None or value == "auto":
        return "auto", tools, None
    if value in ("none", "required"):
        return value, tools, value
    names = {tool.name for tool in tools}
    if isinstance(value, dict) and value.get("type") == "function":
        name = value.get("name")
        if name not in names:
            raise BadRequest(f"tool_choice names the function {name!r}, which is not in 'tools'", param="tool_choice")
        return {"type": "function", "name": name}, tools, {"name": name}
    if isinstance(value, dict) and value.get("type") == "allowed_tools":
        allowed = value.get("tools")
        mode = value.get("mode", "auto")
        if not isinstance(allowed, list) or mode not in ("auto", "required"):
            raise BadRequest("tool_choice allowed_tools needs 'tools': [{\"type\": \"function\", \"name\"}] and "
                             "'mode': auto or required", param="tool_choice")
        wanted = {t.get("name") for t in allowed if isinstance(t, dict)}
        unknown = sorted(str(n) for n in wanted - names)
        if unknown:
            raise BadRequest(f"tool_choice.tools names {', '.join(unknown)}, not in 'tools'", param="tool_choice.tools")
        echoed = {"type": "allowed_tools", "tools": allowed, "mode": mode}
        return echoed, [tool for tool in tools if tool.name in wanted], (None if mode == "auto" else "required")
    raise BadRequest("'tool_choice' must be \"none\", \"auto\", \"required\", {\"type\": \"function\", \"name\"} or "
                     "{\"type\": \"allowed_tools\", \"tools\": [...]}", param="tool_choice")


def _response_format(text: Any) -> Mapping[str, Any] | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        raise BadRequest("'text' must be an object like {\"format\": {\"type\": \"text\"}}", param="text")
    fmt = text.get("format")
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        return None
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        if not isinstance(fmt.get("schema"), dict) or not isinstance(fmt.get("name"), str):
            raise BadRequest("text.format json_schema needs 'name' and 'schema'", param="text.format")
        schema = {"name": fmt["name"], "schema": fmt["schema"]}
        if isinstance(fmt.get("strict"), bool):
            schema["strict"] = fmt["strict"]
        if isinstance(fmt.get("description"), str):
            schema["description"] = fmt["description"]
        return {"type": "json_schema", "json_schema": schema}
    raise BadRequest("text.format.type must be text, json_object or json_schema", param="text.format.type")


def _number(body: Mapping, name: str, kind: type, low: float | None = None) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
        raise BadRequest(f"'{name}' must be {'an integer' if kind is int else 'a number'}, got {value!r}", param=name)
    if low is not None and value < low:
        raise BadRequest(f"'{name}' must be at least {low}, got {value!r}", param=name)
    return kind(value)


def _flag(body: Mapping, name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"'{name}' must be true or false", param=name)
    return value


def _string(body: Mapping, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string", param=name)
    return value


def _reasoning_options(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("'reasoning' must be an object like {\"effort\": \"low\"}", param="reasoning")
    effort, summary = value.get("effort"), value.get("summary")
    if effort is not None and effort not in REASONING_EFFORTS:
        raise BadRequest(f"reasoning.effort must be one of {', '.join(REASONING_EFFORTS)}; got {effort!r}",
                         param="reasoning.effort")
    if summary is not None and summary not in REASONING_SUMMARIES:
        raise BadRequest(f"reasoning.summary must be one of {', '.join(REASONING_SUMMARIES)}; got {summary!r}",
                         param="reasoning.summary")
    return {"effort": effort, "summary": summary}


def decode_options(body: Any, default_model: str | None = None) -> ResponseOptions:
    """The request's settings as the Response object echoes them."""
    body = require_object(body)
    tools, echoed_tools = decode_tools(body.get("tools"))
    tool_choice, _, _ = decode_tool_choice(body.get("tool_choice"), tools)
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadRequest("'metadata' must be an object of string values", param="metadata")
    truncation = body.get("truncation") or "disabled"
    if truncation not in TRUNCATIONS:
        raise BadRequest("'truncation' must be auto or disabled", param="truncation")
    text = body.get("text")
    _response_format(text)
    previous = _string(body, "previous_response_id")
    instructions = _string(body, "instructions")
    return ResponseOptions(
        model=require_model(body, default_model),
        stream=_flag(body, "stream", False),
        store=_flag(body, "store", True),
        previous_response_id=previous or None,
        instructions=instructions,
        tools=tuple(echoed_tools),
        tool_choice=tool_choice,
        truncation=truncation,
        parallel_tool_calls=_flag(body, "parallel_tool_calls", True),
        text=text if isinstance(text, dict) and isinstance(text.get("format"), dict) else {"format": {"type": "text"}},
        temperature=_number(body, "temperature", float, 0) if body.get("temperature") is not None else 1.0,
        top_p=_number(body, "top_p", float, 0) if body.get("top_p") is not None else 1.0,
        presence_penalty=_number(body, "presence_penalty", float) or 0.0,
        frequency_penalty=_number(body, "frequency_penalty", float) or 0.0,
        top_logprobs=_number(body, "top_logprobs", int, 0) or 0,
        reasoning=_reasoning_options(body.get("reasoning")),
        max_output_tokens=_number(body, "max_output_tokens", int, 1),
        max_tool_calls=_number(body, "max_tool_calls", int, 1),
        background=_flag(body, "background", False),
        service_tier=_string(body, "service_tier") or "default",
        metadata=metadata or {},
        safety_identifier=_string(body, "safety_identifier"),
        prompt_cache_key=_string(body, "prompt_cache_key"),
    )


def decode_request(body: Any, headers: Mapping[str, str] | None = None, context: Any = None) -> ChatRequest:
    """The body as a ChatRequest of instructions + input. A request that
    continues a stored response gets its history from the surface's hook
    (build_messages with the stored chain), so orphan tool outputs are only
    checked here when there is no previous_response_id."""
    body = require_object(body)
    default_model = getattr(context, "default_model", None)
    options = decode_options(body, default_model)
    if body.get("background"):
        raise BadRequest("'background' responses are not supported; stream or wait for the answer", param="background")
    tools, _ = decode_tools(body.get("tools"))
    _, usable_tools, tool_choice = decode_tool_choice(body.get("tool_choice"), tools)
    items = input_items(body)
    if not items and not options.previous_response_id:
        raise BadRequest("'input' is required: a string or an array of items", param="input")
    messages = build_messages(options.instructions, [], items, check_tool_outputs=not options.previous_response_id)
    extra: dict[str, Any] = {}
    if usable_tools and body.get("parallel_tool_calls") is not None:
        extra["parallel_tool_calls"] = options.parallel_tool_calls
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name) is not None:
            extra[name] = getattr(options, name)
    request = ChatRequest(
        model=options.model,
        messages=messages,
        stream=options.stream,
        tools=usable_tools,
        tool_choice=tool_choice,
        temperature=_number(body, "temperature", float),
        top_p=_number(body, "top_p", float),
        max_tokens=options.max_output_tokens,
        response_format=_response_format(body.get("text")),
        reasoning_effort=(options.reasoning or {}).get("effort"),
        user=_string(body, "user") or options.safety_identifier,
        extra=extra,
        server_url=getattr(context, "server_url", None),
    )
    # Coze-style headers (x-model-type, x-bot-id, ...) choose a Coze mode, bot or workflow
    request.hints = route_hints(headers or {})
    return request
