"""Operator endpoints: GET /metrics (Prometheus) and the admin check that
/metrics and /v1/usage share.

    GET /metrics -> metrics.exposition() (every worker's values under gunicorn)

SWITCHBOARD_METRICS: `admin` (default: an admin key is required once keys
are configured), `open` (anyone; keep the port private), `off` (404).
"""
from __future__ import annotations

from flask import Blueprint, Response, g

from ..errors import AuthenticationFailed, NotFound, PermissionDenied, ProxyError
from .common import error_response, switchboard
from .openai_chat_codec import error_body as openai_error_body

blueprint = Blueprint("operations", __name__)

METRICS_MODES = ("open", "admin", "off")


def require_admin() -> None:
    """Without configured keys everyone may; otherwise only `admin: true` keys."""
    from flask import request

    if request.method == "OPTIONS":
        return
    gate = switchboard().gate
    if not gate.required:
        return
    policy = caller_policy()
    if policy is None:
        raise AuthenticationFailed("an admin API key is required: send 'Authorization: Bearer <key>'")
    if not policy.admin:
        raise PermissionDenied(f"the key {policy.name!r} is not an admin key (admin: true in its keys: entry)",
                               code="admin_required")


def caller_policy():
    from ..auth import authenticate

    caller = getattr(g, "caller", None)
    if caller is None:
        caller = g.caller = authenticate(switchboard().gate.keys, _headers())
    return caller.policy


def admit(surface: str, chat_request):
    """Until the chat runner: authenticate, then the gate's admission (403/429)."""
    import time
    import uuid

    from flask import g

    gate = switchboard().gate
    if gate.required:
        caller_policy()
    policy = getattr(getattr(g, "caller", None), "policy", None)
    g.chat_logged = True
    return gate.admit(policy, chat_request, surface, uuid.uuid4().hex, getattr(g, "started", None) or time.monotonic())


def open_tracked(ticket, router, chat_request):
    from ..errors import ProxyError

    try:
        return router.open(chat_request)
    except ProxyError as error:
        ticket.finish(None, False, None, error)
        raise


def _headers():
    from flask import request

    return request.headers


@blueprint.errorhandler(ProxyError)
def handle_error(error: ProxyError) -> Response:
    return error_response(error, openai_error_body)


@blueprint.get("/metrics")
def prometheus() -> Response:
    from .. import metrics

    mode = switchboard().settings.metrics
    if mode == "off":
        raise NotFound("metrics are off (SWITCHBOARD_METRICS=off)")
    if mode == "admin":
        require_admin()
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)
