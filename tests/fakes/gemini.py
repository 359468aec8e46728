"""Gemini's gatekeeping on top of FakeUpstream (docs/gemini.md).

    FakeUpstream.reply(gemini(Reply...)) -> checks path, key and body like the
    real API, then answers with the scripted reply (or Gemini's error body)

Checks what the real API checks and an adapter could get wrong: the route
(`/v1beta/models/{model}:streamGenerateContent` with `alt=sse`, or
`:generateContent`), the `x-goog-api-key` header (or `key` query parameter;
a bad key is 400 INVALID_ARGUMENT / API_KEY_INVALID, not 401), roles other
than user/model, a `functionResponse.response` that is not an object, schema
keywords Gemini rejects, empty object `properties`, and `thinkingBudget`
together with `thinkingLevel`. With `require_signatures=True` it also answers
400 like Gemini 3 when a replayed functionCall of the current turn lost its
`thoughtSignature` (opt-in: the older models the other tests imitate accept
unsigned calls).
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable
from urllib.parse import parse_qs

from .upstream import TRANSCRIPTS, Received, Reply

KEY = "test-key"
ROUTE = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>streamGenerateContent|generateContent)$")
REJECTED_SCHEMA_KEYS = ("$schema", "$ref", "$defs", "additionalProperties", "const", "examples")


def error_body(code: int, status: str, message: str, details: list | None = None) -> bytes:
    """Google's RPC error, pretty-printed like the real API."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return (json.dumps({"error": error}, indent=2) + "\n").encode()


def error_reply(code: int, status: str, message: str, details: list | None = None) -> Reply:
    return Reply.json(None, status=code, raw=error_body(code, status, message, details))


def transcript_json(name: str, status: int) -> Reply:
    return Reply.json(None, status=status, raw=(TRANSCRIPTS / "gemini" / name).read_bytes())


def _schema_problem(schema: Any, where: str) -> str | None:
    if not isinstance(schema, dict):
        return None
    for key in REJECTED_SCHEMA_KEYS:
        if key in schema:
            return f'Invalid JSON payload received. Unknown name "{key}" at \'{where}\': Cannot find field.'
    if schema.get("type") in ("object", "OBJECT") and "properties" in schema and not schema["properties"]:
        return f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type"
    for name, sub in (schema.get("properties") or {}).items():
        found = _schema_problem(sub, f"{where}.properties[{name}]")
        if found:
            return found
    for index, sub in enumerate(schema.get("anyOf") or ()):
        found = _schema_problem(sub, f"{where}.any_of[{index}]")
        if found:
            return found
    return _schema_problem(schema.get("items"), f"{where}.items")


def body_problem(body: Any) -> str | None:
    """What the real API would reject in a GenerateContentRequest, or None."""
    if not isinstance(body, dict) or not body.get("contents"):
        return "* GenerateContentRequest.contents: contents is not specified"
    for content in body["contents"]:
        if content.get("role") not in ("user", "model"):
            return "Please use a valid role: user, model."
        for part in content.get("parts") or ():
            response = (part.get("functionResponse") or {}).get("response", {})
            if "functionResponse" in part and not isinstance(response, dict):
                return 'Invalid value at \'contents.parts.function_response.response\' (type.googleapis.com/google.protobuf.Struct)'
    for tool in body.get("tools") or ():
        for index, declaration in enumerate(tool.get("functionDeclarations") or ()):
            found = _schema_problem(declaration.get("parameters"), f"tools[0].function_declarations[{index}].parameters")
            if found:
                return found
    thinking = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
    if "thinkingBudget" in thinking and "thinkingLevel" in thinking:
        return "You can only set only one of thinking budget and thinking level."
    return None


def signature_problem(body: dict) -> str | None:
    """Gemini 3's rule: in the current turn (the model steps after the last
    user text), the first functionCall part of each step carries its
    thoughtSignature (https://ai.google.dev/gemini-api/docs/thought-signatures)."""
    contents = body["contents"]
    start = max((i for i, c in enumerate(contents)
                 if c["role"] == "user" and any("text" in p for p in c.get("parts") or ())), default=-1)
    for position, content in enumerate(contents[start + 1:], start + 1):
        calls = [part for part in content.get("parts") or () if "functionCall" in part]
        if content["role"] == "model" and calls and not calls[0].get("thoughtSignature"):
            return (f"Function call is missing a thought_signature in functionCall parts. This is required for "
                    f"tools to work correctly. Additional data, function call `default_api:"
                    f"{calls[0]['functionCall'].get('name')}` , position {position}. Please refer to "
                    f"https://ai.google.dev/gemini-api/docs/thought-signatures for more details.")
    return None


def gemini(reply: Reply | Callable[[Received], Reply], key: str = KEY,
           require_signatures: bool = False) -> Callable[[Received], Reply]:
    """Wrap a scripted reply with the real API's checks."""

    def answer(received: Received) -> Reply:
        match = ROUTE.match(received.path)
        if received.method != "POST" or not match:
            return error_reply(404, "NOT_FOUND", f"Requested entity was not found: {received.path}")
        query = parse_qs(received.query)
        if match["method"] == "streamGenerateContent" and query.get("alt") != ["sse"]:
            return error_reply(400, "INVALID_ARGUMENT", "this fake serves streamGenerateContent only with alt=sse")
        given = received.headers.get("X-Goog-Api-Key") or (query.get("key") or [None])[0]
        if given != key:
            return transcript_json("error_api_key_invalid.json", 400)
        try:
            problem = body_problem(received.json)
            if problem is None and require_signatures:
                problem = signature_problem(received.json)
        except ValueError:
            problem = "Invalid JSON payload received."
        if problem:
            return error_reply(400, "INVALID_ARGUMENT", problem)
        return reply(received) if callable(reply) else reply

    return answer
