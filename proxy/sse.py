"""Server-Sent Events: the only code that frames or parses SSE.

Surfaces frame their output with `encode`/`encode_json`; providers read
upstream streams with `read_events`, which feeds sseclient-py from
`raw.read1()` so that close-delimited upstreams are not held back by
read-size buffering (docs/deployment.md, "Reading upstream SSE").

Pure: imports neither flask nor requests (a response object is duck-typed).
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import orjson
from sseclient import Event, SSEClient

HEARTBEAT = b": keepalive\n\n"
DONE = b"data: [DONE]\n\n"
READ_SIZE = 65536

__all__ = ["HEARTBEAT", "DONE", "Event", "encode", "encode_json", "dumps", "read_events", "parse"]


def dumps(obj: Any) -> bytes:
    """Compact JSON, UTF-8, non-ASCII kept as is (what every client accepts)."""
    return orjson.dumps(obj)


def encode(data: bytes | str, event: str | None = None) -> bytes:
    """One SSE event. `data` must not contain newlines (JSON never does)."""
    if isinstance(data, str):
        data = data.encode()
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def encode_json(obj: Any, event: str | None = None) -> bytes:
    return encode(orjson.dumps(obj), event)


class EventTooLarge(ValueError):
    """More bytes than the limit arrived without completing an event."""


class Budget:
    """Bytes read since the last complete event, against a limit: the reader
    of the events sets `used` back to 0 at each one (no extra generator layer
    per event)."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


def iter_raw(response: Any, budget: Budget | None = None) -> Iterator[bytes]:
    """Yield bytes as soon as they arrive from a streamed requests response.

    `read1` returns whatever is available (up to READ_SIZE) instead of
    waiting for a full buffer; `decode_content=True` undoes gzip. With a
    `budget`, more than its limit without the end of an event raises
    EventTooLarge instead of growing the parser's buffer without bound.
    """
    raw = response.raw
    while True:
        chunk = raw.read1(READ_SIZE, decode_content=True)
        if not chunk:
            return
        if budget is not None:
            budget.used += len(chunk)
            if budget.used > budget.limit:
                raise EventTooLarge(f"more than {budget.limit} bytes without the end of an event")
        yield chunk


def events_of(chunks: Iterable[bytes]) -> Iterator[Event]:
    """SSE events (`.event`, `.data`, `.id`) of a byte stream."""
    return SSEClient(chunks).events()


def read_events(response: Any) -> Iterator[Event]:
    """SSE events of a streamed response, unbounded (providers read theirs
    through providers/http.py SSEReader, which keeps each event to a Budget)."""
    return events_of(iter_raw(response))


def parse(chunks: Iterable[bytes] | bytes) -> list[Event]:
    """Parse SSE bytes already in memory (tests, golden files, transcripts)."""
    if isinstance(chunks, bytes):
        chunks = [chunks]
    return list(SSEClient(chunks).events())
