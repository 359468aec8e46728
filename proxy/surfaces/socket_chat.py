"""The Workbench Socket.IO fallback (docs/workbench.md, "Socket.IO fallback").

    42["chat", {messages, model?, id?}] -> workbench_codec -> router
    -> 42["chunk", {content}] ... 42["complete"]   or   42["error", {message}]

Thinking, plan and todo updates go out as `thinking`, `plan_update` and
`todo_update` events with the SSE payloads. A chat that carries an `id` gets
that id in every payload it causes (so several chats on one socket can run
at once without mixing). A `cancel {id?}` event or a disconnect stops the
socket's chats and their upstreams; a cancelled chat ends with
`error {message, code: "cancelled"}`. Everything goes to the requesting socket
only, never broadcast.

A vanished client (a killed long-polling one sends no close) is noticed by
the Engine.IO heartbeat (SWITCHBOARD_SOCKETIO_PING_INTERVAL / _TIMEOUT),
which disconnects it and so cancels its chats. When the worker stops
(proxy/serving.py): new chats get `error {code: "server_shutdown"}`, idle
clients are disconnected at once, a client whose last chat ended is
disconnected then, and chats still running near the end of the grace period
end with `error {code: "server_shutdown"}`.
"""
from __future__ import annotations

import logging
import sys
import threading
from collections import defaultdict
from typing import Any

import orjson
from flask import Flask, g, request
from flask_socketio import ConnectionRefusedError, SocketIO

from .. import chat as chat_runner
from ..chat import Surface
from ..errors import AuthenticationFailed, BadRequest, ProxyError, ServerShutdown, answered
from ..request_context import caller_for, new_request_id
from . import socket_json
from . import workbench_codec as codec

log = logging.getLogger(__name__)

OUTGOING = {"content": "chunk", "thinking": "thinking", "plan_update": "plan_update",
            "todo_update": "todo_update", "complete": "complete", "error": "error"}

SURFACE = Surface("socket_chat", codec.decode, codec.error_body)


class ActiveChats:
    """sid -> {chat tag: chat}, to cancel on disconnect or `cancel`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chats: dict[str, dict[Any, Any]] = defaultdict(dict)

    def add(self, sid: str, tag: Any, chat) -> Any:
        with self._lock:
            key = tag if tag is not None else object()
            self._chats[sid][key] = chat
            return key

    def remove(self, sid: str, key: Any) -> None:
        with self._lock:
            chats = self._chats.get(sid)
            if chats is not None:
                chats.pop(key, None)
                if not chats:
                    del self._chats[sid]

    def cancel(self, sid: str, tag: Any = None) -> int:
        with self._lock:
            chats = self._chats.get(sid, {})
            found = [c for key, c in chats.items() if tag is None or key == tag]
        for chat in found:
            chat.cancel()
        return len(found)

    def count(self, sid: str | None = None) -> int:
        with self._lock:
            if sid is None:
                return sum(len(c) for c in self._chats.values())
            return len(self._chats.get(sid, {}))


def bypass_middleware_outside_socketio(app: Flask) -> None:
    """Send only /socket.io/ requests through the Socket.IO middleware.

    SocketIO(app) wraps every request: the middleware copies the environ and,
    under gunicorn, defines a new class per request (a reference cycle left
    for the garbage collector). The HTTP API needs none of it.
    """
    middleware = app.wsgi_app
    flask_app = middleware.wsgi_app  # Flask's own WSGI callable, which SocketIO(app) wrapped
    prefix = middleware.engineio_path  # "/socket.io/", or "/llm/socket.io/" under a url_prefix

    def route(environ: dict, start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith(prefix):
            return middleware(environ, start_response)
        return flask_app(environ, start_response)

    app.wsgi_app = route


def async_mode() -> str:
    """gevent when gevent has patched this process (gunicorn's gevent worker
    did so before importing us), else threading.

    Left unset, engine.io picks gevent whenever it is importable, also in
    processes that never patched (pytest, gunicorn gthread workers, other
    embedders): its WebSocket transport then hangs on the threaded server.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        return "gevent"
    return "threading"


def chat_tag(data: Any) -> Any:
    """The chat's `id`: a string or a number, echoed in every payload it causes."""
    if not isinstance(data, dict) or data.get("id") is None:
        return None
    tag = data["id"]
    if isinstance(tag, bool) or not isinstance(tag, (str, int, float)):
        raise BadRequest("'id' must be a string or a number that tags the chat's events", param="id")
    return tag


def check_payload(data: Any) -> None:
    """What the HTTP body reader guarantees, for a Socket.IO message: it can
    be sent on as JSON (no lone surrogates, bounded depth)."""
    try:
        orjson.dumps(data)
    except TypeError as error:
        raise BadRequest(f"the chat payload cannot be encoded as JSON: {error}") from None


