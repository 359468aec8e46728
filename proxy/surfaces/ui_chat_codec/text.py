"""Canonical events -> the plain text stream of `TextStreamChatTransport`.

    guarded events -> encode_text -> UTF-8 text chunks (Content-Type: text/plain)

The text protocol carries text only: no reasoning, tools or data, and no
error channel. A failure after the first byte is therefore written into the
text as a visible `[Error: ...]` line, so the reader sees the answer is cut
short rather than mistaking it for a complete one.
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from ...canonical import Event
from ...errors import UpstreamError
from .encode import error_text


def encode_text(events: Iterable[Event]) -> Iterator[bytes]:
    for event in events:
        kind = event.type
        if kind == "text-delta":
            if event.delta:
                yield event.delta.encode()
        elif kind == "finish":
            return
        elif kind == "error":
            yield f"\n\n[Error: {error_text(event.error)}]".encode()
            return
    yield f"\n\n[Error: {error_text(UpstreamError('the upstream stream ended before it finished', code='stream_incomplete'))}]".encode()
