"""Every stream ends honestly, over real sockets: clients that leave before
the upstream answered (also during a retry back-off) stop every attempt, a
stalled upstream is answered within the first-byte deadline, a killed
long-polling Socket.IO client is noticed by the ping timeout, nothing of a
finished stream stays alive, and /health counts the open streams of every
surface exactly."""
from __future__ import annotations

import gc
import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import socketio

from proxy import create_app
from proxy.config import ProviderSettings

from .fakes.upstream import FakeUpstream, Reply, split_events, transcript
from .helpers import ServerThread, http_request, read_until, wait_until

pytestmark = pytest.mark.integration

KEY = "sk-lifecycle-test-key-0123456789"
MESSAGES = [{"role": "user", "content": "hi"}]
MODEL = "openai/gpt-test"
CLIENTS = 100
TEXT = transcript("openai", "openrouter_text.sse")
WHOLE = transcript("openai", "nonstream_text.json")


def make_app(fake: FakeUpstream, tmp_path, **settings):
    values = {"demo_delay": 0, "database_path": str(tmp_path / "lifecycle.db"), "first_byte_timeout": 0,
              "idle_timeout": 60, "providers": {"openai": ProviderSettings(
                  api_key=KEY, base_url=fake.url + "/v1", key_variable="OPENAI_API_KEY")}}
    values.update(settings)
    return create_app(values)


def board(app):
    return app.extensions["switchboard"]


def answer_for(stall: float = 0.0, **kwargs):
    """The fake's reply: SSE for a streaming request, JSON otherwise (paced,
    so that a stall before the headers holds it too)."""
    def reply(received):
        if received.json.get("stream"):
            return Reply.sse(TEXT, first_delay=stall, **kwargs)
        return Reply(chunks=[WHOLE], content_type="application/json", paced=True, first_delay=stall, **kwargs)
    return reply


# -- leaving before the upstream answered --------------------------------------

SURFACES = ["api_chat", "v1_stream", "v1_whole", "socketio"]


def http_body(surface: str) -> tuple[str, bytes]:
    if surface == "api_chat":
        return "/api/chat", json.dumps({"model": MODEL, "messages": MESSAGES}).encode()
    stream = surface == "v1_stream"
    return "/v1/chat/completions", json.dumps({"model": MODEL, "messages": MESSAGES, "stream": stream}).encode()


class Clients:
    """CLIENTS clients of one surface, each with one chat in flight."""

    def __init__(self, surface: str, server: ServerThread) -> None:
        self.surface = surface
        self.server = server
        self.items: list = []

    def start(self, count: int) -> None:
        if self.surface == "socketio":
            def connect(_):
                client = socketio.Client(reconnection=False)
                client.connect(self.server.url, transports=["websocket"], wait_timeout=10)
                client.emit("chat", {"model": MODEL, "messages": MESSAGES})
                return client
            with ThreadPoolExecutor(16) as pool:
                self.items = list(pool.map(connect, range(count)))
        else:
            path, body = http_body(self.surface)
            self.items = [http_request(self.server.port, "POST", path, body, {"Content-Type": "application/json"})
                          for _ in range(count)]

    def leave(self) -> None:
        if self.surface == "socketio":
            # as a closed browser tab: the connection just goes
            for client in self.items:
                client.eio.ws.sock.shutdown(socket.SHUT_RDWR)
        else:
            for sock in self.items:
                sock.close()

    def close(self) -> None:
        if self.surface == "socketio":
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda client: client.eio.disconnect(abort=True), self.items))


