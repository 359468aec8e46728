"""The server side of a worker's life under gunicorn: a graceful stop that
ends every stream honestly, and gunicorn's own error answers in JSON.

    gunicorn.conf.py post_worker_init(worker) -> worker_started(worker)
        SIGTERM / SIGHUP: gunicorn clears worker.alive, stops accepting and
        waits up to graceful_timeout for open connections; then it kills them.
        watcher (0.25 s) sees alive cleared ->
            idle keep-alive connections are closed, and every connection is
            closed after its current response (they would hold the worker for
            the whole grace period, then be killed mid-read with a traceback);
            every app of this process (proxy.APPS): Socket.IO refuses new
            chats and disconnects its idle clients
        STOP_MARGIN before graceful_timeout runs out ->
            board.open_chats.end_all(ServerShutdown): each stream ends with its
            protocol's in-band error (`code: server_shutdown`), the upstreams
            are closed, the remaining Socket.IO clients are disconnected
    gunicorn.conf.py worker_int(worker) (SIGINT / SIGQUIT: no grace) -> end_streams_now()

Imported only inside the worker (from gunicorn.conf.py's hooks), after the
gevent worker has patched; nothing here patches or imports the app's routes.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import Any

from . import APPS

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.25  # seconds between looks at worker.alive


def stop_margin(graceful_timeout: float) -> float:
    """How long before the grace period ends the streams are ended: enough for
    the error frames to be written and the sockets closed before gunicorn
    kills what is left (it notices the signal up to a second late itself)."""
    return min(5.0, max(1.0, graceful_timeout / 10))


def boards() -> list[Any]:
    return [app.extensions["switchboard"] for app in list(APPS)]


def stop_accepting() -> None:
    """Socket.IO: no new chats, idle clients disconnected now."""
    for board in boards():
        stop = board.extras.get("socketio_stop")
        if stop is not None:
            idle = stop()
            if idle:
                log.info("stopping: disconnected %d idle Socket.IO client(s)", idle)


def end_streams_now() -> int:
    """End every open stream with the in-band shutdown error; returns how many."""
    from .chat import shutdown_error

    ended = 0
    for board in boards():
        ended += board.open_chats.end_all(shutdown_error())
    for board in boards():
        disconnect_all = board.extras.get("socketio_disconnect_all")
        if disconnect_all is not None:
            # Each chat's greenlet sends its error and then disconnects its
            # client; give them a moment before closing whatever is left.
            threading.Timer(0.5, disconnect_all).start()
    if ended:
        log.warning("stopping: ended %d open stream(s) with a server_shutdown error", ended)
    return ended


class Connections:
    """The worker's connections waiting for a request (idle keep-alives):
    closed at once when the worker stops. Busy ones are closed after their
    response instead of waiting for another request."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.idle: dict[int, Any] = {}
        self._handle = worker.handle
        self._handle_request = worker.handle_request
        # Instance attributes: the gevent worker binds self.handle when its
        # servers start, after post_worker_init.
        worker.handle = self.handle
        worker.handle_request = self.handle_request

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        self.idle[id(client)] = client
        try:
            self._handle(listener, client, addr)
        finally:
            self.idle.pop(id(client), None)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        self.idle.pop(id(sock), None)
        keep = self._handle_request(listener_name, req, sock, addr)
        if not self.worker.alive:
            raise StopIteration()  # gunicorn's way to close the connection after a response
        self.idle[id(sock)] = sock
        return keep

    def close_idle(self) -> int:
        idle = list(self.idle.values())
        for sock in idle:
            # The OS socket under gevent's: its waiting read then returns
            # end-of-file and gunicorn closes the connection quietly. (gevent's
            # own shutdown() would throw EBADF into that read: a traceback.)
            raw = getattr(sock, "_sock", sock)
            try:
                raw.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(idle)


def graceful_stop(graceful_timeout: float, connections: Connections | None = None) -> None:
    if connections is not None:
        closed = connections.close_idle()
        if closed:
            log.info("stopping: closed %d idle connection(s)", closed)
    stop_accepting()
    # Streams that finish by themselves meanwhile are simply gone; once
    # nothing is open gunicorn ends the worker without waiting for this.
    time.sleep(max(0.0, graceful_timeout - stop_margin(graceful_timeout)))
    end_streams_now()


def watch(worker: Any, connections: Connections) -> None:
    while worker.alive:
        time.sleep(WATCH_INTERVAL)
    log.info("worker stopping: open streams get %gs to finish", worker.cfg.graceful_timeout)
    graceful_stop(float(worker.cfg.graceful_timeout), connections)


def json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's answer to a request it could not parse (400, 414, 431...),
    in the JSON error shape the app's own errors have, instead of its HTML page."""
    from gunicorn import util

    code = reason.lower().replace(" ", "_") or "bad_request"
    body = json.dumps({"error": {
        "message": mesg or reason,
        "type": "invalid_request_error" if 400 <= status_int < 500 else "api_error",
        "param": None,
        "code": code,
    }}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
    util.write_nonblock(sock, head + body)


def worker_started(worker: Any) -> None:
    """Install the graceful stop watcher and the JSON error answers."""
    from gunicorn import util

    # gunicorn writes its parse errors through this module function; the
    # worker's handle_error offers no other seam. Process-local: only this
    # worker is affected.
    util.write_error = json_error
    connections = Connections(worker)
    threading.Thread(target=watch, args=(worker, connections), name="switchboard-stop", daemon=True).start()
