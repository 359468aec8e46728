"""The Workbench Socket.IO fallback (specs/workbench.md §5, specs/socketio.md).

    42["chat", {messages, model?, id?}] -> workbench_codec -> router
    -> 42["chunk", {content}] ... 42["complete"]   or   42["error", {message}]

Thinking, plan and todo updates go out as `thinking`, `plan_update` and
`todo_update` events with the SSE payloads. A chat that carries an `id` gets
that id in every payload it causes (so several chats on one socket can run
at once without mixing). A `cancel {id?}` event or a disconnect stops the
socket's chats and their upstreams; a cancelled chat ends with
`error {message, code: "cancelled"}`. Everything goes to the requesting socket
only, never broadcast.
"""
from __future__ import annotations

import logging
import sys
import threading
from collections import defaultdict
from typing import Any

from flask import Flask, request
from flask_socketio import SocketIO

from ..errors import ProxyError
from ..streaming import guard
from . import conversations
from . import workbench_codec as codec

log = logging.getLogger(__name__)

OUTGOING = {"content": "chunk", "thinking": "thinking", "plan_update": "plan_update",
            "todo_update": "todo_update", "complete": "complete", "error": "error"}


class ActiveChats:
    """sid -> {chat tag: upstream stream}, to cancel on disconnect or `cancel`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chats: dict[str, dict[Any, Any]] = defaultdict(dict)

    def add(self, sid: str, tag: Any, stream) -> Any:
        with self._lock:
            key = tag if tag is not None else object()
            self._chats[sid][key] = stream
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
            streams = [s for key, s in chats.items() if tag is None or key == tag]
        for stream in streams:
            stream.cancel()
        return len(streams)

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


def init_app(app: Flask, board, path: str = "/socket.io") -> SocketIO:
    settings = board.settings
    # A host app's own SocketIO (if any) stays app.extensions["socketio"]:
    # flask_socketio.emit() in its handlers looks it up there.
    host_socketio = app.extensions.get("socketio")
    origins = settings.cors_origins
    # With REDIS_URL, emits go through Redis so that any worker can reach
    # any socket (several workers or machines; specs/deployment.md §2.3).
    queue = {"message_queue": settings.redis_url, "channel": f"{settings.redis_prefix}:socketio"} if settings.redis_url else {}
    socketio = SocketIO(
        app,
        async_mode=async_mode(),
        cors_allowed_origins="*" if "*" in origins else origins,
        max_http_buffer_size=settings.max_body_bytes,
        path=path,
        **queue,
    )
    if host_socketio is not None:
        app.extensions["socketio"] = host_socketio
    chats = ActiveChats()
    board.socket_chats = chats
    bypass_middleware_outside_socketio(app)

    def send(sid: str, tag: Any, name: str, payload: dict | None) -> None:
        if tag is not None:
            payload = {**(payload or {}), "id": tag}
        if payload is None:
            socketio.emit(name, to=sid)
        else:
            socketio.emit(name, payload, to=sid)

    @socketio.on("chat")
    def on_chat(data: Any = None) -> None:
        sid = request.sid
        tag = data.get("id") if isinstance(data, dict) else None
        try:
            chat_request = codec.decode_request(data, settings.default_model, request.host_url.rstrip("/"))
            turn = conversations.turn_for(data, chat_request)  # optional conversation_id: save the turn
            stream = board.router.open(chat_request)
        except ProxyError as error:
            send(sid, tag, "error", {"message": error.message, "code": error.code})
            return
        key = chats.add(sid, tag, stream)
        ended = False
        try:
            events = guard(stream) if turn is None else turn.record(guard(stream))
            for name, payload in codec.messages(events):
                if stream.cancelled.is_set():
                    break
                send(sid, tag, OUTGOING[name], payload)
                ended = name in ("complete", "error")
            if not ended:
                # Every chat ends in exactly one `complete` or `error`; a chat
                # stopped by `cancel` is not complete. (After a disconnect
                # this emit goes nowhere.)
                send(sid, tag, "error", {"message": "the chat was cancelled", "code": "cancelled"})
        finally:
            chats.remove(sid, key)
            stream.cancel()

    @socketio.on("cancel")
    def on_cancel(data: Any = None) -> None:
        tag = data.get("id") if isinstance(data, dict) else None
        chats.cancel(request.sid, tag)

    @socketio.on("disconnect")
    def on_disconnect(*_: Any) -> None:
        cancelled = chats.cancel(request.sid)
        if cancelled:
            log.info("socket %s left: cancelled %d chat(s)", request.sid, cancelled)

    return socketio
