"""A fake upstream LLM server for provider tests: real HTTP over real sockets.

    test -> FakeUpstream.reply(...) scripts the next answers
    Switchboard provider -> HTTP -> FakeUpstream -> replays transcript bytes

Runs Werkzeug's threaded server (HTTP/1.1, chunked) on 127.0.0.1 at a free
port, with TCP_NODELAY so every paced chunk leaves at once. Each request
takes the next scripted `Reply` (or the default one). A reply replays raw
SSE bytes exactly as the transcript has them (event lines, CRLF, comments),
paced per event, and can inject faults: an error status before the first
byte, a stall, a cut connection, a malformed line. The server records what
it received and counts streams opened and closed, noticing a client that
went away also while it stalls.
"""
from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "transcripts"
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def split_events(raw: bytes) -> list[bytes]:
    """Split SSE bytes into events, each keeping its own separator bytes."""
    events, start = [], 0
    for match in _EVENT_END.finditer(raw):
        events.append(raw[start:match.end()])
        start = match.end()
    if start < len(raw):
        events.append(raw[start:])
    return events


def transcript(vendor: str, name: str) -> bytes:
    return (TRANSCRIPTS / vendor / name).read_bytes()


@dataclass
class Reply:
    """One scripted answer. `chunks` are written one by one, `delay` apart.

    Faults: `first_delay` holds back the status line and headers too (the
    response starts with its first chunk): a long one is an upstream that
    never answers; `status` >= 400 answers `body` at once; `stall_after=n` stops
    after n chunks for `stall` seconds (then continues); `cut_after=n`
    drops the connection after n chunks (no terminator); `malformed_after=n`
    writes a broken line after n chunks.
    """

    chunks: list[bytes] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/event-stream; charset=utf-8"
    delay: float = 0.0
    first_delay: float = 0.0
    stall_after: int | None = None
    stall: float = 0.0
    cut_after: int | None = None
    malformed_after: int | None = None
    malformed: bytes = b"data: {\"choices\": [{\"delta\": {\"content\": \"unterminated\n\n"
    paced: bool = False  # write a JSON body chunk by chunk too (to stall or cut a non-streaming answer)

    @classmethod
    def sse(cls, raw: bytes, **kwargs: Any) -> "Reply":
        return cls(chunks=split_events(raw), **kwargs)

    @classmethod
    def json(cls, body: Any, status: int = 200, raw: bytes | None = None, **kwargs: Any) -> "Reply":
        data = raw if raw is not None else json.dumps(body).encode()
        return cls(chunks=[data], status=status, content_type="application/json", **kwargs)


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(WSGIRequestHandler):
    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, *args: Any) -> None:  # keep test output quiet
        pass


def _client_gone(sock: socket.socket | None) -> bool:
    """True when the peer closed: readable with nothing to read."""
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class FakeUpstream:
    """Use as a context manager or call close(); `url` is the base URL."""

    def __init__(self, default: Reply | Callable[[Received], Reply] | None = None) -> None:
        self.default = default
        self.script: list[Reply | Callable[[Received], Reply]] = []
        self.received: list[Received] = []
        self.opened = 0
        self.closed = 0
        self.completed = 0
        self.disconnects: list[float] = []  # when a client was seen leaving
        self._lock = threading.Lock()
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def reply(self, *replies: Reply | Callable[[Received], Reply]) -> "FakeUpstream":
        with self._lock:
            self.script.extend(replies)
        return self

    @property
    def open_streams(self) -> int:
        with self._lock:
            return self.opened - self.closed

    def wait_closed(self, timeout: float = 2.0) -> bool:
        """Wait until every stream this server opened is closed."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.opened and self.open_streams == 0:
                return True
            time.sleep(0.01)
        return self.opened > 0 and self.open_streams == 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FakeUpstream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the WSGI app ---------------------------------------------------

    def _next_reply(self, received: Received) -> Reply:
        with self._lock:
            self.received.append(received)
            reply = self.script.pop(0) if self.script else self.default
        if reply is None:
            return Reply.json({"error": {"message": "the fake upstream has no reply scripted"}}, status=500)
        return reply(received) if callable(reply) else reply

    def _app(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        received = Received(
            request.method, request.path, request.query_string.decode(), dict(request.headers), request.get_data()
        )
        reply = self._next_reply(received)
        headers = {"Content-Type": reply.content_type, **reply.headers}
        if reply.status >= 400 or (reply.content_type.startswith("application/json") and not reply.paced):
            return Response(b"".join(reply.chunks), status=reply.status, headers=headers)(environ, start_response)
        sock = environ.get("werkzeug.socket")
        return Response(self._stream(reply, sock), status=reply.status, headers=headers)(environ, start_response)

    def _sleep(self, seconds: float, sock: socket.socket | None) -> bool:
        """Sleep in slices; False as soon as the client has gone."""
        end = time.monotonic() + seconds
        while True:
            if _client_gone(sock):
                self.disconnects.append(time.monotonic())
                return False
            left = end - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, 0.02))

    def _stream(self, reply: Reply, sock: socket.socket | None):
        with self._lock:
            self.opened += 1
        try:
            if reply.first_delay and not self._sleep(reply.first_delay, sock):
                return
            for index, chunk in enumerate(reply.chunks):
                if index == reply.malformed_after:
                    yield reply.malformed
                if index == reply.cut_after:
                    # Abort without the chunked terminator: the client sees a cut.
                    raise ConnectionAbortedError("fake upstream cut the connection")
                if index == reply.stall_after and not self._sleep(reply.stall, sock):
                    return
                if index and reply.delay and not self._sleep(reply.delay, sock):
                    return
                yield chunk
            with self._lock:
                self.completed += 1
        except GeneratorExit:
            self.disconnects.append(time.monotonic())
            raise
        finally:
            with self._lock:
                self.closed += 1
