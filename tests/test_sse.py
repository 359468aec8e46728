"""proxy/sse.py: framing, parsing, and read_events over real sockets
(close-delimited HTTP/1.0 and chunked HTTP/1.1), events arriving one by one."""
from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from proxy import sse

pytestmark = pytest.mark.integration


@pytest.mark.unit
def test_encode_plain_and_named():
    assert sse.encode('{"a":1}') == b'data: {"a":1}\n\n'
    assert sse.encode(b"x", "thinking") == b"event: thinking\ndata: x\n\n"


@pytest.mark.unit
def test_encode_json_is_compact_and_keeps_unicode_and_escapes_newlines():
    frame = sse.encode_json({"content": "héllo\nwörld ✓"}, "thinking")
    assert frame == 'event: thinking\ndata: {"content":"héllo\\nwörld ✓"}\n\n'.encode()
    assert frame.count(b"\n") == 3  # newline in the text never breaks the frame


@pytest.mark.unit
def test_constants():
    assert sse.DONE == b"data: [DONE]\n\n"
    assert sse.HEARTBEAT.startswith(b":") and sse.HEARTBEAT.endswith(b"\n\n")


@pytest.mark.unit
def test_parse_roundtrip_names_comments_crlf_multiline():
    raw = (
        b": a comment\n\n"
        + sse.encode_json({"content": "a"})
        + sse.encode_json({"items": []}, "todo_update")
        + b"event: x\r\ndata: one\r\ndata: two\r\nid: 7\r\n\r\n"
        + sse.HEARTBEAT
        + sse.DONE
    )
    events = sse.parse(raw)
    assert [(e.event, e.data) for e in events] == [
        ("message", '{"content":"a"}'),
        ("todo_update", '{"items":[]}'),
        ("x", "one\ntwo"),
        ("message", "[DONE]"),
    ]
    assert events[2].id == "7"


@pytest.mark.unit
def test_parse_across_arbitrary_chunk_boundaries():
    raw = sse.encode_json({"content": "ünïcode"}) + sse.encode_json({"content": "b"}, "thinking") + sse.DONE
    chunks = [raw[i:i + 3] for i in range(0, len(raw), 3)]  # splits multibyte characters too
    assert [e.data for e in sse.parse(chunks)] == ['{"content":"ünïcode"}', '{"content":"b"}', "[DONE]"]


def serve_once(chunked: bool, frames: list[bytes], gap: float, sent: list[float]):
    """A one-shot raw HTTP server that writes `frames` `gap` seconds apart."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def run():
        conn, _ = listener.accept()
        try:
            with conn:
                conn.recv(65536)
                if chunked:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
                else:
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
                for frame in frames:
                    time.sleep(gap)
                    sent.append(time.monotonic())
                    conn.sendall(b"%x\r\n%s\r\n" % (len(frame), frame) if chunked else frame)
                if chunked:
                    conn.sendall(b"0\r\n\r\n")
        except OSError:  # the client stopped reading (a test that expects it to)
            pass
        finally:
            listener.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def check_incremental(chunked: bool):
    frames = [sse.encode_json({"n": 1}), b": keepalive\n\n" + sse.encode_json({"n": 2}, "thinking"), sse.DONE]
    sent: list[float] = []
    port, thread = serve_once(chunked, frames, 0.3, sent)
    received = []
    with requests.get(f"http://127.0.0.1:{port}/", stream=True, timeout=5) as response:
        for event in sse.read_events(response):
            received.append((event.event, event.data, time.monotonic()))
    thread.join(5)
    assert [(e, d) for e, d, _ in received] == [("message", '{"n":1}'), ("thinking", '{"n":2}'), ("message", "[DONE]")]
    # Each event was parsed before the server wrote the next one: nothing
    # waited for a full read buffer or for the end of the body.
    assert received[0][2] < sent[1]
    assert received[1][2] < sent[2]


def test_read_events_close_delimited_http10_is_incremental():
    check_incremental(chunked=False)


def test_read_events_chunked_is_incremental():
    check_incremental(chunked=True)


def test_an_upstream_reader_bounds_the_bytes_of_one_event_not_of_the_stream(monkeypatch):
    """Many small events pass however long the stream; one endless line
    fails with event_too_large once it passes the limit (the parser's buffer
    would otherwise grow without bound). providers/http.py SSEReader, over a
    real socket, with the limit lowered to 200 bytes."""
    from proxy.config import Settings
    from proxy.errors import UpstreamError
    from proxy.providers import http

    monkeypatch.setattr(http, "MAX_EVENT_BYTES", 200)
    small = [sse.encode_json({"n": i}) for i in range(50)]
    port, thread = serve_once(True, small + [sse.DONE], 0.0, [])
    response = requests.get(f"http://127.0.0.1:{port}/", stream=True, timeout=5)
    assert len(list(http.SSEReader(response, "fake", Settings()).events())) == 51
    thread.join(5)
    endless = [b"data: " + b"x" * 150, b"x" * 150, b"x" * 150 + b"\n\n"]
    port, thread = serve_once(True, [sse.encode_json({"n": 0})] + endless, 0.05, [])
    response = requests.get(f"http://127.0.0.1:{port}/", stream=True, timeout=5)
    received = []
    with pytest.raises(UpstreamError) as failure:
        for event in http.SSEReader(response, "fake", Settings()).events():
            received.append(event.data)
    thread.join(5)
    assert failure.value.code == "event_too_large" and not failure.value.retryable
    assert received == ['{"n":0}']
