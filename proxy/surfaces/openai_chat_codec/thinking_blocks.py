"""Signed thinking on the Chat Completions surface: LiteLLM's `thinking_blocks` field (pure).

    ReasoningPart / reasoning-end provider_metadata -> thinking_block  -> message.thinking_blocks[]
                                                                          (delta.thinking_blocks[] when streaming)
    assistant message `thinking_blocks` (sent back) -> decode_thinking_blocks -> ReasoningParts

With extended thinking on, Anthropic rejects a tool loop unless the assistant
turn sent back starts with its thinking blocks, signatures unchanged
(docs/anthropic.md, "Thinking round trip"). `reasoning_content` holds only the
text, so the blocks also go out in the non-standard field LiteLLM uses:
`{"type": "thinking", "thinking": "...", "signature": "..."}` and
`{"type": "redacted_thinking", "data": "..."}`. Standard clients ignore the
field; clients that send the assistant message back as they received it
(`message.model_dump()` in the openai SDK) return it.

Streamed, each block goes out whole in the chunk that closes its reasoning
block, as `delta.thinking_blocks: [{"index": n, ...}]`. The `index` is what
lets the openai SDK's `ChatCompletionStreamState` (`get_final_completion`)
merge the chunks into one list: its accumulate_delta merges lists of objects
by `index`, and raises on a second list of objects without one. Decoding
ignores `index`.

The surface does not read any provider's metadata: a reasoning block that
carries provider_metadata goes out with the whole mapping packed into one
opaque string (canonical/opaque.py) in the block's own slot, `signature`
(`data` for a block without text, LiteLLM's `redacted_thinking`), and comes
back unpacked to the same mapping; the provider that wrote it reads its part
(Anthropic its signature or redacted data, Gemini its thought signature).
A signature that is not such a string was not made here and is a 400.
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from typing import Any, Mapping

from ...canonical import ReasoningPart
from ...canonical.opaque import pack, unpack
from ...errors import BadRequest

FIELD = "thinking_blocks"


def thinking_block(metadata: Mapping[str, Any] | None, text: str) -> dict | None:
    """The `thinking_blocks` entry for a reasoning block, or None when it carries nothing to send back."""
    if not metadata:
        return None
    if not text:
        return {"type": "redacted_thinking", "data": pack(metadata)}
    return {"type": "thinking", "thinking": text, "signature": pack(metadata)}


def thinking_blocks(parts: Any) -> list[dict]:
    """The entries for the reasoning that carries metadata among a finished answer's parts, in order."""
    return [block for part in parts if isinstance(part, ReasoningPart)
            and (block := thinking_block(part.provider_metadata, part.text)) is not None]


def _unpacked(blob: str, field: str) -> dict:
    try:
        return unpack(blob)
    except ValueError:
        raise BadRequest(f"{field} must be sent back unchanged, as this server sent it", param=field) from None


def decode_thinking_blocks(blocks: Any, where: str) -> list[ReasoningPart]:
    """An assistant message's `thinking_blocks` -> ReasoningParts with the metadata they carried."""
    if not isinstance(blocks, list):
        raise BadRequest(f"{where} must be an array of thinking blocks", param=where)
    parts = []
    for number, block in enumerate(blocks):
        at = f"{where}[{number}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "thinking":
            text, signature = block.get("thinking", ""), block.get("signature")
            if not isinstance(text, str):
                raise BadRequest(f"{at}.thinking must be a string", param=f"{at}.thinking")
            if signature is not None and not isinstance(signature, str):
                raise BadRequest(f"{at}.signature must be a string, sent back unchanged", param=f"{at}.signature")
            # A block without a signature is plain reasoning: providers that verify drop it.
            parts.append(ReasoningPart(text, _unpacked(signature, f"{at}.signature") if signature else None))
        elif kind == "redacted_thinking":
            data = block.get("data")
            if not isinstance(data, str) or not data:
                raise BadRequest(f"{at}.data must be the redacted thinking's data, unchanged", param=f"{at}.data")
            parts.append(ReasoningPart("", _unpacked(data, f"{at}.data")))
        else:
            raise BadRequest(f"{at} must be {{\"type\": \"thinking\", \"thinking\", \"signature\"}} or "
                             f"{{\"type\": \"redacted_thinking\", \"data\"}}", param=f"{at}.type")
    return parts
