"""Decoding chat messages and content parts, shared by the surfaces' codecs.

    client JSON -> decode_content / decode_simple_messages -> canonical parts

Tolerant of the shapes clients actually send: a plain string; OpenAI parts
(`text`, `image_url` with a string or `{url}`); AI SDK style image parts
(`{"type": "image", "image": url or base64, "mediaType"}`). Every error
names the field to fix. Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from typing import Any

from ..canonical import ImagePart, Message, Part, TextPart
from ..errors import BadRequest

SIMPLE_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def require_object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object, for example {\"messages\": [...]}")
    return body


def require_messages(body: dict, param: str = "messages") -> list:
    messages = body.get(param)
    if messages is None:
        raise BadRequest(f"'{param}' is required: a non-empty array of {{role, content}} objects", param=param)
    if not isinstance(messages, list):
        raise BadRequest(f"'{param}' must be an array of {{role, content}} objects", param=param)
    if not messages:
        raise BadRequest(f"'{param}' must not be empty", param=param)
    return messages


def decode_model(body: dict, default: str) -> str:
    model = body.get("model")
    if model is None:
        return default
    if not isinstance(model, str) or not model.strip():
        # An empty name is a mistake to report, not a request for the default model.
        raise BadRequest("'model' must be a non-empty string naming a model from GET /v1/models "
                         "(leave it out for the default model)", param="model")
    return model


def decode_image(value: Any, where: str, media_type: str | None = None, detail: str | None = None) -> ImagePart:
    if isinstance(value, dict):
        detail = value.get("detail", detail)
        value = value.get("url")
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{where} must carry an image URL (https:// or data:)", param=where)
    if not value.startswith(("http://", "https://", "data:")):
        # bare base64, as AI SDK style parts may send it
        value = f"data:{media_type or 'image/png'};base64,{value}"
    return ImagePart(value, media_type, detail)


def decode_part(part: Any, where: str) -> Part:
    if isinstance(part, str):
        return TextPart(part)
    if not isinstance(part, dict):
        raise BadRequest(f"{where} must be a content part object like {{\"type\": \"text\", \"text\": \"...\"}}", param=where)
    kind = part.get("type")
    if kind in ("text", "input_text"):
        text = part.get("text")
        if not isinstance(text, str):
            raise BadRequest(f"{where}.text must be a string", param=f"{where}.text")
        return TextPart(text)
    if kind == "refusal":  # an assistant's earlier refusal, sent back as history
        refusal = part.get("refusal")
        if not isinstance(refusal, str):
            raise BadRequest(f"{where}.refusal must be a string", param=f"{where}.refusal")
        return TextPart(refusal)
    if kind in ("image_url", "input_image"):
        return decode_image(part.get("image_url", part.get("url")), f"{where}.image_url", detail=part.get("detail"))
    if kind == "image":
        return decode_image(part.get("image", part.get("url")), f"{where}.image", part.get("mediaType") or part.get("mimeType"))
    raise BadRequest(f"{where}.type {kind!r} is not supported; use 'text' or 'image_url'", param=f"{where}.type")


def decode_content(content: Any, where: str) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    if isinstance(content, list):
        return tuple(decode_part(part, f"{where}[{i}]") for i, part in enumerate(content))
    if content is None:
        return ()
    raise BadRequest(f"{where} must be a string or an array of content parts", param=where)


def decode_simple_messages(messages: list, param: str = "messages") -> list[Message]:
    """`[{role, content}]` with system / developer / user / assistant roles."""
    decoded = []
    for index, message in enumerate(messages):
        where = f"{param}[{index}]"
        if not isinstance(message, dict):
            raise BadRequest(f"{where} must be an object with 'role' and 'content'", param=where)
        role = message.get("role")
        if not isinstance(role, str) or role not in SIMPLE_ROLES:
            raise BadRequest(
                f"{where}.role must be one of {', '.join(sorted(SIMPLE_ROLES))}, got {role!r}", param=f"{where}.role"
            )
        if "content" not in message:
            raise BadRequest(f"{where}.content is required", param=f"{where}.content")
        decoded.append(Message(SIMPLE_ROLES[role], decode_content(message["content"], f"{where}.content")))
    return decoded
