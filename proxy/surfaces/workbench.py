"""The AI Workbench "Proxy GPT" HTTP surface (docs/workbench.md).

    GET /health, HEAD|GET /, POST /api/chat -> workbench_codec -> router -> SSE

The Socket.IO fallback lives in socket_chat.py; /v1/models in models.py.
"""
from __future__ import annotations

from flask import Blueprint, Response, request

from .. import __version__
from .. import chat as chat_runner
from ..chat import Surface
from ..errors import ProxyError
from ..providers import demo_images
from ..request_context import require_caller
from . import playground, ui_chat_codec
from . import workbench_codec as codec
from .common import error_response, json_response, read_json, switchboard

blueprint = Blueprint("workbench", __name__)
SURFACE = Surface("workbench", codec.decode, codec.error_body, prefixes=("/api/",))


@blueprint.errorhandler(ProxyError)
def handle_error(error: ProxyError) -> Response:
    return error_response(error, codec.error_body)


@blueprint.get("/health")
def health() -> Response:
    if request.args.get("format") == "json" or request.accept_mimetypes.best == "application/json":
        open_streams = len(switchboard().open_chats)
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
    require_caller()  # before reading a body of someone who may not send one
    body = read_json()
    if ui_chat_codec.is_ui_request(body) or request.args.get("protocol") == "text":
        # useChat's default endpoint is this one: its bodies get the UI message stream
        from . import ui_chat

        return ui_chat.serve(body)
    return chat_runner.start(SURFACE, body).stream_response(codec.encode_stream)


@blueprint.get("/demo/images/<name>.png")
def demo_image(name: str) -> Response:
    try:
        png = demo_images.render(name)
    except KeyError:
        return json_response({"error": {"message": f"no demo image {name!r}", "type": "not_found_error",
                                        "param": None, "code": "not_found"}}, 404)
    return Response(png, mimetype="image/png", headers={"Cache-Control": "public, max-age=86400"})
