"""The Anthropic provider behind the current surfaces, and clients that leave:
Workbench /api/chat (SSE) and its Socket.IO fallback stream thinking then
text; a departing client closes the upstream connection within a second."""
from __future__ import annotations

import pytest
import requests

from proxy import sse
from tests.fakes.anthropic import AnthropicUpstream, make_app
from tests.fakes.anthropic import sse as sse_reply
from tests.fakes.live import serve

pytestmark = pytest.mark.integration

MODEL = "anthropic/claude-sonnet-4-5"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "27 * 453?"}]}


@pytest.fixture
def fake():
    with AnthropicUpstream() as server:
        yield server


def test_workbench_streams_thinking_then_text(fake):
    fake.reply(sse_reply("thinking_signature.sse"))
    response = make_app(fake).test_client().post("/api/chat", json=BODY)
    assert response.status_code == 200
    events = sse.parse(response.get_data())
    assert [(e.event, e.data) for e in events] == [
        ("thinking", '{"content":"The user asks for 27 * 453. 27*400=10800, 27*53=1431"}'),
        ("thinking", '{"content":", total 12231."}'),
        ("message", '{"content":"27 × 453 = 12,231"}'),
        ("message", "[DONE]"),
    ]


def test_workbench_midstream_overloaded_is_an_in_band_error(fake):
    fake.reply(sse_reply("overloaded_midstream.sse"))
    response = make_app(fake).test_client().post("/api/chat", json=BODY)
    events = sse.parse(response.get_data())
    assert events[0].data == '{"content":"Hello"}'
    errors = [e for e in events if e.event == "error"]
    assert len(errors) == 1 and '"code":"overloaded_error"' in errors[0].data
    assert events[-1].data == "[DONE]"


def test_socketio_streams_thinking_then_text(fake):
    fake.reply(sse_reply("thinking_signature.sse"))
    app = make_app(fake)
    client = app.extensions["socketio"].test_client(app)
    client.emit("chat", BODY)
    received = [(m["name"], m["args"][0] if m["args"] else None) for m in client.get_received()]
    client.disconnect()
    assert received == [
        ("thinking", {"content": "The user asks for 27 * 453. 27*400=10800, 27*53=1431"}),
        ("thinking", {"content": ", total 12231."}),
        ("chunk", {"content": "27 × 453 = 12,231"}),
        ("complete", None),
    ]


def test_test_client_disconnect_closes_the_upstream(fake):
    fake.reply(sse_reply("basic_text.sse", delay=0.5))  # ~4 s if nobody leaves
    response = make_app(fake).test_client().post("/api/chat", json=BODY, buffered=False)
    chunks = iter(response.response)
    first = next(chunks)
    assert b"Hello" in first
    response.close()
    assert fake.wait_closed(1.0)
    assert fake.disconnects and fake.completed == 0


def test_real_socket_disconnect_closes_the_upstream(fake):
    fake.reply(sse_reply("basic_text.sse", delay=0.5))
    app = make_app(fake, heartbeat_seconds=0.2)
    with serve(app) as base_url:
        with requests.post(f"{base_url}/api/chat", json=BODY, stream=True, timeout=5) as response:
            assert response.status_code == 200
            seen = b""
            for chunk in response.iter_content(chunk_size=None):  # heartbeats first, then content
                seen += chunk
                if b"Hello" in seen or len(seen) > 10_000:
                    break
            assert b"Hello" in seen
        assert fake.wait_closed(1.0)
    assert fake.disconnects and fake.completed == 0