@pytest.mark.parametrize("surface", SURFACES)
def test_clients_leaving_before_the_upstream_headers_stop_every_attempt(surface, tmp_path):
    """The upstream never sends its headers; every client leaves: each
    attempt is hung up within a second, and no retry starts."""
    with FakeUpstream(answer_for(stall=60)) as fake:
        app = make_app(fake, tmp_path, max_retries=2, retry_base_delay=0.05)
        with ServerThread(app) as server:
            clients = Clients(surface, server)
            try:
                clients.start(CLIENTS)
                assert wait_until(lambda: fake.opened == CLIENTS, 20), fake.opened
                left = time.monotonic()
                clients.leave()
                assert wait_until(lambda: fake.closed == CLIENTS, 1.0), (fake.opened, fake.closed)
                assert time.monotonic() - left < 1.0
                assert wait_until(lambda: len(board(app).open_chats) == 0, 1.0)
                time.sleep(0.3)  # a retry would have started by now (back-off 0.05 s)
                assert len(fake.received) == CLIENTS
            finally:
                clients.close()


@pytest.mark.parametrize("surface", SURFACES)
def test_clients_leaving_during_a_retry_back_off_stop_the_retries(surface, tmp_path):
    """The upstream answers 503 with Retry-After: 3; the clients leave while
    the router waits: the waits end at once and no retry reaches the upstream."""
    wait = 3.0
    first = []

    def busy(received):
        first.append(time.monotonic())
        return Reply.json({"error": {"message": "overloaded (scripted)"}}, status=503,
                          headers={"Retry-After": f"{wait:g}"})
    with FakeUpstream(busy) as fake:
        app = make_app(fake, tmp_path, max_retries=2)
        with ServerThread(app) as server:
            clients = Clients(surface, server)
            try:
                clients.start(CLIENTS)
                assert wait_until(lambda: len(fake.received) >= CLIENTS, 20), len(fake.received)
                first_retry = first[0] + wait
                assert time.monotonic() < first_retry - 0.2, "the clients took too long to start"
                clients.leave()
                assert wait_until(lambda: len(board(app).open_chats) == 0, 1.0)
                time.sleep(max(0.0, first_retry - time.monotonic()) + 0.3)
                assert len(fake.received) == CLIENTS
            finally:
                clients.close()


# -- the first-byte deadline ---------------------------------------------------

def test_a_stalled_upstream_with_retries_answers_within_the_first_byte_deadline(tmp_path):
    """Idle timeout 0.6 s and two retries would keep the client ~2 s without a
    byte; the first-byte deadline (1 s) answers 504 upstream_timeout at 1 s.
    An unstreamed request (its whole answer is its first byte) has the total
    timeout (1.4 s here) as its deadline across the attempts instead."""
    with FakeUpstream(answer_for(stall=30)) as fake:
        app = make_app(fake, tmp_path, max_retries=2, retry_base_delay=0.05, idle_timeout=0.6, first_byte_timeout=1.0,
                       total_timeout=1.4)
        with ServerThread(app) as server:
            for stream, deadline, which in ((True, 1.0, b"first byte timeout"), (False, 1.4, b"total timeout")):
                started = time.monotonic()
                response = requests.post(server.url + "/v1/chat/completions", timeout=10,
                                         json={"model": MODEL, "messages": MESSAGES, "stream": stream})
                elapsed = time.monotonic() - started
                assert response.status_code == 504, response.text
                assert response.json()["error"]["code"] == "upstream_timeout" and which in response.content
                assert deadline - 0.1 < elapsed < deadline + 0.6, elapsed
            assert wait_until(lambda: fake.open_streams == 0, 1.0)


def test_headers_then_silence_gets_heartbeats_then_an_in_band_timeout(tmp_path):
    """The upstream sends its headers and a comment, then nothing: the client
    has its 200 and heartbeats while it waits, then the in-band 504 at the deadline."""
    chunks = [b": OPENROUTER PROCESSING\n\n"] + split_events(TEXT)
    with FakeUpstream(Reply(chunks=chunks, stall_after=1, stall=30)) as fake:
        app = make_app(fake, tmp_path, max_retries=0, first_byte_timeout=1.5, heartbeat_seconds=0.2)
        with ServerThread(app) as server:
            started = time.monotonic()
            response = requests.post(server.url + "/v1/chat/completions", stream=True, timeout=10,
                                     json={"model": MODEL, "messages": MESSAGES, "stream": True})
            assert response.status_code == 200
            body = b"".join(response.iter_content(None))
            elapsed = time.monotonic() - started
    assert body.count(b": keepalive") >= 3
    assert b"upstream_timeout" in body and b"first byte timeout" in body
    assert 1.4 < elapsed < 2.2, elapsed


