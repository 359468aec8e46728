"""Opaque strings that carry provider data through a Responses client and back (pure).

    ReasoningEnd / ReasoningPart provider_metadata -> seal() -> reasoning item `encrypted_content`
    `encrypted_content` sent back -> unseal() -> provider_metadata

Anthropic verifies its thinking signatures and Gemini its thought
signatures when a conversation continues; a Responses client keeps them only
in the one field the protocol gives for that, `encrypted_content`. The
string is versioned, URL-safe base64 of JSON: opaque to clients, not secret
(the data is the provider's own signatures, which are not secret either).
A string we did not make (another server's encrypted reasoning) is kept as
it is under the key "responses", so it is never lost; providers ignore it.
The same envelope holds a compaction summary (`compaction` items).
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, Mapping

import orjson

PREFIX = "sb1."
FOREIGN = "responses"  # provider_metadata key for encrypted content we did not make


def seal(value: Mapping[str, Any]) -> str:
    return PREFIX + base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def unseal(text: str) -> dict | None:
    """The mapping sealed in `text`, or None when `text` is not ours."""
    if not text.startswith(PREFIX):
        return None
    payload = text[len(PREFIX):]
    try:
        value = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    return value if isinstance(value, dict) else None


def metadata_from_encrypted(text: str) -> dict:
    """provider_metadata for a reasoning item's `encrypted_content`."""
    value = unseal(text)
    if value is not None and isinstance(value.get("provider_metadata"), dict):
        return value["provider_metadata"]
    return {FOREIGN: {"encrypted_content": text}}


def encrypted_from_metadata(metadata: Mapping[str, Any] | None) -> str | None:
    if not metadata:
        return None
    foreign = metadata.get(FOREIGN)
    if len(metadata) == 1 and isinstance(foreign, Mapping) and isinstance(foreign.get("encrypted_content"), str):
        return foreign["encrypted_content"]  # sent back exactly as it came
    return seal({"provider_metadata": dict(metadata)})
