"""Opaque strings that carry provider data through a Responses client and back (pure).

    ReasoningEnd / ReasoningPart provider_metadata -> encrypted_from_metadata -> reasoning `encrypted_content`
    `encrypted_content` sent back -> metadata_from_encrypted -> provider_metadata, unchanged

Anthropic verifies its thinking signatures and Gemini its thought
signatures when a conversation continues; a Responses client keeps them only
in the one field the protocol gives for that, `encrypted_content`. The
string is the canonical packing (proxy/canonical/opaque.py): opaque to
clients, not secret (it holds the providers' own signatures). A string we
did not make (another server's encrypted reasoning) is kept as it is under
the key "responses", so it goes back out unchanged; providers ignore it.
A tool call's provider_metadata goes in the function_call item's extension
field `switchboard:provider_metadata`, packed the same way. A compaction
summary travels in the same packing, under its own key.
"""
from __future__ import annotations

from typing import Any, Mapping

from ...canonical.opaque import pack, unpack

__all__ = ["pack", "unpack", "CALL_METADATA", "FOREIGN", "COMPACTION"]

CALL_METADATA = "switchboard:provider_metadata"  # extension field of function_call items
FOREIGN = "responses"  # provider_metadata key for encrypted content we did not make
COMPACTION = "switchboard_compaction"


def metadata_from_encrypted(text: str) -> dict:
    """provider_metadata for a reasoning item's `encrypted_content`."""
    try:
        return unpack(text)
    except ValueError:
        return {FOREIGN: {"encrypted_content": text}}


def encrypted_from_metadata(metadata: Mapping[str, Any] | None) -> str | None:
    if not metadata:
        return None
    foreign = metadata.get(FOREIGN)
    if len(metadata) == 1 and isinstance(foreign, Mapping) and isinstance(foreign.get("encrypted_content"), str):
        return foreign["encrypted_content"]  # sent back exactly as it came
    return pack(metadata)


def seal_summary(summary: str) -> str:
    return pack({COMPACTION: {"summary": summary}})


def unseal_summary(text: str) -> str | None:
    """The summary in a compaction item's `encrypted_content`, or None when it is not ours."""
    try:
        summary = unpack(text).get(COMPACTION, {}).get("summary")
    except ValueError:
        return None
    return summary if isinstance(summary, str) else None
