"""Keeping provider keys out of everything a client or a log sees (pure).

    upstream error text (status bodies, in-band `error` events, lines that are
    not JSON, transport failures) -> redact(text, secrets) -> ProxyError message
    ProxyError leaving a provider -> scrub_error(error, secrets) -> the same error, its text redacted

One mechanism for every provider: the shared stream helper
(providers/http.py `open_upstream`) passes every error an upstream call
produces through `scrub_error` with the key of that call, so a decoder that
forgets to redact cannot leak it. A key is also replaced in the encodings an
upstream may echo it in: URL-quoted, and JSON-escaped (`\\/` included).
"""
from __future__ import annotations

import json
from typing import Iterable
from urllib.parse import quote

MASK = "[redacted]"
MIN_SECRET = 6  # shorter strings would redact ordinary words


def _forms(secret: str) -> set[str]:
    escaped = json.dumps(secret)[1:-1]
    forms = {secret, quote(secret, safe=""), quote(secret), escaped, escaped.replace("/", "\\/")}
    return {form for form in forms if len(form) >= MIN_SECRET}


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret (and its URL-quoted / JSON-escaped forms) masked."""
    if not text:
        return text
    for secret in secrets:
        if not secret or len(secret) < MIN_SECRET:
            continue
        for form in sorted(_forms(secret), key=len, reverse=True):
            if form in text:
                text = text.replace(form, MASK)
    return text


def scrub_error(error, secrets: Iterable[str | None]):
    """Redact a ProxyError's message, code and param in place (and return it)."""
    secrets = tuple(s for s in secrets if s)
    if not secrets:
        return error
    for name in ("message", "code", "param"):
        value = getattr(error, name, None)
        if isinstance(value, str):
            cleaned = redact(value, secrets)
            if cleaned != value:
                setattr(error, name, cleaned)
    if error.args and isinstance(error.args[0], str):
        error.args = (redact(error.args[0], secrets), *error.args[1:])
    return error
