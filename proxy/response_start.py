"""What the chat runner watches until a response starts (proxy/chat.py).

    Chat.stream_response / Chat.result:
        with DepartureWatch(chat):   a client that closes its socket while nothing is
                                     written yet cancels the chat (and its upstream)
            FirstEvent.wait(...)     a failure before any content is handed back to the
                                     handler, which answers it with its real HTTP status

Until the first byte is written the server does not read the client socket
and has not committed to a status; these two cover that window.
"""
from __future__ import annotations

import logging
import select
import socket
import threading
from typing import Any

from flask import request

from .canonical import Event
from .errors import Cancelled, ProxyError
from .timers import call_later, gevent_hub, spawn_raw

log = logging.getLogger(__name__)

DEPARTURE_POLL = 0.25  # seconds between looks at the client socket while nothing is sent yet (no gevent)


class FirstEvent:
    """Hands a failure that comes before anything was produced to the
    request handler (which can still answer with a status), unless the
    handler already committed to a 200 stream."""

    __slots__ = ("_lock", "_seen", "state", "failure")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen = threading.Event()
        self.state = "waiting"  # -> "streaming" | "failed" | "committed"
        self.failure: ProxyError | None = None

    def ended(self) -> None:
        """The events ended (or were closed) without a first one noted."""
        self._seen.set()

    def note(self, event: Event) -> bool:
        """The first event: True when it is a failure the handler takes over
        (the stream then ends here), False to pass it on."""
        with self._lock:
            if self.state == "waiting":
                if event.type == "error" and not isinstance(event.error, Cancelled):
                    self.state, self.failure = "failed", event.error
                    self._seen.set()
                    return True
                self.state = "streaming"
                self._seen.set()
        return False

    def wait(self, timeout: float) -> ProxyError | None:
        self._seen.wait(timeout)
        with self._lock:
            if self.state == "failed":
                return self.failure
            if self.state == "waiting":
                self.state = "committed"
            return None


class DepartureWatch:
    """While the handler waits (connecting, retrying, accumulating) and
    nothing has been written, the server does not read the client socket:
    a client that leaves would go unnoticed until the first write. This
    watches the socket and cancels the chat when the client has closed it.

    Under gevent a read watcher on the hub's loop does it: nothing runs until
    the socket turns readable (the client closed it, or pipelined another
    request), so a thousand waiting requests cost nothing per poll and a
    departure is seen at once. Otherwise (flask run) a thread looks every
    DEPARTURE_POLL seconds, once the answer is slower than one poll."""

    __slots__ = ("chat", "sock", "stopped", "timer", "watcher")

    def __init__(self, chat: Any) -> None:  # a chat.Chat
        self.chat = chat
        environ = request.environ if request else {}
        self.sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
        self.stopped = False
        self.timer = None
        self.watcher = None

    def __enter__(self) -> "DepartureWatch":
        if self.sock is None:
            return self
        hub = gevent_hub()
        raw = getattr(self.sock, "_sock", None)  # the OS socket under gevent's
        if hub is not None and raw is not None:
            self.sock = raw
            self.watcher = hub.loop.io(raw.fileno(), 1)  # 1: readable
            self.watcher.start(self._readable)
        else:
            self.timer = call_later(DEPARTURE_POLL, self._watch)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopped = True
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None  # it holds this watch: no cycle left behind

    def _readable(self) -> None:
        """In the hub (must not block): peek without waiting."""
        try:
            gone = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return  # woken for nothing: keep watching
        except OSError:
            gone = True  # reset
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None
        # Bytes (a pipelined request) say the client is still there.
        if gone and not self.stopped:
            spawn_raw(self._gone)

    def _gone(self) -> None:
        if not self.stopped:
            log.info("the client left before the answer started: cancelling the upstream")
            self.chat.cancel()

    def _watch(self) -> None:
        sock = self.sock
        try:
            while not self.stopped:
                readable, _, _ = select.select([sock], [], [], DEPARTURE_POLL)
                if self.stopped:
                    return
                if readable:
                    # Readable with nothing to read is an orderly close; bytes
                    # (a pipelined request) say the client is still there.
                    if sock.recv(1, socket.MSG_PEEK) == b"":
                        self._gone()
                    return
        except OSError:  # closed or reset: gone as well
            if not self.stopped:
                self.chat.cancel()
        except ValueError:  # a socket that cannot be peeked (TLS): nothing to watch
            return
