"""ChatRequest -> a Gemini `GenerateContentRequest` body (docs/gemini.md, "Request").

    GeminiProvider.open -> build_payload(request, params, inline_image) -> JSON body

System messages become `systemInstruction`; the other turns become
`contents` with roles `user` / `model` (adjacent same-role turns merged);
images become `inlineData` (data URLs) or `fileData` (Files API / YouTube
URIs), other web URLs are handed to `inline_image` (the provider downloads
them, since Gemini does not fetch arbitrary URLs reliably). Tool calls in
history become `functionCall` parts carrying their original
`thoughtSignature` (from provider_metadata, else from the call id:
call_ids.py); tool results become `functionResponse` parts (object
payloads, name found from the call since results may lack it). Pure.
"""
from __future__ import annotations

import mimetypes
from typing import Any, Callable, Mapping

import orjson

from ...canonical import ChatRequest, ImagePart, Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from ...errors import BadRequest
from .call_ids import is_synthetic_id, split_call_id
from .schema import clean_schema, is_empty_object

METADATA_KEY = "gemini"  # provider_metadata namespace for what must round-trip

# reasoning_effort -> Gemini 2.5 `thinkingBudget` tokens / Gemini 3 `thinkingLevel`.
THINKING_BUDGET = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
THINKING_LEVEL = {"minimal": "LOW", "low": "LOW", "medium": "HIGH", "high": "HIGH"}
TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "any": "ANY"}
FILE_URI_PREFIXES = (
    "https://generativelanguage.googleapis.com/",
    "gs://",
    "https://www.youtube.com/",
    "https://youtu.be/",
)

InlineImage = Callable[[str], tuple[str, str]]  # URL -> (mime type, base64)


def signature_of(metadata: Mapping[str, Any] | None) -> dict | None:
    """The Gemini part of a provider_metadata mapping, if any."""
    if not metadata:
        return None
    found = metadata.get(METADATA_KEY)
    return found if isinstance(found, Mapping) and found.get("thoughtSignature") else None


def build_payload(
    request: ChatRequest, model: str, params: Mapping[str, Any] | None = None, inline_image: InlineImage | None = None
) -> dict[str, Any]:
    params = params or {}
    body: dict[str, Any] = {}
    system = [{"text": m.text} for m in request.messages if m.role == "system" and m.text]
    if system:
        body["systemInstruction"] = {"parts": system}
    body["contents"] = build_contents(request.messages, inline_image)
    if not body["contents"]:
        raise BadRequest("messages must contain at least one user or assistant message (Gemini needs contents)",
                         param="messages")
    tools = build_tools(request)
    if tools:
        body["tools"] = tools
        tool_config = build_tool_config(request.tool_choice)
        if tool_config:
            body["toolConfig"] = tool_config
    config = build_generation_config(request, model, params)
    if config:
        body["generationConfig"] = config
    for key in ("safetySettings", "cachedContent"):
        value = request.extra.get(key, params.get(key))
        if value is not None:
            body[key] = value
    return body


# -- contents ------------------------------------------------------------------


def build_contents(messages: list[Message], inline_image: InlineImage | None) -> list[dict]:
    contents: list[dict] = []
    call_names: dict[str, str] = {}  # tool call id -> function name
    for message in messages:
        if message.role == "system":
            continue
        role = "model" if message.role == "assistant" else "user"
        parts: list[dict] = []
        for part in message.parts:
            _add_part(parts, part, message.role, call_names, inline_image)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)  # Gemini wants alternating turns
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _add_part(parts: list[dict], part: Any, role: str, call_names: dict, inline_image: InlineImage | None) -> None:
    if isinstance(part, TextPart):
        if part.text:
            parts.append({"text": part.text})
    elif isinstance(part, ImagePart):
        parts.append(image_part(part, inline_image))
    elif isinstance(part, ToolCallPart):
        call_names[part.id] = part.name
        parts.append(function_call_part(part))
    elif isinstance(part, ToolResultPart):
        parts.append(function_response_part(part, call_names))
    elif isinstance(part, ReasoningPart) and role == "assistant":
        _add_reasoning(parts, part)


def _add_reasoning(parts: list[dict], part: ReasoningPart) -> None:
    """Thought summaries go back only to carry a signature; a signature that
    arrived on a text part goes back on that text part."""
    gemini = signature_of(part.provider_metadata)
    if gemini is None:
        return
    signature = gemini["thoughtSignature"]
    if gemini.get("onText") and parts and "text" in parts[-1] and "thoughtSignature" not in parts[-1]:
        parts[-1]["thoughtSignature"] = signature
    elif part.text:
        parts.append({"text": part.text, "thought": True, "thoughtSignature": signature})
    else:
        parts.append({"text": "", "thoughtSignature": signature})


def image_part(part: ImagePart, inline_image: InlineImage | None) -> dict:
    if part.is_data_url:
        try:
            media_type, data = part.data()
        except ValueError as exc:
            raise BadRequest(f"image data URL: {exc}", param="messages") from None
        return {"inlineData": {"mimeType": part.media_type or media_type, "data": data}}
    url = part.url
    mime = part.media_type or mimetypes.guess_type(url.split("?", 1)[0])[0]
    if url.startswith(FILE_URI_PREFIXES) or inline_image is None:
        file_data = {"fileUri": url}
        if mime:
            file_data["mimeType"] = mime
        return {"fileData": file_data}
    media_type, data = inline_image(url)
    return {"inlineData": {"mimeType": media_type, "data": data}}


