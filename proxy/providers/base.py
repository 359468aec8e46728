"""What every provider is: a class whose `open()` starts one upstream call.

    router -> Provider.open(request, route) -> UpstreamStream
    iterating the UpstreamStream yields canonical events; cancel() stops it.

`open()` does the IO that can fail before the first byte (connect, status
check) and raises a ProxyError for it, so surfaces can still answer with a
real HTTP status. Failures after that come out of the iteration as a final
`Error` event. `cancel()` may be called from another thread or greenlet (the
response generator of a departed client) and must stop the upstream promptly.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping

from ..canonical import ChatRequest, Event
from ..config import ProviderSettings, Settings

CAPABILITY_DEFAULTS = {
    "textInput": True,
    "textOutput": True,
    "imageInput": False,
    "imageOutput": False,
    "thinking": False,
    "internetBrowsing": False,
    "fileOutput": False,
    "videoInput": False,
    "videoOutput": False,
}


def capabilities(values: Mapping[str, bool] | None = None) -> dict[str, bool]:
    """All nine Workbench capability flags, defaults filled in."""
    merged = dict(CAPABILITY_DEFAULTS)
    for name, value in (values or {}).items():
        if name not in CAPABILITY_DEFAULTS:
            raise ValueError(f"unknown capability {name!r}; known: {', '.join(CAPABILITY_DEFAULTS)}")
        merged[name] = bool(value)
    return merged


@dataclass(slots=True)
class ModelRoute:
    """One model clients can ask for, and how to reach it."""

    id: str
    provider: str
    upstream_model: str
    owned_by: str
    capabilities: dict[str, bool] = field(default_factory=capabilities)
    created: int = 0
    params: dict[str, Any] = field(default_factory=dict)  # request defaults
    fallbacks: tuple[str, ...] = ()
    credentials: ProviderSettings | None = None  # per-model key / base URL

    def describe(self) -> dict[str, Any]:
        """The /v1/models entry (OpenAI shape plus Workbench capabilities)."""
        return {
            "id": self.id,
            "object": "model",
            "created": self.created,
            "owned_by": self.owned_by,
            "capabilities": self.capabilities,
        }


class UpstreamStream:
    """An iterator of canonical events with a thread-safe `cancel()`."""

    __slots__ = ("_events", "_on_cancel", "cancelled", "cancelled_at", "finished_at", "response_headers")

    def __init__(self, events: Iterable[Event], on_cancel: Callable[[], None] | None = None) -> None:
        self._events = iter(events)
        self._on_cancel = on_cancel
        self.cancelled = threading.Event()
        self.cancelled_at: float | None = None
        self.finished_at: float | None = None  # set by providers when the upstream is closed
        # Headers for the client's HTTP response, known when open() returns
        # (e.g. the id of a conversation the provider created upstream).
        self.response_headers: dict[str, str] = {}

    def __iter__(self) -> Iterator[Event]:
        return self._events

    def __next__(self) -> Event:
        return next(self._events)

    def cancel(self) -> None:
        if self.cancelled.is_set():
            return
        self.cancelled_at = time.monotonic()
        self.cancelled.set()
        if self._on_cancel is not None:
            self._on_cancel()


_local = threading.local()  # greenlet-local under gevent's patched threading


class Pending:
    """An upstream call that has not answered yet (connecting, sending,
    waiting for the status line and headers).

    `provider.open()` blocks until the upstream answers, so there is no
    stream to cancel yet; the resilient stream binds a Pending around each
    attempt, the HTTP plumbing tells it how to hang up the connection in use
    (`on_cancel`), and `cancel()` from another greenlet or thread (a client
    that left, a missed first-byte deadline) hangs up at once instead of
    waiting for the idle timeout."""

    __slots__ = ("cancelled", "_hang_up")

    def __init__(self) -> None:
        self.cancelled = False
        self._hang_up: Callable[[], None] | None = None

    def on_cancel(self, hang_up: Callable[[], None]) -> None:
        self._hang_up = hang_up
        if self.cancelled:  # cancelled while the connection was being made
            hang_up()

    def cancel(self) -> None:
        self.cancelled = True
        hang_up = self._hang_up
        if hang_up is not None:
            hang_up()

    def __enter__(self) -> "Pending":
        _local.pending = self
        return self

    def __exit__(self, *exc: Any) -> None:
        _local.pending = None
        self._hang_up = None  # the connection now belongs to the stream (or the pool)


def pending_call() -> Pending | None:
    """The Pending bound around the upstream call this thread is making."""
    return getattr(_local, "pending", None)


class Provider:
    """Base class: one instance per vendor per app, shared by all requests."""

    name: ClassVar[str]

    def __init__(self, credentials: ProviderSettings, settings: Settings) -> None:
        self.credentials = credentials
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.credentials.api_key)

    def models(self) -> list[ModelRoute]:
        """Models this provider offers without any model declaration."""
        return []

    def open(self, request: ChatRequest, route: ModelRoute) -> UpstreamStream:
        raise NotImplementedError
