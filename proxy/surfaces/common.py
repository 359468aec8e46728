"""Flask helpers every surface blueprint shares: reading a JSON body and
answering a ProxyError before the stream starts.

    HTTP request -> read_json() -> codec.decode_request(...)
    ProxyError   -> error_response(error, body) -> JSON error with its status
"""
from __future__ import annotations

from typing import Any, Callable

import orjson
from flask import Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..errors import BadRequest, PayloadTooLarge, ProxyError, UnsupportedMediaType, answered


def switchboard():
    """The app's Switchboard (settings, router, store)."""
    return current_app.extensions["switchboard"]


def is_json_type(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def read_body() -> bytes:
    """The raw request body, chunked or not, within SWITCHBOARD_MAX_BODY_BYTES."""
    try:
        return request.get_data(cache=False)
    except RequestEntityTooLarge:
        limit = request.max_content_length
        raise PayloadTooLarge(
            f"the request body is larger than {limit} bytes: send smaller images, "
            "or raise SWITCHBOARD_MAX_BODY_BYTES on the server"
        ) from None
    except Exception as error:  # a broken chunked encoding, a client gone mid-body
        raise BadRequest(f"the request body could not be read: {type(error).__name__}") from None


def read_json(optional: bool = False) -> Any:
    """The request body as JSON (the one body reader of every route).

    Only JSON content types are accepted: a browser may send text/plain
    cross-origin without a CORS preflight, so accepting it would let any web
    page drive this server. `optional`: an empty body reads as None."""
    data = read_body()
    if not data:
        if optional:
            return None
        raise BadRequest("the request body is empty: send a JSON object with Content-Type: application/json")
    if not is_json_type(request.mimetype):
        raise UnsupportedMediaType(
            f"the request body must be JSON: send Content-Type: application/json (got {request.mimetype or 'none'!r})"
        )
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
    if not error.retryable and (status >= 500 or status in (408, 409, 429)):
        # The OpenAI and Anthropic SDKs retry these statuses unless told not
        # to: a missing provider key or a quota will not heal in a second.
        headers["x-should-retry"] = "false"
    g.error_code = error.code  # for the request's access-log line (proxy/logs.py)
    response = json_response(body(error), status, headers)
    answered(error)
    return response