# -- a killed long-polling Socket.IO client ------------------------------------

POLLING_CLIENT = textwrap.dedent("""
    import sys, socketio
    client = socketio.Client(reconnection=False)
    client.on("chunk", lambda data: print("chunk", flush=True))
    client.connect(sys.argv[1], transports=["polling"], wait_timeout=10)
    client.emit("chat", {"model": sys.argv[2], "messages": [{"role": "user", "content": "hi"}]})
    client.wait()
""")


@pytest.mark.e2e  # the client is another process, killed
def test_a_killed_polling_client_is_noticed_within_the_ping_timeout(tmp_path):
    interval, timeout = 1, 1
    chunks = split_events(TEXT)
    # one chunk, then the upstream is silent: only the heartbeat can notice the client
    with FakeUpstream(Reply(chunks=chunks, stall_after=2, stall=60)) as fake:
        app = make_app(fake, tmp_path, socketio_ping_interval=interval, socketio_ping_timeout=timeout)
        with ServerThread(app) as server:
            client = subprocess.Popen([sys.executable, "-c", POLLING_CLIENT, server.url, MODEL],
                                      stdout=subprocess.PIPE, text=True)
            try:
                assert client.stdout.readline().strip() == "chunk"
                assert fake.open_streams == 1
                client.kill()
                killed = time.monotonic()
                client.wait(5)
                # Engine.IO: the next ping goes out within `interval`, the
                # client is dropped `timeout` after it (checked by a service
                # task that visits every socket once per `timeout`).
                assert wait_until(lambda: fake.open_streams == 0, interval + 2 * timeout + 1.0)
                noticed = time.monotonic() - killed
            finally:
                if client.poll() is None:
                    client.kill()
                client.stdout.close()
    assert noticed <= interval + 2 * timeout + 0.5, noticed
    assert len(board(app).open_chats) == 0


# -- accounting and memory -------------------------------------------------------

def test_open_streams_counts_every_surface_exactly(tmp_path):
    per_surface = 5
    chunks = split_events(TEXT)
    with FakeUpstream(Reply(chunks=chunks, stall_after=2, stall=60)) as fake:
        # a departed HTTP client is noticed at the next write: a heartbeat
        app = make_app(fake, tmp_path, heartbeat_seconds=0.2)
        with ServerThread(app) as server:
            sockets, clients = [], []
            try:
                for surface in ("api_chat", "v1_stream"):
                    path, body = http_body(surface)
                    for _ in range(per_surface):
                        sock = http_request(server.port, "POST", path, body, {"Content-Type": "application/json"})
                        read_until(sock, b"Bon", 5)
                        sockets.append(sock)
                for _ in range(per_surface):
                    client = socketio.Client(reconnection=False)
                    got = threading.Event()
                    client.on("chunk", lambda data, got=got: got.set())
                    client.connect(server.url, transports=["websocket"], wait_timeout=10)
                    client.emit("chat", {"model": MODEL, "messages": MESSAGES})
                    assert got.wait(5)
                    clients.append(client)
                health = requests.get(server.url + "/health?format=json", timeout=5).json()
                assert health["open_streams"] == 3 * per_surface
                assert fake.open_streams == 3 * per_surface
            finally:
                for sock in sockets:
                    sock.close()
                with ThreadPoolExecutor(per_surface) as pool:
                    list(pool.map(lambda client: client.eio.disconnect(abort=True), clients))
            assert wait_until(lambda: requests.get(server.url + "/health?format=json", timeout=5)
                              .json()["open_streams"] == 0, 3)
            assert wait_until(lambda: fake.open_streams == 0, 2)


