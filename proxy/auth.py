"""Client API keys: who is calling, decided once per request.

    request headers / Socket.IO auth -> presented_key() -> identify(api_keys, key)
        -> Caller (g.caller)   or   AuthenticationFailed (rendered by each surface in its own shape)

With `Settings.api_keys` empty (the default, SWITCHBOARD_API_KEYS unset)
every caller is let in anonymously and owns the shared scope "". Otherwise a
key must be presented as `Authorization: Bearer <key>`, `x-api-key: <key>`,
or in the Socket.IO handshake (`io(url, {auth: {token}})`).

`Caller.owner` scopes stored state (conversations, responses, blocks): a
digest of the key, never the key. Its form, `key:` + 32 hex digits of
SHA-256, is the one conversations were stored under before the caller was
unified, so records made then stay readable by their owner.
Pure: imports neither flask nor requests (headers are any mapping).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .errors import AuthenticationFailed
from .keys import KeyPolicy, KeyRing

HOW = "send 'Authorization: Bearer <key>' (or 'x-api-key: <key>') with one of the keys in SWITCHBOARD_API_KEYS"


@dataclass(slots=True, frozen=True)
class Caller:
    """Who is calling. `owner` is the store scope ("" when keys are not
    required); `key_id` a short non-secret fingerprint that is safe to log."""

    owner: str = ""
    key_id: str | None = None
    name: str | None = None  # the key's configured name (keys:), for logs and usage; never the key
    policy: "KeyPolicy | None" = None  # its models and limits (proxy/keys.py)


ANONYMOUS = Caller()


def owner_of(key: str) -> str:
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:32]


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization") or ""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def presented_key(headers: Mapping[str, str], auth: Any = None) -> str | None:
    """The key a client presented: Bearer, then x-api-key, then a Socket.IO
    `auth` payload ({token} as socket.io-client sends it, or {key})."""
    token = bearer_token(headers)
    if token:
        return token
    token = (headers.get("x-api-key") or "").strip()
    if token:
        return token
    if isinstance(auth, dict):
        for name in ("token", "key", "apiKey"):
            value = auth.get(name)
            if isinstance(value, str) and value.strip():
                value = value.strip()
                return value[7:].strip() if value[:7].lower() == "bearer " else value
    return None


def identify(api_keys: "KeyRing | Iterable[str]", key: str | None) -> Caller:
    """The Caller for a presented key; AuthenticationFailed says what to fix.
    With a KeyRing (the `keys:` list and SWITCHBOARD_API_KEYS) the caller
    carries the key's name and policy."""
    if isinstance(api_keys, KeyRing):
        if not api_keys:
            return ANONYMOUS
        if key is None:
            raise AuthenticationFailed(f"missing API key: {HOW}")
        policy = api_keys.find(key)
        if policy is None:
            raise AuthenticationFailed("invalid API key: it is not one of the keys this server accepts")
        owner = owner_of(key)
        return Caller(owner=owner, key_id="key-" + owner[4:16], name=policy.name, policy=policy)
    keys = list(api_keys)
    if not keys:
        return ANONYMOUS
    if key is None:
        raise AuthenticationFailed(f"missing API key: {HOW}")
    # compare every key in constant time, so timing does not tell which one nearly matched
    matched = False
    candidate = key.encode()
    for known in keys:
        matched |= hmac.compare_digest(candidate, known.encode())
    if not matched:
        raise AuthenticationFailed("invalid API key: it is not one of the keys this server accepts")
    owner = owner_of(key)
    return Caller(owner=owner, key_id="key-" + owner[4:16])
