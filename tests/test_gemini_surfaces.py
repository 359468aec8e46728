"""A Gemini model behind the current surfaces: the Workbench /api/chat SSE
and its Socket.IO fallback show thinking then text; a client that leaves
mid-stream (test client and a real socket) closes the upstream connection."""
from __future__ import annotations

import time

import pytest
import requests

from proxy import sse
from tests.fakes.gemini import gemini
from tests.fakes.live import serve
from tests.fakes.upstream import Reply
from tests.gemini_helpers import MODEL, gemini_app

pytestmark = pytest.mark.integration

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "27 × 453?"}]}


def _thinking(**kwargs) -> Reply:
    from tests.gemini_helpers import sse as transcript

    return Reply.sse(transcript("thinking.sse"), **kwargs)


def test_workbench_api_chat_streams_thinking_then_text(fake_upstream):
    fake_upstream.reply(gemini(_thinking()))
    response = gemini_app(fake_upstream).test_client().post("/api/chat", json=CHAT)
    assert response.status_code == 200
    events = sse.parse(response.get_data())
    names = [(e.event, e.data) for e in events]
    assert names[0][0] == "thinking" and "Computing the product" in names[0][1]
    assert names[1] == ("message", '{"content":"27 × 453 = 12,231"}')
    assert names[-1] == ("message", "[DONE]")
    assert not any(e.event == "error" for e in events)


def test_workbench_api_chat_reports_an_upstream_error_status(fake_upstream):
    from tests.fakes.gemini import error_reply

    fake_upstream.reply(gemini(error_reply(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")))
    response = gemini_app(fake_upstream).test_client().post("/api/chat", json=CHAT)
    assert response.status_code == 502 and "overloaded" in response.get_json()["error"]["message"]


def test_socketio_chat_streams_thinking_then_text(fake_upstream):
    fake_upstream.reply(gemini(_thinking()))
    app = gemini_app(fake_upstream)
    client = app.extensions["socketio"].test_client(app)
    client.emit("chat", {"messages": CHAT["messages"], "model": MODEL})
    received = client.get_received()
    names = [m["name"] for m in received]
    assert names == ["thinking", "chunk", "complete"]
    assert "Computing the product" in received[0]["args"][0]["content"]
    assert received[1]["args"][0] == {"content": "27 × 453 = 12,231"}
    client.disconnect()


def test_test_client_leaving_mid_stream_closes_the_upstream(fake_upstream):
    fake_upstream.reply(gemini(_thinking(stall_after=1, stall=10)))
    app = gemini_app(fake_upstream, heartbeat_seconds=0.1)
    response = app.test_client().post("/api/chat", json=CHAT, buffered=False)
    body = iter(response.response)
    assert b"thinking" in next(body)
    response.close()
    assert fake_upstream.wait_closed(1.0)
    assert fake_upstream.disconnects and fake_upstream.completed == 0


def test_real_socket_client_leaving_mid_stream_closes_the_upstream(fake_upstream):
    fake_upstream.reply(gemini(_thinking(stall_after=1, stall=10)))
    app = gemini_app(fake_upstream, heartbeat_seconds=0.1)
    with serve(app) as base_url:
        with requests.post(f"{base_url}/api/chat", json=CHAT, stream=True, timeout=5) as response:
            first = next(response.iter_lines())
            assert first.startswith(b"event: thinking")
        left = time.monotonic()
        assert fake_upstream.wait_closed(1.0)
        assert fake_upstream.disconnects and fake_upstream.disconnects[-1] - left < 1.0
        assert fake_upstream.completed == 0
