"""provider_metadata as one opaque string, for surfaces whose wire format has a
slot for it (pure).

    provider -> event.provider_metadata {"<provider>": {...}}
    surface encode -> pack(metadata) -> its own slot (a thinking block's signature, ...)
    surface decode -> unpack(slot)   -> provider_metadata, unchanged, for the provider

A surface never looks inside: only the provider that wrote a namespace reads
it. The string is `sbm1.` and the URL-safe base64 (no padding) of the
metadata's JSON, so it survives any client that keeps strings as they are.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, Mapping

import orjson

PREFIX = "sbm1."
MAX_PACKED = 1024 * 1024  # a client-sent blob larger than this is not ours


def pack(metadata: Mapping[str, Any]) -> str:
    data = orjson.dumps(dict(metadata), option=orjson.OPT_SORT_KEYS)
    return PREFIX + base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def unpack(blob: str) -> dict[str, Any]:
    """The metadata `pack` made; ValueError for anything else."""
    if not isinstance(blob, str) or not blob.startswith(PREFIX) or len(blob) > MAX_PACKED:
        raise ValueError("not a packed provider_metadata string")
    encoded = blob[len(PREFIX):]
    try:
        data = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        value = orjson.loads(data)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise ValueError("a packed provider_metadata string that does not decode") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ValueError("packed provider_metadata must map provider names to objects")
    return value
