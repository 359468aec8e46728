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
