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
EXPOSED_HEADERS = ["x-vercel-ai-ui-message-stream", "X-Request-Id", "Retry-After", "x-conversation-id",
                   "x-workflow-session-id"]


@dataclass
class Switchboard:
    """What the surfaces share: settings, the router, the store, the open
    chats of every surface, the chat runner's hooks, live Socket.IO chats."""

    settings: Any
    router: Any
    socket_chats: Any = None
    store: Any = None
    gate: Any = None  # per-key policy, limits, usage, metrics (gate.py)
    open_chats: Any = None
    chat_hooks: list = field(default_factory=list)  # run by proxy/chat.py start() for every chat
    surfaces: list = field(default_factory=list)  # registered chat surfaces (their error shapes)
    extras: dict = field(default_factory=dict)


def create_app(config: Mapping[str, Any] | None = None) -> "Flask":
    """Build the app. `config` overrides settings by name (see proxy/config.py)."""
    # Flask is imported here, not at the top: importing a pure module
    # (proxy.canonical, proxy.sse, the codecs) imports this package first,
    # and must not pull in flask.
    from flask import Flask, request
    from flask_cors import CORS
    from werkzeug.exceptions import HTTPException

    from . import logs, request_context
    from .chat import OpenChats, error_body_for
    from .config import Settings
    from .gate import Gate
    from .router import Router
    from .store import database_path, open_store
    from .surfaces import conversations, coze_routes, register_all, socket_chat
    from .surfaces.common import json_response
    from .usage import open_usage

    settings = Settings.load(config)
    logs.configure()
    app = Flask(__name__, instance_relative_config=True)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    store = open_store(settings, app.instance_path)
    board = Switchboard(settings, Router(settings, store=store))
    board.store = store
    board.open_chats = OpenChats()
    board.chat_hooks.append(conversations.record_named_conversation)
    board.chat_hooks.append(coze_routes.owner_hint)
    board.gate = Gate(settings, board.router, open_usage(settings, database_path(settings, app.instance_path)))
    logs.init_app(app, settings)
    app.extensions["switchboard"] = board
    request_context.init_app(app, settings)

    register_all(app)

    CORS(
        app,
        origins=settings.cors_origins,
        expose_headers=EXPOSED_HEADERS,
        allow_private_network=settings.cors_private_network,
        max_age=600,
    )
    socket_chat.init_app(app, board)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        from .errors import ProxyError

        status = error.code or 500
        kind = "not_found_error" if status == 404 else "invalid_request_error"
        code = error.name.lower().replace(" ", "_")
        shape = error_body_for(app, request.path)
        if shape is not None:
            failure = ProxyError(error.description or error.name, status=status, code=code)
            failure.type = kind
            return json_response(shape(failure), status)
        body = {"error": {"message": error.description, "type": kind, "param": None, "code": code}}
        return json_response(body, status)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        from .errors import ProxyError

        log.exception("unhandled error")
        failure = ProxyError("internal server error", code="internal_error")
        shape = error_body_for(app, request.path)
        if shape is not None:
            return json_response(shape(failure), 500)
        return json_response({"error": failure.to_dict()}, 500)

    return app
