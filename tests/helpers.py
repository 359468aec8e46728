"""Helpers the foundation tests share: SSE frame splitting, free ports,
a real threaded server, and a test-only provider registered into a router."""
from __future__ import annotations

import json
import socket
import time
from typing import Callable, Iterable, Iterator

from proxy.canonical import Finish, ResponseMetadata, TextDelta, TextEnd, TextStart
from proxy.providers.base import ModelRoute, Provider, UpstreamStream, capabilities
from tests.fakes.live import LiveServer


def split_frames(body: bytes | str) -> list[str]:
    """SSE body -> its frames (each without the blank line that ends it)."""
    if isinstance(body, bytes):
        body = body.decode()
    assert body.endswith("\n\n"), f"body does not end with a blank line: {body[-40:]!r}"
    return body[:-2].split("\n\n")


def content_of(frames: Iterable[str]) -> list[str]:
    """The `content` fragments of the plain data frames, in order."""
    out = []
    for frame in frames:
        if frame.startswith("data: {"):
            out.append(json.loads(frame[len("data: "):])["content"])
    return out


def named(frames: Iterable[str]) -> list[tuple[str, dict]]:
    """(event name, payload) of the `event:` frames, in order."""
    out = []
    for frame in frames:
        if frame.startswith("event: "):
            head, data = frame.split("\n", 1)
            assert data.startswith("data: ")
            out.append((head[len("event: "):], json.loads(data[len("data: "):])))
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# A WSGI app on a threaded Werkzeug server (HTTP/1.1) on a free port.
ServerThread = LiveServer


def http_request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None,
                 timeout: float = 10.0) -> socket.socket:
    """Send a raw HTTP/1.1 request; return the connected socket to read from."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return sock


def read_until(sock: socket.socket, marker: bytes, timeout: float, buffer: bytes = b"") -> bytes:
    """Read until `marker` appears (bounded by `timeout`); return all bytes read."""
    deadline = time.monotonic() + timeout
    while marker not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{marker!r} not seen within {timeout}s; got {buffer[-300:]!r}")
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before {marker!r}; got {buffer[-300:]!r}")
        buffer += chunk
    return buffer


class ScriptedProvider(Provider):
    """Test-only provider: plays `script(stream)` (an iterator of events, may raise)."""

    name = "scripted"

    def __init__(self, script: Callable[[UpstreamStream], Iterator], settings) -> None:
        from proxy.config import ProviderSettings

        super().__init__(ProviderSettings(), settings)
        self.script = script
        self.streams: list[UpstreamStream] = []

    @property
    def configured(self) -> bool:
        return True

    def open(self, request, route) -> UpstreamStream:
        stream = UpstreamStream(())
        stream._events = self.script(stream)
        self.streams.append(stream)
        return stream


def register(app, model_id: str, script: Callable[[UpstreamStream], Iterator]) -> ScriptedProvider:
    """Add a test-only model to the app's router (nothing else changes)."""
    router = app.extensions["switchboard"].router
    provider = ScriptedProvider(script, router.settings)
    name = f"scripted-{model_id}"
    router.providers[name] = provider
    router.routes[model_id] = ModelRoute(model_id, name, model_id, "tests", capabilities(), 0)
    return provider


def text_then(tail: Callable[[], Iterator]) -> Callable[[UpstreamStream], Iterator]:
    """A script: one text fragment "partial", then whatever `tail` does."""

    def script(stream):
        yield ResponseMetadata("r1", "m", 0)
        yield TextStart("t")
        yield TextDelta("t", "partial")
        yield from tail()

    return script


def finished():
    yield TextEnd("t")
    yield Finish("stop", "stop")
