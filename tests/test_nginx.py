"""deploy/nginx.conf in front of the real gunicorn: SSE streams through it
incrementally and Socket.IO works through it (polling, websocket, upgrade).

The sample is rewritten only where a test must differ: loopback ports
instead of 80/443 with TLS, gunicorn's port for both upstreams, a temp
prefix for pid and logs, one worker, no `user` switch."""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest
import socketio

from .helpers import free_port, http_request, read_until
from .test_js_socketio import EXPECTED, run_client

SAMPLE = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)")]


def rewrite(text: str, tmp: pathlib.Path, port: int, backend: int) -> str:
    replacements = [
        (r"^user .*;\n", ""),
        (r"^worker_processes .*;", "worker_processes 1;"),
        (r"^pid .*;", f"pid {tmp}/nginx.pid;"),
        (r"^error_log .*;", f"error_log {tmp}/error.log info;"),
        (r"access_log .*;", f"access_log {tmp}/access.log;"),
        (r"listen \[::\]:\d+[^;]*;\n", ""),
        (r"listen 80;", f"listen 127.0.0.1:{free_port()};"),
        (r"listen 443 ssl http2;", f"listen 127.0.0.1:{port};"),
        (r"\n\s*ssl_certificate(_key)? .*;", ""),
        (r"server 127\.0\.0\.1:800\d;", f"server 127.0.0.1:{backend};"),
    ]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count, f"the sample no longer contains {pattern!r}"
    for path in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        text = text.replace("http {\n", f"http {{\n    {path}_temp_path {tmp}/{path}_temp;\n", 1)
    return text


@pytest.fixture(scope="module")
def nginx(gunicorn_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nginx")
    os.chmod(tmp, 0o777)  # workers may run as nobody
    port = free_port()
    config = tmp / "nginx.conf"
    config.write_text(rewrite(SAMPLE.read_text(), tmp, port, gunicorn_server.port))
    check = subprocess.run([NGINX, "-t", "-p", str(tmp), "-c", str(config)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    log = open(tmp / "stderr.log", "wb")
    process = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(config), "-g", "daemon off;"],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    import requests

    deadline = time.monotonic() + 10
    while True:
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError((tmp / "error.log").read_text() if (tmp / "error.log").exists() else "nginx failed")
        time.sleep(0.1)
    yield type("Nginx", (), {"url": url, "port": port, "log": lambda self: gunicorn_server.log()})()
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    log.close()


CHAT = {"model": "reflection-and-thinking", "messages": [{"role": "user", "content": "owls"}]}


def test_sse_streams_through_nginx_incrementally(nginx):
    sock = http_request(nginx.port, "POST", "/api/chat", json.dumps(CHAT).encode(), {"Content-Type": "application/json"})
    with sock:
        head = read_until(sock, b"\r\n\r\n", 10)
        headers = head.split(b"\r\n\r\n", 1)[0].decode().lower()
        assert headers.startswith("http/1.1 200") and "transfer-encoding: chunked" in headers
        data = read_until(sock, b"Analyzing the request", 10, head)
        first = time.monotonic()
        assert b"After deep reflection" not in data  # not held back in nginx's buffers
        data = read_until(sock, b"data: [DONE]", 15, data)
        assert time.monotonic() - first > 1.0
    assert b"is indeed interesting." in data


def test_python_socketio_through_nginx(nginx):
    for transports in (["websocket"], ["polling"]):
        client = socketio.Client(reconnection=False)
        chunks = []
        done = threading.Event()
        client.on("chunk", lambda data, chunks=chunks: chunks.append(data["content"]))
        client.on("complete", lambda *a, done=done: done.set())
        client.connect(nginx.url, transports=transports, wait_timeout=10)
        try:
            assert client.transport() == transports[0]
            client.emit("chat", CHAT)
            assert done.wait(15)
        finally:
            client.disconnect()
        assert "".join(chunks) == EXPECTED


def test_nginx_absorbs_more_idle_connections_than_gunicorn_has_slots(nginx):
    """1,010 idle TCP connections (gunicorn's worker_connections is 1,000):
    nginx holds them itself, and /health still answers through it."""
    import socket

    import requests

    idle = []
    try:
        for _ in range(1010):
            idle.append(socket.create_connection(("127.0.0.1", nginx.port), timeout=5))
        started = time.monotonic()
        response = requests.get(nginx.url + "/health?format=json", timeout=5)
        assert response.status_code == 200 and response.json()["status"] == "ok"
        assert time.monotonic() - started < 2
    finally:
        for sock in idle:
            sock.close()


def test_javascript_client_upgrades_through_nginx(nginx):
    outcome = run_client(nginx.url, "default")
    assert outcome["transports"] == ["polling", "websocket"] and "".join(outcome["chunks"]) == EXPECTED
