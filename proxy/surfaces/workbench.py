"""The AI Workbench "Proxy GPT" HTTP surface (specs/workbench.md).

    GET /health, HEAD|GET /, POST /api/chat -> workbench_codec -> router -> SSE

The Socket.IO fallback lives in socket_chat.py; /v1/models in models.py.
"""
from __future__ import annotations

import collections

from flask import Blueprint, Response, request

from .. import __version__
from ..errors import ProxyError
from ..providers import demo_images
from ..streaming import guard, sse_response
from . import conversations, playground
from . import workbench_codec as codec
from .common import error_response, json_response, read_json, server_url, switchboard

blueprint = Blueprint("workbench", __name__)


@blueprint.errorhandler(ProxyError)
def handle_error(error: ProxyError) -> Response:
    return error_response(error, codec.error_body)


# The last /api/chat streams of each app, so /health can say how many still
# hold their upstream open (a stream sets finished_at when it releases it):
# how operators and the end-to-end tests see that departed clients stopped
# their upstreams.
RECENT_STREAMS = 256


def _recent_streams(board) -> collections.deque:
    return board.extras.setdefault("workbench_streams", collections.deque(maxlen=RECENT_STREAMS))


@blueprint.get("/health")
def health() -> Response:
    if request.args.get("format") == "json" or request.accept_mimetypes.best == "application/json":
        open_streams = sum(1 for s in list(_recent_streams(switchboard())) if s.finished_at is None)
        return json_response({"status": "ok", "version": __version__, "open_streams": open_streams})
    return Response("OK", mimetype="text/plain")


@blueprint.route("/", methods=["GET", "HEAD"])
def index() -> Response:
    if playground.wants_page():  # a browser: the playground (surfaces/playground.py)
        return playground.page()
    return json_response(
        {"name": "switchboard", "version": __version__, "status": "ok",
         "endpoints": ["/health", "/v1/models", "/api/chat", "/socket.io/"]},
        headers={"Vary": "Accept"},
    )


@blueprint.post("/api/chat")
def chat() -> Response:
    board = switchboard()
    body = read_json()
    chat_request = codec.decode_request(body, board.settings.default_model, server_url())
    turn = conversations.turn_for(body, chat_request)  # optional conversation_id: save the turn
    stream = board.router.open(chat_request)
    _recent_streams(board).append(stream)
    events = guard(stream) if turn is None else turn.record(guard(stream))
    return sse_response(codec.encode_stream(events), stream, board.settings.heartbeat_seconds)


@blueprint.get("/demo/images/<name>.png")
def demo_image(name: str) -> Response:
    try:
        png = demo_images.render(name)
    except KeyError:
        return json_response({"error": {"message": f"no demo image {name!r}", "type": "not_found_error",
                                        "param": None, "code": "not_found"}}, 404)
    return Response(png, mimetype="image/png", headers={"Cache-Control": "public, max-age=86400"})
