"""Operator endpoints: GET /metrics (Prometheus) and the admin check that
/metrics and /v1/usage share.

    GET /metrics -> metrics.exposition() (every worker's values under gunicorn)

SWITCHBOARD_METRICS: `admin` (default: an admin key is required once keys
are configured), `open` (anyone; keep the port private), `off` (404).
"""
from __future__ import annotations

from flask import Blueprint, Response, request

from ..errors import AuthenticationFailed, NotFound, PermissionDenied, ProxyError
from ..request_context import require_caller
from .common import error_response, switchboard
from .openai_chat_codec import error_body as openai_error_body

blueprint = Blueprint("operations", __name__)

def require_admin() -> None:
    """Without configured keys everyone may; otherwise only `admin: true` keys."""
    if request.method == "OPTIONS":
        return
    gate = switchboard().gate
    if not gate.required:
        return
    policy = require_caller().policy  # 401 without a valid key
    if policy is None:
        raise AuthenticationFailed("an admin API key is required: send 'Authorization: Bearer <key>'")
    if not policy.admin:
        raise PermissionDenied(f"the key {policy.name!r} is not an admin key (admin: true in its keys: entry)",
                               code="admin_required")


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
