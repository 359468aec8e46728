"""UI message chunks -> the plain text stream of `TextStreamChatTransport`.

    chunks(...) -> text_of(chunk) -> UTF-8 text pieces (Content-Type: text/plain)
    guarded events -> encode_text -> the same, in one call

The text protocol carries text only: no reasoning, tools or data, and no
error channel. A failure after the first byte is therefore written into the
text as a visible `[Error: ...]` line, so the reader sees the answer is cut
short rather than mistaking it for a complete one.
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from ...canonical import Event
from .encode import chunks


def text_of(chunk: dict) -> bytes | None:
    kind = chunk["type"]
    if kind == "text-delta":
        return chunk["delta"].encode()
    if kind == "error":
        return f"\n\n[Error: {chunk['errorText']}]".encode()
    return None


def encode_text(events: Iterable[Event], message_id: str = "text") -> Iterator[bytes]:
    for chunk in chunks(events, message_id):
        piece = text_of(chunk)
        if piece:
            yield piece
