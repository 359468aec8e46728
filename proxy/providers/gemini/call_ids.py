"""Tool call ids that carry a Gemini thought signature (docs/gemini.md, "Thought signatures").

    decode:  functionCall (+ thoughtSignature) -> with_signature(id, signature) -> ToolCall.id
    request: ToolCallPart.id / ToolResultPart.tool_call_id -> split_call_id -> (Gemini's id, signature)

Gemini 3 answers 400 when a replayed functionCall of the current turn lost its
`thoughtSignature`. The canonical path keeps it in provider_metadata, but an
OpenAI Chat Completions client sends back only what its format holds: the
tool call id, verbatim. So the signature also rides in the id, after
`__thought__`, in the URL-safe base64 alphabet (`+` -> `-`, `/` -> `_`, no
`=` padding): the id stays within `[A-Za-z0-9_-]`, which every provider
accepts as a tool call id (Anthropic requires exactly that alphabet).
Only canonical padded base64 is embedded, because only that maps back byte
for byte; any other signature stays in provider_metadata alone.
Ids Gemini supplied itself keep working: the part before the marker is the
id sent back to Gemini. Pure.
"""
from __future__ import annotations

import re

SYNTHETIC_ID_PREFIX = "call_gemini_"  # ids we made up for calls Gemini sent without one
SIGNATURE_MARKER = "__thought__"
_CANONICAL_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_TO_URL_SAFE = str.maketrans("+/", "-_")
_FROM_URL_SAFE = str.maketrans("-_", "+/")
_URL_SAFE_BASE64 = re.compile(r"[A-Za-z0-9_-]+")


def with_signature(call_id: str, signature: str | None) -> str:
    """`call_id` with the signature appended, when it can come back byte for byte."""
    if not signature or not _CANONICAL_BASE64.fullmatch(signature):
        return call_id
    return f"{call_id}{SIGNATURE_MARKER}{signature.translate(_TO_URL_SAFE).rstrip('=')}"


def split_call_id(call_id: str) -> tuple[str, str | None]:
    """(the id without the signature, the signature as Gemini sent it or None)."""
    base, marker, encoded = call_id.partition(SIGNATURE_MARKER)
    # a length of 1 mod 4 is no base64 at all: not a signature we embedded
    if not marker or not _URL_SAFE_BASE64.fullmatch(encoded) or len(encoded) % 4 == 1:
        return call_id, None
    signature = encoded.translate(_FROM_URL_SAFE)
    return base, signature + "=" * (-len(signature) % 4)


def is_synthetic_id(call_id: str) -> bool:
    """True for an id Switchboard made up: Gemini never saw it, so it is not sent back."""
    return call_id.startswith(SYNTHETIC_ID_PREFIX)
