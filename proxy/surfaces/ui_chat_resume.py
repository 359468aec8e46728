"""Replies that outlive their connection: the encoded frames of each UI chat
stream, kept while it runs, for `GET .../{chatId}/stream` (useChat `resume`).

    ui_chat POST -> hub.open(names) -> Recording.append(frame) ... .close()
    GET .../stream -> hub.replay(name) -> frames from the first one, then live, or None (204)

Two hubs behind one interface: `LocalHub` (one process: a list and a
condition per stream) and `RedisHub` (REDIS_URL: one Redis Stream per reply
plus a pointer key per name, so a reload that lands on another worker still
finds it). A reply's pointers go when it ends: a finished reply is not
"in flight" any more and its resume URL answers 204.

A replay reader marks the recording as read (`last_read`): with a resume
grace period the producer uses it to keep the upstream running while a
reader is attached, and to cancel it once nobody reads.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Iterator

from ..errors import UpstreamError
from .ui_chat_codec import error_chunk, frame

log = logging.getLogger(__name__)

# How long a replay waits for the next frame before it gives up on a reply
# whose producer died without closing it (a killed worker).
REPLAY_IDLE_LIMIT = 120.0
POINTER_TTL = 3600  # seconds; refreshed when a reply ends (pointers are deleted then)
FINISHED_TTL = 60   # seconds a finished reply's frames stay for readers already attached


class Recording:
    """The producer's handle on one reply."""

    def append(self, frame: bytes) -> None: ...
    def close(self) -> None: ...
    def last_read(self) -> float:
        return 0.0


class _LocalStream:
    __slots__ = ("frames", "done", "condition", "last_read", "readers")

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.done = False
        self.condition = threading.Condition()
        self.last_read = 0.0
        self.readers = 0  # replays attached: only then does a frame need a wakeup


class _LocalRecording(Recording):
    def __init__(self, hub: "LocalHub", names: list[str], stream: _LocalStream) -> None:
        self.hub, self.names, self.stream = hub, names, stream

    def append(self, frame: bytes) -> None:
        # Nearly every reply is never resumed: no lock per frame for them. A
        # reader counts itself in before it looks at the frames under the
        # lock, so a frame appended before the count is seen by that look,
        # and one appended after it notifies.
        stream = self.stream
        stream.frames.append(frame)
        if stream.readers:
            with stream.condition:
                stream.condition.notify_all()

    def close(self) -> None:
        with self.hub.lock:
            for name in self.names:
                if self.hub.active.get(name) is self.stream:
                    del self.hub.active[name]
        with self.stream.condition:
            self.stream.done = True
            self.stream.condition.notify_all()

    def last_read(self) -> float:
        return self.stream.last_read


