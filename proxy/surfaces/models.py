"""GET /v1/models and /v1/models/<id>: one listing for every client.

OpenAI shape (`object: list`, model objects) plus the Workbench
`capabilities` on each model: OpenAI SDKs ignore the extra field and the
Workbench UI reads `data` (docs/workbench.md, "Models"). Errors (unknown model,
missing or wrong API key) are OpenAI error objects, as on /v1/chat/completions.
"""
from __future__ import annotations

from flask import Blueprint, Response

from ..errors import ModelNotFound, ProxyError
from .api_keys import require_api_key
from .common import error_response, json_response, switchboard
from .openai_chat_codec import error_body as openai_error_body

blueprint = Blueprint("models", __name__)
blueprint.before_request(require_api_key)  # /v1/* needs a key when keys are configured


@blueprint.errorhandler(ProxyError)
def handle_error(error: ProxyError) -> Response:
    return error_response(error, openai_error_body)


@blueprint.get("/v1/models")
def list_models() -> Response:
    return json_response({"object": "list", "data": [route.describe() for route in switchboard().router.models()]})


@blueprint.get("/v1/models/<path:model_id>")
def get_model(model_id: str) -> Response:
    route = switchboard().router.routes.get(model_id)
    if route is None:
        raise ModelNotFound(f"the model {model_id!r} does not exist; GET /v1/models lists the models", param="model")
    return json_response(route.describe())