def live(*names: str) -> dict[str, int]:
    """Objects still alive once the garbage is collected."""
    gc.collect()
    return tracked(names)


KINDS = ("ResilientStream", "UpstreamStream", "ChatRequest", "Chat", "SSEReader", "Response")


def test_nothing_of_a_finished_stream_stays_alive(tmp_path):
    """1,000 streams over every surface, finished, cut by the client, or
    failed; then no stream, request or upstream response object is alive."""
    with FakeUpstream(answer_for()) as fake:
        app = make_app(fake, tmp_path)
        client = app.test_client()
        sio = app.extensions["socketio"].test_client(app)
        baseline = live(*KINDS)
        for round in range(125):
            for model in (MODEL, "mock"):
                with client.post("/api/chat", json={"model": model, "messages": MESSAGES}) as response:
                    if round % 5 == 0:  # a client that leaves after the first frame
                        next(iter(response.response))
                    else:
                        assert response.get_data().endswith(b"\n\n")
                client.post("/v1/chat/completions", json={"model": model, "messages": MESSAGES, "stream": True}
                            ).get_data()
                assert client.post("/v1/chat/completions", json={"model": model, "messages": MESSAGES}
                                   ).status_code == 200
                sio.emit("chat", {"model": model, "messages": MESSAGES})
                assert sio.get_received()[-1]["name"] == "complete"
        sio.disconnect()
        del response  # the last one: its body still names its stream
        # the demo provider keeps its last 64 streams for tests to inspect
        board(app).router.providers["demo"].recent.clear()
        assert len(fake.received) == 500
        assert wait_until(lambda: fake.open_streams == 0, 2)
        assert len(board(app).open_chats) == 0
        after = live(*KINDS)
        # requests.Response shares its name with Flask's; neither may pile up
        # Nothing piled up. Fewer than at the baseline is fine: objects an
        # earlier test left for the garbage collector may go meanwhile.
        grown = {kind: after[kind] - baseline[kind] for kind in KINDS if after[kind] > baseline[kind]}
        assert grown == {}, after


# -- what a departure and a missing key tell others ------------------------------

def test_a_client_that_leaves_is_recorded_as_gone_not_as_an_upstream_failure(tmp_path):
    app = create_app({"demo_delay": 1.0, "heartbeat_seconds": 0.1, "database_path": str(tmp_path / "c.db")})
    with ServerThread(app) as server:
        conversation = requests.post(server.url + "/api/conversations", json={"title": "t"}, timeout=5).json()
        body = json.dumps({"model": "reflection-and-thinking", "messages": MESSAGES,
                           "conversation_id": conversation["id"]}).encode()
        sock = http_request(server.port, "POST", "/api/chat", body, {"Content-Type": "application/json"})
        read_until(sock, b"Analyzing", 5)
        sock.close()

        def stored():
            return requests.get(f"{server.url}/api/conversations/{conversation['id']}", timeout=5).json()["messages"]
        assert wait_until(lambda: len(stored()) == 2, 5)
        messages = stored()
    assistant = messages[1]
    assert assistant["status"] == "incomplete", messages
    error = assistant["error"]
    assert error["code"] == "cancelled" and "client went away" in error["message"]


def test_a_missing_provider_key_tells_the_openai_sdk_not_to_retry(tmp_path):
    import openai

    app = create_app({"demo_delay": 0, "database_path": str(tmp_path / "k.db"),
                      "providers": {"openai": ProviderSettings(key_variable="OPENAI_API_KEY")}})
    calls = []
    app.before_request(lambda: calls.append(1) and None)
    with ServerThread(app) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=2)
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert raised.value.status_code == 503
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert "OPENAI_API_KEY" in raised.value.message
    assert len(calls) == 1  # not retried


