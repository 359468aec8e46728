"""Switchboard: one Flask server in front of every LLM provider.

    create_app()                      the stand-alone server (wsgi.py, app.py)
    Switchboard(app, url_prefix=...)  the same, mounted inside an existing Flask app
    ext = Switchboard(); ext.init_app(app, url_prefix=...)   (app factories)

init_app: settings (defaults, YAML, environment, app.config SWITCHBOARD_*)
-> router (providers) -> store -> one `switchboard` blueprint holding every
surface under the prefix (its request hooks, error handlers, CORS and body
limit apply to its own routes only) -> the Socket.IO fallback at
<prefix>/socket.io. The shared state is a Board in app.extensions["switchboard"].
"""
from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from flask import Flask

__version__ = "0.1.0"

log = logging.getLogger(__name__)

# The apps Switchboard was set up on in this process, for the server glue (proxy/serving.py: a
# stopping gunicorn worker ends their streams). Weakly held: an app a test
# drops is not kept alive here.
APPS: "weakref.WeakSet[Flask]" = weakref.WeakSet()

# Headers browser clients must be able to read on cross-origin responses.
EXPOSED_HEADERS = ["x-vercel-ai-ui-message-stream", "X-Request-Id", "Retry-After", "x-conversation-id",
                   "x-workflow-session-id"]


@dataclass
class Board:
    """What the surfaces share: settings, the router, the store, the open
    chats of every surface, the chat runner's hooks, live Socket.IO chats."""

    settings: Any
    router: Any
    socket_chats: Any = None
    store: Any = None
    open_chats: Any = None
    chat_hooks: list = field(default_factory=list)  # run by proxy/chat.py start() for every chat
    surfaces: list = field(default_factory=list)  # registered chat surfaces (their error shapes)
    blueprint_names: list = field(default_factory=list)  # every surface blueprint (its OpenAPI fragment)
    gate: Any = None  # per-key policies, limits, usage (gate.py)
    extras: dict = field(default_factory=dict)
    url_prefix: str = ""  # "" stand-alone, e.g. "/llm" inside a host app


def _http_error(error):
    """An HTTPException (404, 405, 413, ...) in the shape of the surface whose
    path was asked for, else as an OpenAI error object."""
    from flask import current_app, request

    from .chat import error_body_for
    from .errors import ProxyError
    from .surfaces.common import json_response

    status = error.code or 500
    kind = "not_found_error" if status == 404 else "invalid_request_error"
    code = error.name.lower().replace(" ", "_")
    shape = error_body_for(current_app, request.path)
    if shape is not None:
        failure = ProxyError(error.description or error.name, status=status, code=code)
        failure.type = kind
        return json_response(shape(failure), status)
    return json_response({"error": {"message": error.description, "type": kind, "param": None, "code": code}}, status)


def _unexpected_error(error: Exception):
    from flask import current_app, request

    from .chat import error_body_for
    from .errors import ProxyError
    from .surfaces.common import json_response

    log.exception("unhandled error")
    failure = ProxyError("internal server error", code="internal_error")
    shape = error_body_for(current_app, request.path)
    if shape is not None:
        return json_response(shape(failure), 500)
    return json_response({"error": failure.to_dict()}, 500)


def normalize_prefix(url_prefix: str | None) -> str:
    prefix = (url_prefix or "").strip()
    if not prefix or prefix == "/":
        return ""
    return "/" + prefix.strip("/")


class Switchboard:
    """The Flask extension: `Switchboard(app, url_prefix="/llm")` or
    `ext = Switchboard(); ext.init_app(app, url_prefix="/llm")`.

    `config` overrides settings by name (see proxy/config.py), after the
    YAML file, the environment and the host's app.config SWITCHBOARD_* keys.
    """

    def __init__(self, app: "Flask | None" = None, url_prefix: str = "", config: Mapping[str, Any] | None = None) -> None:
        self.url_prefix = url_prefix
        self.config = dict(config or {})
        self.board: Board | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: "Flask", url_prefix: str | None = None, config: Mapping[str, Any] | None = None,
                 *, whole_app: bool = False) -> Board:
        """Set Switchboard up on `app`. `whole_app` (create_app): the app is
        Switchboard's alone, so request hooks, CORS and error handlers are
        app-wide (also for a 404 outside any route)."""
        from flask import Blueprint, request
        from flask_cors import CORS
        from werkzeug.exceptions import HTTPException

        from . import logs, request_context
        from .chat import OpenChats
        from .config import Settings, settings_from_app_config
        from .gate import Gate
        from .router import Router
        from .store import database_path, open_store
        from .surfaces import conversations, coze_routes, register_all, socket_chat
        from .usage import open_usage

        if "switchboard" in app.extensions:
            raise RuntimeError("Switchboard is already set up on this app (one Switchboard per app)")
        prefix = normalize_prefix(self.url_prefix if url_prefix is None else url_prefix)
        settings = Settings.load({**settings_from_app_config(app.config), **self.config, **(config or {})})
        logs.configure()
        store = open_store(settings, app.instance_path)
        board = Board(settings, Router(settings, store=store), url_prefix=prefix)
        board.store = store
        board.open_chats = OpenChats()
        board.chat_hooks.append(conversations.record_named_conversation)
        board.chat_hooks.append(coze_routes.owner_hint)
        # Per-key models, limits and usage accounting for every chat (gate.py).
        board.gate = Gate(settings, board.router, open_usage(settings, database_path(settings, app.instance_path)))
        app.extensions["switchboard"] = board

        # One parent blueprint: the surfaces' routes, hooks and handlers stay
        # inside it, so a host app's own routes and error handlers are untouched.
        parent = Blueprint("switchboard", __name__, url_prefix=prefix or None)
        scope = app if whole_app else parent
        request_context.init_app(scope, settings)
        logs.init_app(scope, settings)
        register_all(app, parent)

        @parent.before_request
        def limit_body() -> None:
            # per request, not app.config["MAX_CONTENT_LENGTH"]: the host's limit stays the host's
            request.max_content_length = settings.max_body_bytes

        scope.register_error_handler(HTTPException, _http_error)
        scope.register_error_handler(Exception, _unexpected_error)
        CORS(scope, origins=settings.cors_origins, expose_headers=EXPOSED_HEADERS,
             allow_private_network=settings.cors_private_network, max_age=600)
        app.register_blueprint(parent)
        socket_chat.init_app(app, board, path=f"{prefix}/socket.io")
        self.board = board
        APPS.add(app)  # a stopping gunicorn worker ends its streams (proxy/serving.py)
        return board


def create_app(config: Mapping[str, Any] | None = None) -> "Flask":
    """The stand-alone server. `config` overrides settings by name (see proxy/config.py)."""
    # Flask is imported here, not at the top: importing a pure module
    # (proxy.canonical, proxy.sse, the codecs) imports this package first,
    # and must not pull in flask.
    from flask import Flask

    # static_folder=None: the playground serves its own files (surfaces/playground.py)
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    # The whole app is Switchboard's: every answer, also a 404 or 405 outside
    # any route or a preflight to it, is JSON in the shape of the surface
    # whose path was asked for, with CORS headers and an X-Request-Id.
    board = Switchboard(config=config).init_app(app, whole_app=True)
    app.config["MAX_CONTENT_LENGTH"] = board.settings.max_body_bytes
    return app
