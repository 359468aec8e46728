"""The `before_request` hook that puts proxy/auth.py in front of a blueprint.

    request -> require_api_key() -> g.caller   (or AuthenticationFailed -> the
    blueprint's own error handler renders a 401 in its protocol's shape)

One line per protected blueprint: `blueprint.before_request(require_api_key)`.
"""
from __future__ import annotations

from flask import g, request

from ..auth import authenticate
from .common import switchboard


def require_api_key() -> None:
    if request.method == "OPTIONS":  # CORS preflights carry no credentials
        return
    g.caller = authenticate(switchboard().gate.keys, request.headers)