def test_a_chat_ended_by_the_server_while_connecting_gets_the_shutdown_error(tmp_path):
    """What a stopping worker does (proxy/serving.py) to a chat whose upstream
    has not answered yet: nothing was sent, so the real status, 503
    server_shutdown, not the 'client went away' of a departure."""
    from proxy.chat import shutdown_error

    with FakeUpstream(answer_for(stall=30)) as fake:
        app = make_app(fake, tmp_path)
        with ServerThread(app) as server:
            answers = []

            def ask(stream):
                answers.append(requests.post(server.url + "/v1/chat/completions", timeout=10,
                                             json={"model": MODEL, "messages": MESSAGES, "stream": stream}))
            askers = [threading.Thread(target=ask, args=(stream,)) for stream in (True, False)]
            for asker in askers:
                asker.start()
            client = socketio.Client(reconnection=False)
            errors = []
            client.on("error", lambda data: errors.append(data))
            client.connect(server.url, transports=["websocket"], wait_timeout=10)
            client.emit("chat", {"model": MODEL, "messages": MESSAGES})
            try:
                assert wait_until(lambda: fake.opened == 3, 10)
                assert board(app).open_chats.end_all(shutdown_error()) == 3
                for asker in askers:
                    asker.join(5)
                assert wait_until(lambda: errors, 5)
            finally:
                client.disconnect()
            assert wait_until(lambda: fake.open_streams == 0, 1.0)
    assert [a.status_code for a in answers] == [503, 503]
    assert {a.json()["error"]["code"] for a in answers} == {"server_shutdown"}
    assert [e["code"] for e in errors] == ["server_shutdown"]


def tracked(kinds: tuple[str, ...]) -> dict[str, int]:
    """Objects the collector tracks, garbage included: no collection first."""
    counts = dict.fromkeys(kinds, 0)
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in counts:
            counts[name] += 1
    return counts


def test_a_finished_chat_is_freed_by_reference_counting_alone(tmp_path):
    """No reference cycle per chat: with the garbage collector off, nothing of
    finished chats on any HTTP surface piles up (a cycle would keep each
    chat's request, body and upstream response until a full collection)."""
    kinds = ("ResilientStream", "UpstreamStream", "ChatRequest", "Chat", "SSEReader", "Ticket", "DepartureWatch",
             "FirstEvent")
    with FakeUpstream() as fake:
        app = make_app(fake, tmp_path, first_byte_timeout=30)
        client = app.test_client()
        body = {"model": MODEL, "messages": MESSAGES, "stream": True}
        requests_ = [
            ("/v1/chat/completions", body, 200),
            ("/v1/chat/completions", {**body, "stream": False}, 200),
            ("/v1/chat/completions", {**body, "model": "openai/missing-model"}, 404),
            ("/api/chat", {"model": MODEL, "messages": MESSAGES}, 200),
            ("/v1/responses", {"model": MODEL, "input": "hi", "stream": True}, 200),
            ("/v1/responses", {"model": MODEL, "input": "hi"}, 200),
            ("/v1/responses", {"model": "openai/missing-model", "input": "hi", "stream": True}, 404),
            ("/api/ai/chat/block-1", {"id": "c1", "model": MODEL, "messages": [
                {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}, 200),
        ]
        answer = answer_for()
        fake.default = lambda received: (Reply.json({"error": {"message": "no such model"}}, status=404)
                                         if "missing" in received.json.get("model", "") else answer(received))

        def run_all() -> None:
            for path, json_body, status in requests_:
                response = client.post(path, json=json_body)
                assert response.status_code == status, (path, response.get_data()[:300])
                response.get_data()  # to the end of the stream
                response.close()

        run_all()  # warm: lazily built objects of each surface
        gc.collect()
        gc.disable()
        try:
            before = tracked(kinds)
            for _ in range(10):
                run_all()
            assert wait_until(lambda: fake.open_streams == 0 and len(board(app).open_chats) == 0, 2)
            time.sleep(0.3)  # the stream threads' last lines (accounting) after the body ended
            after = tracked(kinds)
        finally:
            gc.enable()
    grown = {kind: after[kind] - before[kind] for kind in kinds if after[kind] > before[kind]}
    assert grown == {}, grown
