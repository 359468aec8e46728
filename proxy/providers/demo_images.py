"""Small PNG images the demo models "generate", drawn at start-up with zlib.

Served by the Workbench blueprint at /demo/images/<name>.png so that the
links the demo models stream are real, displayable images. Pure.
"""
from __future__ import annotations

import base64
import functools
import struct
import zlib

SIZE = 96


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(width: int, height: int, rows: list[bytes]) -> bytes:
    """RGB rows (3 bytes a pixel) -> PNG bytes."""
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")


def _sunset(x: int, y: int) -> tuple[int, int, int]:
    sun = (x - SIZE // 2) ** 2 + (y - SIZE * 2 // 3) ** 2 < (SIZE // 5) ** 2
    if y > SIZE * 2 // 3:  # sea
        return (20, 40 + y // 3, 90 + y // 2)
    if sun:
        return (255, 210, 60)
    return (255, 120 + y, 60 + y // 2)


def _mosaic(x: int, y: int) -> tuple[int, int, int]:
    tile = ((x // 12) + (y // 12)) % 3
    return ((40, 110, 220), (240, 240, 245), (30, 180, 120))[tile]


PAINTERS = {"sunset": _sunset, "mosaic": _mosaic}


@functools.cache
def render(name: str) -> bytes:
    """PNG bytes of a named demo image; KeyError for unknown names."""
    paint = PAINTERS[name]
    rows = [bytes(channel for x in range(SIZE) for channel in paint(x, y)) for y in range(SIZE)]
    return encode_png(SIZE, SIZE, rows)


def url(name: str, server_url: str | None) -> str:
    """Where a client can fetch the image: our route, or a data URL."""
    if server_url:
        return f"{server_url.rstrip('/')}/demo/images/{name}.png"
    return "data:image/png;base64," + base64.b64encode(render(name)).decode()