class LocalHub:
    """In-process: enough for one worker (`flask run`, a single gunicorn worker)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: dict[str, _LocalStream] = {}

    def open(self, names: list[str]) -> Recording:
        stream = _LocalStream()
        with self.lock:
            for name in names:
                self.active[name] = stream
        return _LocalRecording(self, names, stream)

    def replay(self, name: str) -> Iterator[bytes] | None:
        with self.lock:
            stream = self.active.get(name)
        if stream is None or stream.done:
            return None
        return self._frames(stream)

    @staticmethod
    def _frames(stream: _LocalStream) -> Iterator[bytes]:
        sent = 0
        idle_since = time.monotonic()
        with stream.condition:
            stream.readers += 1
        try:
            while True:
                with stream.condition:
                    stream.last_read = time.time()
                    if sent >= len(stream.frames) and not stream.done:
                        stream.condition.wait(1.0)
                    batch = stream.frames[sent:]
                    done = stream.done
                if batch:
                    sent += len(batch)
                    idle_since = time.monotonic()
                    yield b"".join(batch)
                elif done:
                    return
                elif time.monotonic() - idle_since > REPLAY_IDLE_LIMIT:
                    yield _abandoned()
                    return
        finally:
            with stream.condition:
                stream.readers -= 1


# KEYS: pointer keys. ARGV: stream id. Deletes each pointer still naming this stream.
RELEASE = """
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 1
"""


class _RedisRecording(Recording):
    """Frames go to Redis from a writer of their own (a greenlet under
    gevent): the reply never waits for Redis, and the frames that arrive
    during one round trip go together in the next pipeline."""

    def __init__(self, hub: "RedisHub", pointers: list[str], stream_id: str) -> None:
        self.hub, self.pointers, self.stream_id = hub, pointers, stream_id
        self.key = hub.stream_key(stream_id)
        self.pending: list[bytes] = []
        self.closed = False
        self.lock = threading.Lock()
        self.wake = threading.Event()
        threading.Thread(target=self._write, daemon=True).start()

    def append(self, frame: bytes) -> None:
        with self.lock:
            self.pending.append(frame)
        self.wake.set()

    def close(self) -> None:
        with self.lock:
            self.closed = True
        self.wake.set()

    def _write(self) -> None:
        first = True
        while True:
            self.wake.wait()
            self.wake.clear()
            with self.lock:
                frames, self.pending = self.pending, []
                ending = self.closed
            try:
                pipe = self.hub.client.pipeline(transaction=False)
                for frame in frames:
                    pipe.xadd(self.key, {"f": frame})
                if first:
                    pipe.expire(self.key, POINTER_TTL)
                    first = False
                if ending:
                    pipe.xadd(self.key, {"end": b"1"})
                    pipe.expire(self.key, FINISHED_TTL)
                pipe.execute()
                if ending:
                    self.hub.release(keys=self.pointers, args=[self.stream_id])
            except Exception:  # the live reply must not die because resuming broke
                log.exception("recording a UI chat reply in Redis failed")
                if ending:
                    return
            if ending:
                return

    def last_read(self) -> float:
        try:
            value = self.hub.client.get(self.key + ":read")
        except Exception:
            return 0.0
        return float(value) if value else 0.0


class RedisHub:
    """Across workers and machines: one Redis Stream per reply."""

    def __init__(self, client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix.rstrip(":")
        self.release = client.register_script(RELEASE)

    def stream_key(self, stream_id: str) -> str:
        return f"{self.prefix}:uistream:{stream_id}"

    def pointer(self, name: str) -> str:
        return f"{self.prefix}:uiactive:{name}"

    def open(self, names: list[str]) -> Recording:
        stream_id = uuid.uuid4().hex
        pointers = [self.pointer(name) for name in names]
        pipe = self.client.pipeline(transaction=True)
        for key in pointers:
            pipe.set(key, stream_id, ex=POINTER_TTL)
        pipe.execute()
        return _RedisRecording(self, pointers, stream_id)

    def replay(self, name: str) -> Iterator[bytes] | None:
        stream_id = self.client.get(self.pointer(name))
        if not stream_id:
            return None
        stream_id = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
        return self._frames(self.stream_key(stream_id))

    def _frames(self, key: str) -> Iterator[bytes]:
        last = "0-0"
        idle_since = time.monotonic()
        while True:
            # block below the client's socket timeout; each round marks the reply as read
            self.client.set(key + ":read", repr(time.time()), ex=POINTER_TTL)
            found = self.client.xread({key: last}, count=500, block=1000)
            frames = []
            ended = False
            for _, entries in found or ():
                for entry_id, fields in entries:
                    last = entry_id
                    if b"end" in fields:
                        ended = True
                        break
                    frames.append(fields[b"f"])
            if frames:
                idle_since = time.monotonic()
                yield b"".join(frames)
            if ended:
                return
            if not frames and time.monotonic() - idle_since > REPLAY_IDLE_LIMIT:
                yield _abandoned()
                return


def _abandoned() -> bytes:
    """The end of a replay whose producer went silent for good (its worker died)."""
    error = UpstreamError("the reply stopped before it finished", code="stream_incomplete")
    return frame(error_chunk(error)) + b"data: [DONE]\n\n"


def open_hub(settings, store) -> "LocalHub | RedisHub":
    client = getattr(store, "client", None) if settings.redis_url else None
    if client is not None:
        return RedisHub(client, settings.redis_prefix)
    return LocalHub()
