"""Client API keys: who may use the /v1/* surfaces.

    request headers -> authenticate(settings.api_keys, headers) -> Caller | AuthenticationFailed

With `Settings.api_keys` empty (the default, SWITCHBOARD_API_KEYS unset)
every caller is let in anonymously. Otherwise `Authorization: Bearer <key>`
must carry one of the keys. The Caller returned is what later features hang
off (per-key scoping of stored conversations, per-key model lists).
Blueprints hook it in with surfaces/api_keys.py; the error is rendered by
each blueprint in its own protocol's shape.
Pure: imports neither flask nor requests (headers are any mapping).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Mapping

from .errors import AuthenticationFailed
from .keys import KeyPolicy, KeyRing


@dataclass(slots=True, frozen=True)
class Caller:
    """Who is calling: `key_id` is a short, non-secret fingerprint of the key
    (safe to store and log), None when keys are not required."""

    key_id: str | None = None
    name: str | None = None  # the key's configured name (keys:), for logs and usage
    policy: "KeyPolicy | None" = None  # its models and limits (proxy/keys.py)


ANONYMOUS = Caller()


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization") or ""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def fingerprint(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def authenticate(api_keys: "KeyRing | Iterable[str]", headers: Mapping[str, str]) -> Caller:
    if not isinstance(api_keys, KeyRing):
        from .keys import load_keys

        api_keys = load_keys(None, list(api_keys))
    if not api_keys:
        return ANONYMOUS
    token = bearer_token(headers)
    if token is None:
        raise AuthenticationFailed(
            "missing API key: send 'Authorization: Bearer <key>' with one of the keys in SWITCHBOARD_API_KEYS"
        )
    policy = api_keys.find(token)
    if policy is None:
        raise AuthenticationFailed("invalid API key: it is not one of the keys this server accepts")
    return Caller(fingerprint(token), policy.name, policy)
