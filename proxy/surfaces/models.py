"""GET /v1/models and /v1/models/<id>: one listing for every client.

OpenAI shape (`object: list`, model objects) plus the Workbench
`capabilities` on each model: OpenAI SDKs ignore the extra field and the
Workbench UI reads `data` (docs/workbench.md, "Models"). Presets are listed too
(`preset: true`, with their model's capabilities). Errors (unknown model,
missing or wrong API key) are OpenAI error objects, as on /v1/chat/completions.
"""
from __future__ import annotations

from flask import Blueprint, Response, g

from ..errors import ProxyError
from ..request_context import require_caller
from .common import error_response, json_response, switchboard
from .openai_chat_codec import error_body as openai_error_body

blueprint = Blueprint("models", __name__)


@blueprint.before_request
def require_key() -> None:
    # /v1/models needs a key when keys are configured, unless the deployment
    # opened it (SWITCHBOARD_PUBLIC_MODELS) for model pickers that ask first.
    if not switchboard().settings.public_models:
        require_caller()


@blueprint.errorhandler(ProxyError)
def handle_error(error: ProxyError) -> Response:
    return error_response(error, openai_error_body)


@blueprint.get("/v1/models")
def list_models() -> Response:
    listing = switchboard().router.listing()
    caller = g.get("caller")
    policy = getattr(caller, "policy", None)
    if policy is not None and policy.models is not None:  # a key sees the models it may use
        listing = [model for model in listing if policy.allows(model["id"])]
    return json_response({"object": "list", "data": listing})


@blueprint.get("/v1/models/<path:model_id>")
def get_model(model_id: str) -> Response:
    """A listed model, an alias, a preset, or a `vendor/model` id that would answer."""
    return json_response(switchboard().router.describe(model_id))
