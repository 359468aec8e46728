"""Flask helpers every surface blueprint shares: reading a JSON body and
answering a ProxyError before the stream starts.

    HTTP request -> read_json() -> codec.decode_request(...)
    ProxyError   -> error_response(error, body) -> JSON error with its status
"""
from __future__ import annotations

from typing import Any, Callable

import orjson
from flask import Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..errors import BadRequest, PayloadTooLarge, ProxyError


def switchboard():
    """The app's Switchboard (settings, router, store)."""
    return current_app.extensions["switchboard"]


def read_json() -> Any:
    """The request body as JSON; BadRequest / PayloadTooLarge say what to fix."""
    try:
        data = request.get_data(cache=False)
    except RequestEntityTooLarge:
        limit = request.max_content_length
        raise PayloadTooLarge(
            f"the request body is larger than {limit} bytes: send smaller images, "
            "or raise SWITCHBOARD_MAX_BODY_BYTES on the server"
        ) from None
    if not data:
        raise BadRequest("the request body is empty: send a JSON object with Content-Type: application/json")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the request body is not valid JSON: {error}") from None


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json", headers=headers)


def error_response(error: ProxyError, body: Callable[[ProxyError], Any]) -> Response:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(int(error.retry_after + 0.999))
    status = error.status if 400 <= error.status < 600 else 500
    return json_response(body(error), status, headers)


def server_url() -> str:
    """How the client reached us (behind nginx: via the forwarded headers)."""
    return request.host_url.rstrip("/")
