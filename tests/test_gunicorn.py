"""The app under a real `gunicorn -c gunicorn.conf.py wsgi:app` (gevent worker):
incremental chunked SSE, disconnect stops the provider, Socket.IO over
WebSocket with python-socketio, no MonkeyPatchWarning."""
from __future__ import annotations

import json
import threading
import time

import pytest
import requests
import socketio

from .helpers import http_request, read_until, wait_until

pytestmark = pytest.mark.e2e

CHAT = {"model": "reflection-and-thinking", "messages": [{"role": "user", "content": "owls"}]}


def open_streams(server) -> int:
    return requests.get(server.url + "/health?format=json", timeout=5).json()["open_streams"]


def test_sse_arrives_incrementally_and_chunked(gunicorn_server):
    sock = http_request(gunicorn_server.port, "POST", "/api/chat", json.dumps(CHAT).encode(),
                        {"Content-Type": "application/json"})
    with sock:
        head = read_until(sock, b"\r\n\r\n", 10)
        headers = head.split(b"\r\n\r\n", 1)[0].decode().lower()
        assert headers.startswith("http/1.1 200")
        assert "transfer-encoding: chunked" in headers
        assert "content-type: text/event-stream" in headers
        data = read_until(sock, b"Analyzing the request", 10, head)
        first = time.monotonic()
        # the answer text comes about two seconds later (demo pace 1): it must
        # not be here yet, i.e. the first event was not held back until the end
        assert b"After deep reflection" not in data
        data = read_until(sock, b"data: [DONE]", 15, data)
        done = time.monotonic()
    assert b"event: thinking" in data and b"is indeed interesting." in data
    assert b": keepalive" in data  # heartbeats during the pauses
    assert done - first > 1.0  # the stream really was still going when the first event arrived


def test_client_disconnect_stops_the_demo_stream(gunicorn_server):
    assert wait_until(lambda: open_streams(gunicorn_server) == 0, 10)
    sock = http_request(gunicorn_server.port, "POST", "/api/chat", json.dumps(CHAT).encode(),
                        {"Content-Type": "application/json"})
    read_until(sock, b"Analyzing the request", 10)
    assert open_streams(gunicorn_server) == 1  # the server holds the stream open
    sock.close()
    # the next heartbeat write fails, the server closes the response, the
    # provider is cancelled and releases its upstream; well before the
    # answer would have finished (about two seconds later)
    assert wait_until(lambda: open_streams(gunicorn_server) == 0, 1.5)


def test_python_socketio_client_over_websocket(gunicorn_server):
    client = socketio.Client(reconnection=False)
    chunks, thinking = [], []
    done = threading.Event()
    client.on("chunk", lambda data: chunks.append(data["content"]))
    client.on("thinking", lambda data: thinking.append(data["content"]))
    client.on("complete", lambda *args: done.set())
    client.on("error", lambda data: done.set())
    client.connect(gunicorn_server.url, transports=["websocket"], wait_timeout=10)
    try:
        assert client.transport() == "websocket"
        client.emit("chat", CHAT)
        assert done.wait(15)
    finally:
        client.disconnect()
    assert thinking == ["Analyzing the request...\n", "Identifying key concepts...\n"]
    assert "".join(chunks) == "After deep reflection, I have concluded that owls is indeed interesting."


def test_log_has_no_monkey_patch_warning(gunicorn_server):
    requests.get(gunicorn_server.url + "/health", timeout=5)
    log = gunicorn_server.log()
    assert "Booting worker" in log
    assert "MonkeyPatchWarning" not in log
    assert "Traceback" not in log
