"""Where an OpenAI-compatible upstream is and whether it needs a key (pure).

    provider.py -> completions_url(base_url), is_official(base_url), needs_key(credentials)
"""
from __future__ import annotations

from urllib.parse import urlsplit

from ...config import ProviderSettings

DEFAULT_BASE_URL = "https://api.openai.com/v1"
OFFICIAL_HOST = "api.openai.com"


def completions_url(base_url: str | None) -> str:
    """`https://api.openai.com/v1` -> `.../v1/chat/completions` (a full URL is kept)."""
    base = (base_url or DEFAULT_BASE_URL).rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


def is_official(base_url: str | None) -> bool:
    return (urlsplit(base_url or DEFAULT_BASE_URL).hostname or "") == OFFICIAL_HOST


def needs_key(credentials: ProviderSettings) -> bool:
    """api.openai.com needs a key; a declared compatible server may not."""
    if credentials.options.get("keyless"):
        return False
    if credentials.options.get("key_required"):
        return True
    return is_official(credentials.base_url)