def function_call_part(part: ToolCallPart) -> dict:
    try:
        args = orjson.loads(part.arguments) if part.arguments else {}
    except orjson.JSONDecodeError:
        raise BadRequest(f"tool call {part.id!r} has arguments that are not JSON", param="messages") from None
    if not isinstance(args, dict):
        raise BadRequest(f"tool call {part.id!r}: Gemini needs the arguments to be a JSON object", param="messages")
    call: dict[str, Any] = {"name": part.name, "args": args}
    call_id, carried = split_call_id(part.id or "")
    if call_id and not is_synthetic_id(call_id):
        call["id"] = call_id  # Gemini's own id: echo it back
    out: dict[str, Any] = {"functionCall": call}
    gemini = signature_of(part.provider_metadata)
    # An OpenAI-format client sends back only the id, which carries the signature.
    signature = gemini["thoughtSignature"] if gemini is not None else carried
    if signature:
        out["thoughtSignature"] = signature
    return out


def function_response_part(part: ToolResultPart, call_names: Mapping[str, str]) -> dict:
    name = part.name or call_names.get(part.tool_call_id)
    if not name:
        raise BadRequest(
            f"tool result for {part.tool_call_id!r} matches no earlier tool call; Gemini needs the function name",
            param="messages",
        )
    try:
        value = orjson.loads(part.content)
    except orjson.JSONDecodeError:
        value = part.content
    # `response` must be an object; plain results are wrapped.
    response = value if isinstance(value, dict) else {"result": value}
    if part.is_error:
        response = {"error": value}
    payload: dict[str, Any] = {"name": name, "response": response}
    call_id, _ = split_call_id(part.tool_call_id or "")
    if call_id and not is_synthetic_id(call_id):
        payload["id"] = call_id  # the same id as its functionCall, without the signature
    return {"functionResponse": payload}


# -- tools ---------------------------------------------------------------------


def build_tools(request: ChatRequest) -> list[dict]:
    if not request.tools:
        return []
    declarations = []
    for number, tool in enumerate(request.tools):
        declaration: dict[str, Any] = {"name": tool.name}
        if tool.description:
            declaration["description"] = tool.description
        parameters = clean_schema(tool.parameters or {}, f"tools[{number}].function.parameters")
        if not is_empty_object(parameters):
            declaration["parameters"] = parameters
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}]


def build_tool_config(tool_choice: str | dict | None) -> dict | None:
    if tool_choice is None:
        return None
    if isinstance(tool_choice, dict):
        name = tool_choice.get("name") or (tool_choice.get("function") or {}).get("name")
        if not name:
            raise BadRequest("tool_choice must name a function", param="tool_choice")
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    mode = TOOL_MODES.get(str(tool_choice))
    if mode is None:
        raise BadRequest(f"tool_choice {tool_choice!r}: use auto, none, required or a function name",
                         param="tool_choice")
    return {"functionCallingConfig": {"mode": mode}}


# -- generationConfig ------------------------------------------------------------


def _pick(request_value: Any, params: Mapping[str, Any], name: str) -> Any:
    return request_value if request_value is not None else params.get(name)


def build_generation_config(request: ChatRequest, model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, value in (
        ("temperature", _pick(request.temperature, params, "temperature")),
        ("topP", _pick(request.top_p, params, "top_p")),
        ("topK", params.get("top_k")),
        ("maxOutputTokens", _pick(request.max_tokens, params, "max_tokens")),
        ("stopSequences", request.stop or params.get("stop")),
        ("responseModalities", params.get("response_modalities")),
    ):
        if value is not None and value != []:
            config[key] = value
    config.update(response_format_config(request.response_format))
    thinking = thinking_config(request, model, params)
    if thinking:
        config["thinkingConfig"] = thinking
    extra = request.extra.get("generationConfig")
    if isinstance(extra, Mapping):
        config.update(extra)
    return config


def response_format_config(response_format: Mapping[str, Any] | None) -> dict[str, Any]:
    """OpenAI-style response_format -> responseMimeType / responseSchema."""
    if not response_format:
        return {}
    kind = response_format.get("type")
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        json_schema = response_format.get("json_schema")
        where = "response_format.json_schema.schema"
        if json_schema is not None and not isinstance(json_schema, Mapping):
            raise BadRequest("response_format.json_schema must be an object", param="response_format.json_schema")
        schema = (json_schema or {}).get("schema")
        if schema is None:
            schema, where = response_format.get("schema"), "response_format.schema"
        config: dict[str, Any] = {"responseMimeType": "application/json"}
        if schema is not None:
            config["responseSchema"] = clean_schema(schema, where)
        return config
    return {}


def thinking_config(request: ChatRequest, model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """reasoning_effort or route params -> thinkingConfig (never budget and level together)."""
    effort = _pick(request.reasoning_effort, params, "reasoning_effort")
    config: dict[str, Any] = {}
    if params.get("thinking_level") is not None:
        config["thinkingLevel"] = str(params["thinking_level"]).upper()
    elif params.get("thinking_budget") is not None:
        config["thinkingBudget"] = int(params["thinking_budget"])
    elif effort is not None:
        effort = str(effort).lower()
        if effort not in THINKING_BUDGET:
            raise BadRequest(f"reasoning_effort {effort!r}: use one of {', '.join(THINKING_BUDGET)}",
                             param="reasoning_effort")
        if model.startswith("gemini-3") and effort in THINKING_LEVEL:
            config["thinkingLevel"] = THINKING_LEVEL[effort]
        else:
            config["thinkingBudget"] = THINKING_BUDGET[effort]
    include = params.get("include_thoughts")
    if include is None:
        include = effort is not None and effort != "none"
    if include:
        config["includeThoughts"] = True
    return config