def init_app(app: Flask, board, path: str = "/socket.io") -> SocketIO:
    settings = board.settings
    # A host app's own SocketIO (if any) stays app.extensions["socketio"]:
    # flask_socketio.emit() in its handlers looks it up there.
    host_socketio = app.extensions.get("socketio")
    origins = settings.cors_origins
    # With REDIS_URL, emits go through Redis so that any worker can reach
    # any socket (several workers or machines; docs/deployment.md, "Socket.IO under gunicorn").
    queue = {"message_queue": settings.redis_url, "channel": f"{settings.redis_prefix}:socketio"} if settings.redis_url else {}
    socketio = SocketIO(
        app,
        async_mode=async_mode(),
        cors_allowed_origins="*" if "*" in origins else origins,
        max_http_buffer_size=settings.max_body_bytes,
        path=path,
        serializer=socket_json.LenientPacket,
        ping_interval=settings.socketio_ping_interval,
        ping_timeout=settings.socketio_ping_timeout,
        **queue,
    )
    if host_socketio is not None:
        app.extensions["socketio"] = host_socketio
    chats = ActiveChats()
    callers: dict[str, Any] = {}
    board.socket_chats = chats
    stopping = threading.Event()

    def disconnect(sid: str) -> None:
        try:
            socketio.server.disconnect(sid, namespace="/")
        except Exception:  # already gone
            log.debug("disconnecting %s failed", sid, exc_info=True)

    def stop() -> int:
        """The worker stops: refuse new chats, disconnect the idle clients
        (the busy ones when their last chat ends). Returns how many went."""
        stopping.set()
        idle = [sid for sid in list(callers) if chats.count(sid) == 0]
        for sid in idle:
            disconnect(sid)
        return len(idle)

    def disconnect_all() -> None:
        for sid in list(callers):
            disconnect(sid)

    board.extras["socketio_stop"] = stop
    board.extras["socketio_disconnect_all"] = disconnect_all
    bypass_middleware_outside_socketio(app)

    def send(sid: str, tag: Any, name: str, payload: dict | None) -> None:
        if tag is not None:
            payload = {**(payload or {}), "id": tag}
        if payload is None:
            socketio.emit(name, to=sid)
        else:
            socketio.emit(name, payload, to=sid)

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        try:
            callers[request.sid] = caller_for(settings, request.headers, auth)
        except AuthenticationFailed as error:
            raise ConnectionRefusedError(error.message, {"code": error.code}) from None

    @socketio.on("chat")
    def on_chat(data: Any = None, *extra: Any) -> None:
        sid = request.sid
        g.request_id = new_request_id()
        tag = None
        try:
            tag = chat_tag(data)
            if stopping.is_set():
                raise ServerShutdown("the server is restarting: send the chat again in a moment")
            if extra:
                raise BadRequest("send one chat object: socket.emit('chat', {messages, model?, id?})")
            check_payload(data)
            caller = callers.get(sid)
            if caller is None:  # the connection was refused or has gone
                raise AuthenticationFailed("this connection is not authenticated: reconnect with auth {token}")
            chat = chat_runner.start(SURFACE, data, request.headers, caller=caller)
        except ProxyError as error:
            send(sid, tag, "error", {"message": error.message, "code": error.code})
            answered(error)
            return
        key = chats.add(sid, tag, chat)
        ended = False
        try:
            for name, payload in codec.messages(chat.events()):
                if chat.cancelled and chat.ending is None:
                    break  # a chat stopped by `cancel` is not complete: its error follows
                send(sid, tag, OUTGOING[name], payload)
                ended = name in ("complete", "error")
                if ended:
                    break
        except ProxyError as error:  # could not open: retries and fallbacks used up
            send(sid, tag, "error", {"message": error.message, "code": error.code})
            answered(error)
            ended = True
        except Exception:
            log.exception("Socket.IO chat failed")
            send(sid, tag, "error", {"message": "internal error while streaming", "code": "internal_error"})
            ended = True
        finally:
            chats.remove(sid, key)
            chat.cancel()
        if not ended:
            # Every chat ends in exactly one `complete` or `error`. (After a
            # disconnect this emit goes nowhere.)
            send(sid, tag, "error", {"message": "the chat was cancelled", "code": "cancelled"})
        if stopping.is_set() and chats.count(sid) == 0 and sid in callers:
            disconnect(sid)  # its last chat is over: do not hold the stopping worker

    @socketio.on(socket_json.INVALID)
    def on_invalid(reason: Any = None) -> None:
        send(request.sid, None, "error", {"message": f"the Socket.IO message is not valid JSON: {reason}",
                                          "code": "invalid_request"})

    @socketio.on("cancel")
    def on_cancel(data: Any = None, *_: Any) -> None:
        tag = data.get("id") if isinstance(data, dict) else None
        try:
            hash(tag)
        except TypeError:
            return
        chats.cancel(request.sid, tag)

    @socketio.on("disconnect")
    def on_disconnect(*_: Any) -> None:
        callers.pop(request.sid, None)
        cancelled = chats.cancel(request.sid)
        if cancelled:
            log.info("socket %s left: cancelled %d chat(s)", request.sid, cancelled)

    return socketio
