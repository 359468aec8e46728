"""Turns a provider stream plus a surface encoder into a streaming response.

    provider stream --(pump thread: IO, decode, encode)--> queue
        --(response generator: heartbeats, disconnect)--> WSGI server

A pump thread (a greenlet under gunicorn's gevent worker, a real thread under
`flask run`) iterates the provider and the surface encoder and queues the
encoded frames. The response generator waits on that queue with a timeout
and sends an SSE comment heartbeat whenever the provider is silent, so that
proxies keep the connection open and a departed client is noticed even while
the upstream says nothing (docs/deployment.md, "Client disconnect"). When the client goes
away the WSGI server closes the generator, whose `finally` cancels the
provider stream: the upstream socket is shut down and the pump ends.
"""
from __future__ import annotations

import _thread
import logging
import queue
from typing import Callable, Iterable, Iterator, Protocol

from flask import Response

from . import sse
from .canonical import Accumulator, ChatResult, Error, Event
from .errors import ProxyError, UpstreamError
from .request_context import bind_request_id

log = logging.getLogger(__name__)

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

_END = object()


class Cancellable(Protocol):
    def cancel(self) -> None: ...


def stream_incomplete() -> ProxyError:
    return UpstreamError("the upstream stream ended before it finished", code="stream_incomplete")


def guard(events: Iterable[Event], early_end: Callable[[], ProxyError] = stream_incomplete) -> Iterator[Event]:
    """Make every stream end in exactly one Finish or Error event.

    Anything a provider raises mid-stream becomes a final Error event, so
    every surface can end its stream in its own protocol's error form.
    Events after Finish (e.g. a late usage report) are dropped: providers
    emit Usage before Finish. `early_end()` says why a stream stopped without
    finishing (the chat runner knows when the client left or the server stops)."""
    iterator = iter(events)
    try:
        for event in iterator:
            yield event
            if event.type == "error" or event.type == "finish":
                return
        # A stream that stops without saying it finished was cut short:
        # never let a surface pass it off as a complete answer.
        yield Error(early_end())
    except ProxyError as error:
        yield Error(error)
    except Exception:  # a bug, but the client still gets a terminal frame
        log.exception("provider stream failed")
        yield Error(UpstreamError("internal error while streaming", code="internal_error", retryable=False))
    finally:
        # Returning after Finish leaves the provider's generator suspended at
        # its last yield: close it now so its `finally` releases the upstream
        # connection, instead of whenever it is garbage collected.
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


class Recorder:
    """Taps a stream to keep everything it produced, and reports the result
    once the stream is over, also when it was cut short by a disconnect."""

    __slots__ = ("accumulator", "on_close", "completed")

    def __init__(self, on_close: Callable[[ChatResult, bool], None]) -> None:
        self.accumulator = Accumulator()
        self.on_close = on_close
        self.completed = False

    def tap(self, events: Iterable[Event]) -> Iterator[Event]:
        add = self.accumulator.add
        try:
            for event in events:
                add(event)
                yield event
            self.completed = self.accumulator.result.finish is not None and self.accumulator.result.error is None
        finally:
            try:
                self.on_close(self.accumulator.finish(), self.completed)
            except Exception:
                log.exception("recording the stream failed")


def pump(frames: Iterable[bytes], request_id: str | None = None) -> "queue.SimpleQueue":
    """Run `frames` in a background thread; return the queue it fills."""
    out: queue.SimpleQueue = queue.SimpleQueue()

    def run() -> None:
        bind_request_id(request_id)  # its log lines carry the request's id
        try:
            for frame in frames:
                out.put(frame)
        except Exception:
            log.exception("stream encoder failed")
        finally:
            out.put(_END)

    # A bare thread (a plain greenlet once gevent has patched): a
    # threading.Thread would build locks, events and a registry entry per
    # stream that nothing here uses.
    _thread.start_new_thread(run, ())
    return out


def relay(out: "queue.SimpleQueue", stream: Cancellable, heartbeat: float) -> Iterator[bytes]:
    """The response body: frames as they come, heartbeats while silent.

    Frames already waiting are written together: one write instead of many
    when the client or the network is slower than the upstream.
    """
    get = out.get
    try:
        while True:
            try:
                item = get(timeout=heartbeat)
            except queue.Empty:
                yield sse.HEARTBEAT
                continue
            if item is _END:
                return
            batch = None
            while True:
                try:
                    more = out.get_nowait()
                except queue.Empty:
                    break
                if more is _END:
                    yield item if batch is None else b"".join(batch)
                    return
                if batch is None:
                    batch = [item]
                batch.append(more)
            yield item if batch is None else b"".join(batch)
    finally:
        # Reached on normal end and on GeneratorExit (client gone): stops
        # the upstream; a no-op when the stream already finished.
        stream.cancel()


class Body:
    """The WSGI body of a stream: iterates relay(); close() cancels the
    upstream even when the server never started iterating (a client that
    left before the first write), where closing a generator runs nothing."""

    __slots__ = ("_frames", "_stream")

    def __init__(self, frames: Iterator[bytes], stream: Cancellable) -> None:
        self._frames = frames
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        return self._frames

    def close(self) -> None:
        try:
            self._frames.close()
        finally:
            self._stream.cancel()


def sse_response(frames: Iterable[bytes], stream: Cancellable, heartbeat: float, headers: dict | None = None,
                 request_id: str | None = None) -> Response:
    """Start encoding now (in the pump) and answer with the SSE body."""
    body = Body(relay(pump(frames, request_id), stream, heartbeat), stream)
    # direct_passthrough: the WSGI server iterates the body itself rather than
    # Werkzeug's encoding and closing wrappers around it (frames are bytes
    # already; closing it is what cancels). Two generator layers fewer per
    # frame, and a shallower stack saved with every waiting stream.
    response = Response(body, mimetype="text/event-stream", headers=SSE_HEADERS, direct_passthrough=True)
    if headers:
        response.headers.update(headers)
    return response
