"""The Socket.IO fallback with the flask-socketio test client: chunks then
complete, Workbench extension events, concurrent chats with ids, cancel,
disconnect, bad input as `error {message}`, and engine.io origin checks."""
from __future__ import annotations

import gc
import json
import threading
import time

import pytest
import requests
import socketio

from proxy import create_app

from .helpers import ServerThread, wait_until

pytestmark = pytest.mark.integration

MSG = [{"role": "user", "content": "owls"}]


def sio_client(app, **kwargs):
    return app.extensions["socketio"].test_client(app, **kwargs)


def demo(app):
    return app.extensions["switchboard"].router.providers["demo"]


def received(client):
    return [(packet["name"], packet["args"]) for packet in client.get_received()]


def test_chunks_then_complete(app):
    client = sio_client(app)
    client.emit("chat", {"messages": MSG})
    events = received(client)
    assert events == [
        ("chunk", [{"content": "This is a response from the mock model. I received your message: "}]),
        ("chunk", [{"content": "owls"}]),
        ("complete", []),
    ]


def test_thinking_plan_and_todo_events(app):
    client = sio_client(app)
    client.emit("chat", {"model": "reflection-and-thinking", "messages": MSG})
    events = received(client)
    assert [n for n, _ in events] == ["thinking", "thinking", "chunk", "chunk", "chunk", "complete"]
    assert events[0][1] == [{"content": "Analyzing the request...\n"}]
    client.emit("chat", {"model": "agent-demo", "messages": MSG})
    names = [n for n, _ in received(client)]
    assert names[0] == "plan_update" and {"thinking", "todo_update", "chunk"} <= set(names)
    assert names[-1] == "complete" and "error" not in names


@pytest.mark.parametrize("data, says", [
    (None, "JSON object"),
    ("hello", "JSON object"),
    ({}, "'messages' is required"),
    ({"messages": []}, "must not be empty"),
    ({"messages": "hi"}, "must be an array"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"model": 3, "messages": MSG}, "'model'"),
    ({"model": "nope", "messages": MSG}, "unknown model 'nope'"),
])
def test_bad_input_is_an_error_event(app, data, says):
    client = sio_client(app)
    if data is None:
        client.emit("chat")
    else:
        client.emit("chat", data)
    events = received(client)
    assert len(events) == 1 and events[0][0] == "error"
    assert says in events[0][1][0]["message"]
    assert client.is_connected()


# The python-socketio client leaks the socket of a session the server dropped
# (a client-library behaviour, not ours): collect it inside this test, where
# its ResourceWarning is expected, instead of in whichever test runs the GC.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_oversize_message_closes_the_connection_and_the_server_stays_up():
    """engine.io enforces max_body_bytes itself, before any handler runs: an
    oversize message closes that client's connection (there is no way to
    answer it with an `error` event); the server goes on serving."""
    app = create_app({"demo_delay": 0, "max_body_bytes": 2000})
    sessions = app.extensions["socketio"].server.eio.sockets  # engine.io's live sessions
    with ServerThread(app) as server:
        url = f"http://127.0.0.1:{server.port}"
        for transports in (["websocket"], ["polling"]):
            client = socketio.Client(reconnection=False)  # the server closes it on purpose: no reconnecting thread left behind
            gone = threading.Event()
            client.on("disconnect", lambda *a, gone=gone: gone.set())
            client.connect(url, transports=transports, wait_timeout=5)
            session = client.eio.sid
            assert session in sessions
            client.emit("chat", {"messages": [{"role": "user", "content": "x" * 5000}]})
            # websocket: the server closes the WebSocket and the client sees it;
            # polling: the server drops the session (the python client may
            # only notice at its next poll)
            assert wait_until(lambda gone=gone, session=session: gone.is_set() or session not in sessions, 5), transports
            client.disconnect()
        client = socketio.Client(reconnection=False)
        done = threading.Event()
        client.on("complete", lambda *a: done.set())
        client.connect(url, transports=["polling"], wait_timeout=5)
        client.emit("chat", {"messages": [{"role": "user", "content": "x" * 100}]})
        assert done.wait(5)
        client.disconnect()
    gc.collect()


def test_malformed_packet_does_not_break_the_session():
    """A Socket.IO packet that is not JSON never reaches a handler (python-socketio
    drops it); the session goes on and the next bad chat gets its error event."""
    app = create_app({"demo_delay": 0})
    with ServerThread(app) as server:
        base = f"http://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=polling"
        handshake = requests.get(base, timeout=5)
        url = base + "&sid=" + json.loads(handshake.text[1:])["sid"]
        assert requests.post(url, data="40", timeout=5).status_code == 200
        assert requests.get(url, timeout=5).text.startswith("40{")
        assert requests.post(url, data='42["chat",{"messages": [', timeout=5).status_code == 200
        assert requests.post(url, data='42["chat",{"messages":[]}]', timeout=5).status_code == 200
        answer = requests.get(url, timeout=5).text
        assert answer.startswith('42["error",') and "must not be empty" in answer


def test_in_band_error_event_when_the_provider_dies(app):
    from proxy.errors import UpstreamError

    from .helpers import register, text_then

    def tail():
        raise UpstreamError("upstream died", code="upstream_died")
        yield  # pragma: no cover
    register(app, "dies", text_then(tail))
    client = sio_client(app)
    client.emit("chat", {"model": "dies", "messages": MSG})
    assert received(client) == [("chunk", [{"content": "partial"}]),
                                ("error", [{"message": "upstream died", "code": "upstream_died"}])]


