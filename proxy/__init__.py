"""Switchboard: one Flask server in front of every LLM provider.

create_app() builds the app: settings -> router (providers) -> surfaces
(blueprints and the Socket.IO fallback) -> CORS. See DESIGN in the README.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from flask import Flask

__version__ = "0.1.0"

log = logging.getLogger(__name__)

# Headers browser clients must be able to read on cross-origin responses.
EXPOSED_HEADERS = ["x-vercel-ai-ui-message-stream", "X-Request-Id", "Retry-After"]


@dataclass
class Switchboard:
    """What the surfaces share: settings, the router, the store, live Socket.IO chats."""

    settings: Any
    router: Any
    socket_chats: Any = None
    store: Any = None
    extras: dict = field(default_factory=dict)


def create_app(config: Mapping[str, Any] | None = None) -> "Flask":
    """Build the app. `config` overrides settings by name (see proxy/config.py)."""
    # Flask is imported here, not at the top: importing a pure module
    # (proxy.canonical, proxy.sse, the codecs) imports this package first,
    # and must not pull in flask.
    from flask import Flask
    from flask_cors import CORS
    from werkzeug.exceptions import HTTPException

    from .config import Settings
    from .router import Router
    from .store import open_store
    from .surfaces import blueprints, socket_chat
    from .surfaces.common import json_response

    settings = Settings.load(config)
    # static_folder=None: the playground serves its own files (surfaces/playground.py)
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    board = Switchboard(settings, Router(settings))
    board.store = open_store(settings, app.instance_path)
    app.extensions["switchboard"] = board

    surfaces = blueprints()
    for blueprint in surfaces:
        app.register_blueprint(blueprint)
    board.extras["blueprint_names"] = [blueprint.name for blueprint in surfaces]  # the OpenAPI fragments

    CORS(
        app,
        origins=settings.cors_origins,
        expose_headers=EXPOSED_HEADERS,
        allow_private_network=True,
        max_age=600,
    )
    socket_chat.init_app(app, board)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        kind = "not_found_error" if error.code == 404 else "invalid_request_error"
        body = {"error": {"message": error.description, "type": kind, "param": None, "code": error.name.lower().replace(" ", "_")}}
        return json_response(body, error.code or 500)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        log.exception("unhandled error")
        body = {"error": {"message": "internal server error", "type": "api_error", "param": None, "code": "internal_error"}}
        return json_response(body, 500)

    return app
