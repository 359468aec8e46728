"""A gunicorn worker that stops (SIGTERM, or SIGHUP's reload) while streams
run longer than its grace period: every stream ends with its protocol's
in-band `server_shutdown` error, idle Socket.IO clients are disconnected at
once, nothing waits for gunicorn's forced kill, and no traceback is logged.
Also gunicorn's own limits: a connection that never finishes its headers
is closed after `keepalive` seconds, and gunicorn's parse errors are JSON."""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest
import requests
import socketio

from .helpers import free_port, http_request, read_until, wait_until
from .servers import BIN, SERVER_ENV, ServerProcess

pytestmark = pytest.mark.e2e

GRACE = 3
CHAT = {"model": "reflection-and-thinking", "messages": [{"role": "user", "content": "owls"}]}


def start(tmp_path, **env) -> ServerProcess:
    port = free_port()
    server = ServerProcess(
        "gunicorn", [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        port, tmp_path / "gunicorn.log",
        {**SERVER_ENV, "SWITCHBOARD_DATABASE": str(tmp_path / "switchboard.db"), "GRACEFUL_TIMEOUT": str(GRACE),
         # streams of ~20 s, far longer than the grace period
         "SWITCHBOARD_DEMO_DELAY": "8", **env})
    server.wait_healthy()
    return server


def read_all(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except socket.timeout:
        return data + b"<still open>"


class SocketClient:
    def __init__(self, url: str, transport: str, chat: bool) -> None:
        self.client = socketio.Client(reconnection=False)
        self.events: list[tuple[str, object]] = []
        self.disconnected = threading.Event()
        self.first = threading.Event()
        for name in ("chunk", "thinking", "complete", "error"):
            self.client.on(name, lambda data=None, name=name: (self.events.append((name, data)), self.first.set()))
        self.client.on("disconnect", lambda *args: self.disconnected.set())
        self.client.connect(url, transports=[transport], wait_timeout=10)
        if chat:
            self.client.emit("chat", CHAT)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_streams_longer_than_the_grace_period_end_with_the_shutdown_error(sig, tmp_path):
    server = start(tmp_path)
    try:
        streams = {}
        for path, body in (("/api/chat", CHAT), ("/v1/chat/completions", {**CHAT, "stream": True})):
            sock = http_request(server.port, "POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
            streams[path] = (sock, read_until(sock, b"Analyzing", 10))
        chatting = SocketClient(server.url, "websocket", chat=True)
        idle = [SocketClient(server.url, transport, chat=False) for transport in ("websocket", "polling")]
        assert chatting.first.wait(10)
        assert requests.get(server.url + "/health?format=json", timeout=5).json()["open_streams"] == 3
        kept_alive = http_request(server.port, "GET", "/health")  # an idle keep-alive connection after it
        read_until(kept_alive, b"\r\n\r\nOK", 5)

        signalled = time.monotonic()
        os.kill(server.process.pid, sig)

        # an idle keep-alive connection does not hold the worker either
        with kept_alive:
            assert read_all(kept_alive, 2.5) == b""

        # idle Socket.IO clients do not hold the worker: they go at once
        for client in idle:
            assert client.disconnected.wait(2.5)
        assert time.monotonic() - signalled < 2.5

        for path, (sock, head) in streams.items():
            with sock:
                body = head + read_all(sock, GRACE + 2)
            assert b"<still open>" not in body, body[-300:]
            assert b"server_shutdown" in body, (path, body[-400:])
            assert b"After deep reflection" not in body  # cut short indeed
            assert body.endswith(b"\n\n\r\n0\r\n\r\n")  # a finished HTTP body, not a cut connection

        assert chatting.disconnected.wait(3)
        errors = [data for name, data in chatting.events if name == "error"]
        assert [e["code"] for e in errors] == ["server_shutdown"], chatting.events
        assert not [name for name, _ in chatting.events if name == "complete"]
        for client in (chatting, *idle):
            client.client.disconnect()

        if sig == signal.SIGTERM:
            server.process.wait(GRACE + 3)
            assert time.monotonic() - signalled < GRACE + 1.5
        else:  # a reload: the new worker serves on
            assert wait_until(lambda: requests.get(server.url + "/health", timeout=2).status_code == 200, 10)
            assert wait_until(lambda: "Worker exiting" in server.log(), GRACE + 3)
    finally:
        server.stop()
    log = server.log_path.read_text(errors="replace")
    assert "ended 3 open stream(s)" in log
    assert "Worker graceful timeout" not in log  # nothing was left for the forced kill
    assert "Traceback" not in log and "ConcurrentObjectUseError" not in log, log[-3000:]


def test_gunicorn_limits_unfinished_headers_and_answers_its_errors_in_json(tmp_path):
    server = start(tmp_path, GUNICORN_KEEPALIVE="1", SWITCHBOARD_DEMO_DELAY="0")
    try:
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        opened = time.monotonic()
        assert read_all(slow, 4) == b""  # closed by the server
        assert time.monotonic() - opened < 2.5
        slow.close()

        cases = [
            (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
            (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
        ]
        for raw, status in cases:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(raw)
                answer = read_all(sock, 4)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
            assert b"content-type: application/json" in head.lower()
            error = json.loads(body)["error"]
            assert error["type"] == "invalid_request_error" and error["message"] and error["code"]
    finally:
        server.stop()
    assert "Traceback" not in server.log_path.read_text(errors="replace")


def test_departures_and_the_first_byte_deadline_under_the_gevent_worker(tmp_path):
    """The same mechanisms as tests/test_lifecycle.py, under gunicorn's
    gevent worker (a hang-up there interrupts a greenlet's read)."""
    from .fakes.upstream import FakeUpstream
    from .test_lifecycle import MESSAGES, MODEL, Clients, answer_for

    with FakeUpstream(answer_for(stall=60)) as fake:
        server = start(tmp_path, OPENAI_API_KEY="sk-gevent-test-key-0123456", OPENAI_BASE_URL=fake.url + "/v1",
                       SWITCHBOARD_MAX_RETRIES="2", SWITCHBOARD_RETRY_BASE_DELAY="0.05",
                       SWITCHBOARD_FIRST_BYTE_TIMEOUT="20")
        try:
            groups = [Clients(surface, server) for surface in ("api_chat", "v1_stream", "v1_whole", "socketio")]
            for group in groups:
                group.start(10)
            assert wait_until(lambda: fake.opened == 40, 20), fake.opened
            for group in groups:
                group.leave()
            assert wait_until(lambda: fake.closed == 40, 1.0), (fake.opened, fake.closed)
            time.sleep(0.3)
            assert len(fake.received) == 40  # no retry started
            for group in groups:
                group.close()
        finally:
            server.stop()
    assert "Traceback" not in server.log_path.read_text(errors="replace")

    with FakeUpstream(answer_for(stall=30)) as fake:
        server = start(tmp_path, OPENAI_API_KEY="sk-gevent-test-key-0123456", OPENAI_BASE_URL=fake.url + "/v1",
                       SWITCHBOARD_IDLE_TIMEOUT="0.6", SWITCHBOARD_RETRY_BASE_DELAY="0.05",
                       SWITCHBOARD_FIRST_BYTE_TIMEOUT="1")
        try:
            started = time.monotonic()
            answer = requests.post(server.url + "/v1/chat/completions", timeout=10,
                                   json={"model": MODEL, "messages": MESSAGES, "stream": True})
            assert answer.status_code == 504 and answer.json()["error"]["code"] == "upstream_timeout"
            assert time.monotonic() - started < 1.6
            assert wait_until(lambda: fake.open_streams == 0, 1.0)
        finally:
            server.stop()