def slow_app():
    return create_app({"demo_delay": 1.0, "heartbeat_seconds": 0.05})


def in_thread(target, *args):
    """The test client runs a handler inline: emit from a thread so that
    several chats (and a cancel or disconnect) overlap as on a real socket."""
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def test_several_chats_on_one_socket_do_not_mix():
    app = create_app({"demo_delay": 0.2})
    client = sio_client(app)
    threads = [
        in_thread(client.emit, "chat", {"id": "a", "model": "mock", "messages": [{"role": "user", "content": "alpha"}]}),
        in_thread(client.emit, "chat", {"id": "b", "model": "reflection-and-thinking",
                                        "messages": [{"role": "user", "content": "beta"}]}),
    ]
    assert wait_until(lambda: app.extensions["switchboard"].socket_chats.count() == 2, 5)  # both running at once
    for thread in threads:
        thread.join(10)
    events = received(client)
    assert sum(1 for n, _ in events if n == "complete") == 2
    by_id: dict = {}
    for name, args in events:
        assert args and "id" in args[0], (name, args)  # every payload carries its chat's id
        by_id.setdefault(args[0]["id"], []).append((name, args[0].get("content")))
    assert set(by_id) == {"a", "b"}
    assert "".join(c for n, c in by_id["a"] if n == "chunk").endswith("alpha")
    assert "".join(c for n, c in by_id["b"] if n == "chunk") == \
        "After deep reflection, I have concluded that beta is indeed interesting."
    assert [n for n, _ in by_id["b"]][:2] == ["thinking", "thinking"]
    assert [n for n, _ in by_id["b"]][-1] == "complete"


def test_cancel_stops_one_chat():
    app = slow_app()
    client = sio_client(app)
    threads = [in_thread(client.emit, "chat", {"id": tag, "model": "reflection-and-thinking", "messages": MSG})
               for tag in ("c1", "c2")]
    assert wait_until(lambda: app.extensions["switchboard"].socket_chats.count() == 2, 5)
    # a chat is registered before its stream opens: wait for both streams
    assert wait_until(lambda: len(demo(app).recent) == 2, 5)
    streams = list(demo(app).recent)
    client.emit("cancel", {"id": "c1"})
    assert wait_until(lambda: any(s.finished_at is not None for s in streams), 1.0)
    cancelled = [s for s in streams if s.cancelled.is_set()]
    assert len(cancelled) == 1  # only the chat named c1
    client.emit("cancel", {"id": "c2"})
    for thread in threads:
        thread.join(5)
    assert all(s.finished_at is not None for s in streams)
    events = received(client)
    names = [n for n, _ in events]
    assert "complete" not in names  # a cancelled chat is not passed off as complete
    # ...and each ends in exactly one error, saying it was cancelled
    errors = [args[0] for n, args in events if n == "error"]
    assert sorted(error["id"] for error in errors) == ["c1", "c2"]
    assert {error["code"] for error in errors} == {"cancelled"}


def test_disconnect_cancels_the_sockets_chats():
    app = slow_app()
    client = sio_client(app)
    threads = [in_thread(client.emit, "chat", {"model": "reflection-and-thinking", "messages": MSG}),
               in_thread(client.emit, "chat", {"id": 2, "model": "agent-demo", "messages": MSG})]
    assert wait_until(lambda: app.extensions["switchboard"].socket_chats.count() == 2, 5)
    assert wait_until(lambda: len(demo(app).recent) == 2, 5)  # both streams open
    # let both chats send their first events and enter a long pause: the
    # test client's own queue breaks if an emit races its disconnect
    time.sleep(0.3)
    streams = list(demo(app).recent)
    client.disconnect()
    assert wait_until(lambda: all(s.finished_at is not None for s in streams), 1.0)
    assert all(s.cancelled.is_set() for s in streams)
    for thread in threads:
        thread.join(5)
    assert app.extensions["switchboard"].socket_chats.count() == 0


def test_engineio_origin_allowlist_over_http():
    """engine.io checks Origin itself (the test client bypasses it): a real server."""
    app = create_app({"demo_delay": 0, "cors_origins": ["http://ui.example"]})
    with ServerThread(app) as server:
        url = f"http://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=polling"
        allowed = requests.get(url, headers={"Origin": "http://ui.example"}, timeout=5)
        assert allowed.status_code == 200 and allowed.text.startswith("0{")
        assert allowed.headers["Access-Control-Allow-Origin"] == "http://ui.example"
        refused = requests.get(url, headers={"Origin": "http://evil.example"}, timeout=5)
        assert refused.status_code == 400 and "Access-Control-Allow-Origin" not in refused.headers
        # a real client from the allowed origin chats; from another origin it cannot connect
        # websocket-client adds its own Origin header unless told not to
        good = socketio.Client(reconnection=False, websocket_extra_options={"suppress_origin": True})
        done = threading.Event()
        chunks = []
        good.on("chunk", lambda data: chunks.append(data["content"]))
        good.on("complete", lambda *a: done.set())
        good.connect(f"http://127.0.0.1:{server.port}", headers={"Origin": "http://ui.example"},
                     transports=["websocket"], wait_timeout=5)
        good.emit("chat", {"messages": MSG})
        assert done.wait(5) and chunks[-1] == "owls"
        good.disconnect()
        bad = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            bad.connect(f"http://127.0.0.1:{server.port}", headers={"Origin": "http://evil.example"},
                        transports=["polling"], wait_timeout=5)
