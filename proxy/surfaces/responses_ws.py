"""WebSocket mode of `/v1/responses`: one connection, many responses in turn.

    GET /v1/responses (Upgrade: websocket) -> serve(environ, begin)
        client: {"type": "response.create", ...a POST /v1/responses body}
        server: the same streaming events as SSE, one JSON text message each
        a failure before streaming: {"type": "error", "status", "error": {...}}

The socket is simple-websocket's (wsproto underneath), which finds the raw
socket under gunicorn's gevent worker and under `flask run` alike; nothing
here parses frames. Responses on one connection run one after another. The
connection keeps the responses it produced (store: false ones included), so
`previous_response_id` continues them on this connection; a failed
continuation drops what it continued from that cache. A client that goes
away cancels the upstream of the response in progress.
"""
from __future__ import annotations

import logging
import queue
from typing import Any, Callable

import orjson
from flask import Response
from simple_websocket import ConnectionClosed, Server

from ..errors import BadRequest, ProxyError, answered
from ..streaming import _END as PUMP_END  # the pump's end-of-frames marker
from ..streaming import pump
from . import responses_codec as codec

log = logging.getLogger(__name__)

MAX_MESSAGE = 16 * 1024 * 1024
WATCH_SECONDS = 1.0  # how often a silent upstream checks that the client is still there


def error_message(error: ProxyError) -> bytes:
    body = codec.error_body(error)["error"]
    body["code"] = body.get("code") or "server_error"
    return orjson.dumps({"type": "error", "status": error.status, "error": body})


def serve(environ: dict, begin: Callable[..., Any]) -> Response:
    ws = Server.accept(environ, max_message_size=MAX_MESSAGE)
    cache: dict = {}
    try:
        while True:
            raw = ws.receive()
            if raw is None:
                continue
            run_one(ws, raw, begin, cache)
    except ConnectionClosed:
        pass
    finally:
        try:
            ws.close()
        except Exception:
            pass
    return AlreadyHandled(ws.mode)


def run_one(ws: Server, raw: Any, begin: Callable[..., Any], cache: dict) -> None:
    previous = None
    turn = None
    try:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise BadRequest(f"the message is not valid JSON: {error}") from None
        if not isinstance(message, dict) or message.get("type") != "response.create":
            raise BadRequest("send {\"type\": \"response.create\", \"model\": ..., \"input\": ...}", param="type")
        previous = message.get("previous_response_id")
        body = {key: value for key, value in message.items() if key != "type"}
        body["stream"] = True
        turn = begin(body, cache)
        chat = turn.chat
        chat.open()
    except ProxyError as error:
        if turn is not None:
            turn.release()
        if isinstance(previous, str):
            cache.pop(previous, None)  # a failed continuation forgets what it continued
        ws.send(error_message(error).decode())
        answered(error)
        return
    except Exception:  # a bug: this response fails, the connection stays usable
        if turn is not None:
            turn.release()
        log.exception("starting a WebSocket response failed")
        ws.send(error_message(ProxyError("internal error while starting the response")).decode())
        return
    events = (orjson.dumps(event) for event in codec.stream_events(chat.events(), turn.state, error_event=False))
    out = pump(events, chat.request_id)
    try:
        while True:
            try:
                item = out.get(timeout=WATCH_SECONDS)
            except queue.Empty:
                if not ws.connected:
                    raise ConnectionClosed() from None
                continue
            if item is PUMP_END:
                return
            ws.send(item.decode())
    finally:
        chat.cancel()  # a no-op once the stream finished; stops it when the client left


class AlreadyHandled(Response):
    """The WSGI response after the socket was taken over: nothing more to
    write. Each server is told so its own way (the same as Flask-Sock and
    python-engineio do)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def __call__(self, environ, start_response):
        if self.mode == "gunicorn":
            raise StopIteration()
        if self.mode == "werkzeug":
            raise ConnectionError()
        return []

