"""CORS, heartbeats, and client disconnects on the HTTP surface (test client
and a real threaded server over a socket)."""
from __future__ import annotations

import json
import time

import pytest

from proxy import create_app

from .helpers import ServerThread, http_request, read_until, split_frames, wait_until

pytestmark = pytest.mark.integration

ORIGIN = "http://ui.example"


def demo_provider(app):
    return app.extensions["switchboard"].router.providers["demo"]


# --- CORS -----------------------------------------------------------------

def preflight(client, path):
    return client.options(path, headers={
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization, x-custom",
        "Access-Control-Request-Private-Network": "true",
    })


@pytest.mark.parametrize("path", ["/api/chat", "/v1/models", "/health", "/"])
def test_preflight(client, path):
    response = preflight(client, path)
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    for header in ("content-type", "authorization", "x-custom"):
        assert header in allowed
    # A public page may not reach a private-network Switchboard unless the
    # deployment says so (SWITCHBOARD_CORS_PRIVATE_NETWORK).
    assert response.headers.get("Access-Control-Allow-Private-Network") != "true"


def test_private_network_access_when_configured(tmp_path):
    client = create_app({"demo_delay": 0, "cors_private_network": True,
                         "database_path": str(tmp_path / "s.db")}).test_client()
    assert preflight(client, "/api/chat").headers["Access-Control-Allow-Private-Network"] == "true"


def test_acao_on_sse_and_on_errors(client):
    headers = {"Origin": ORIGIN}
    response = client.post("/api/chat", json={"messages": [{"role": "user", "content": "x"}]}, headers=headers)
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)
    for response in (
        client.post("/api/chat", data=b"{", content_type="application/json", headers=headers),
        client.post("/api/chat", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]},
                    headers=headers),
        client.get("/nope", headers=headers),
    ):
        assert response.status_code >= 400
        assert response.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)


def test_origin_allowlist():
    client = create_app({"demo_delay": 0, "cors_origins": [ORIGIN]}).test_client()
    body = {"messages": [{"role": "user", "content": "x"}]}
    allowed = client.post("/api/chat", json=body, headers={"Origin": ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    other = client.post("/api/chat", json=body, headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = client.options("/api/chat", headers={"Origin": "http://evil.example",
                                                     "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers


# --- heartbeats -------------------------------------------------------------

def test_heartbeats_while_the_provider_is_silent():
    client = create_app({"demo_delay": 0.3, "heartbeat_seconds": 0.02}).test_client()
    response = client.post("/api/chat", json={"model": "reflection-and-thinking",
                                             "messages": [{"role": "user", "content": "x"}]})
    frames = split_frames(response.get_data())
    assert frames[-1] == "data: [DONE]"
    events = [f for f in frames if not f.startswith(":")]
    assert len(events) == 6  # nothing lost or reordered by the heartbeats
    # keepalive comments between the second thinking event and the first content (a 0.3 s pause)
    second_thinking = frames.index(events[1])
    first_content = frames.index(events[2])
    assert any(f == ": keepalive" for f in frames[second_thinking + 1:first_content])


# --- disconnect ------------------------------------------------------------

def slow_app():
    return create_app({"demo_delay": 1.0, "heartbeat_seconds": 0.05})


def test_closing_the_response_cancels_the_provider_test_client():
    app = slow_app()
    client = app.test_client()
    response = client.post("/api/chat", json={"model": "reflection-and-thinking",
                                             "messages": [{"role": "user", "content": "x"}]}, buffered=False)
    first = next(iter(response.response))
    assert b"Analyzing" in first or first.startswith(b":")
    stream = demo_provider(app).recent[-1]
    assert stream.finished_at is None
    closed = time.monotonic()
    response.close()
    assert wait_until(lambda: stream.finished_at is not None, 1.0)
    assert stream.cancelled_at is not None and stream.cancelled_at - closed < 1.0
    assert stream.finished_at - closed < 1.0


def test_client_dropping_the_socket_cancels_the_provider_real_server():
    app = slow_app()
    with ServerThread(app) as server:
        body = json.dumps({"model": "reflection-and-thinking", "messages": [{"role": "user", "content": "x"}]}).encode()
        sock = http_request(server.port, "POST", "/api/chat", body, {"Content-Type": "application/json"})
        data = read_until(sock, b"Analyzing", 5)
        assert b"Transfer-Encoding: chunked" in data
        stream = demo_provider(app).recent[-1]
        assert stream.finished_at is None  # still running: the answer has seconds to go
        sock.close()
        closed = time.monotonic()
        assert wait_until(lambda: stream.finished_at is not None, 1.5)
        assert stream.cancelled.is_set()
        assert stream.finished_at - closed < 1.0


def test_a_full_stream_is_not_cancelled():
    app = create_app({"demo_delay": 0})
    app.test_client().post("/api/chat", json={"messages": [{"role": "user", "content": "x"}]}).get_data()
    stream = demo_provider(app).recent[-1]
    # the provider's generator was closed when the stream ended (it released
    # its upstream), not left suspended after Finish
    assert wait_until(lambda: stream.finished_at is not None, 1.0)


def test_health_counts_streams_still_holding_their_upstream():
    app = slow_app()
    client = app.test_client()
    assert client.get("/health?format=json").get_json()["open_streams"] == 0
    response = client.post("/api/chat", json={"model": "reflection-and-thinking",
                                             "messages": [{"role": "user", "content": "x"}]}, buffered=False)
    next(iter(response.response))
    assert client.get("/health?format=json").get_json()["open_streams"] == 1
    response.close()
    assert wait_until(lambda: client.get("/health?format=json").get_json()["open_streams"] == 0, 1.0)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None])
@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions", "/api/conversations"])
def test_a_simple_cross_origin_request_runs_nothing(tmp_path, path, content_type):
    """Browsers send these content types cross-origin without a preflight:
    refusing them (415) means a page on another site cannot drive this
    server, even where CORS would not let it read the answer."""
    app = create_app({"demo_delay": 0, "cors_origins": [ORIGIN], "database_path": str(tmp_path / "x.db")})
    client = app.test_client()
    body = json.dumps({"model": "mock", "messages": [{"role": "user", "content": "spend my money"}], "title": "x"})
    response = client.post(path, data=body, content_type=content_type, headers={"Origin": "https://evil.example"})
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"
    assert "Access-Control-Allow-Origin" not in response.headers
    assert len(demo_provider(app).recent) == 0  # no model was asked
    assert app.extensions["switchboard"].store.list_conversations("") == []  # nothing was stored
