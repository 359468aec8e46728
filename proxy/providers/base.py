"""What every provider is: a class whose `open()` starts one upstream call.

    router -> Provider.open(request, route) -> UpstreamStream
    iterating the UpstreamStream yields canonical events; cancel() stops it.

The provider contract (what a new provider writes):

- a `Provider` subclass (its IO module, e.g. providers/<name>/provider.py)
  declaring `name`, `key_variables` (environment variables holding its key,
  first set wins), `base_url_variable`, `settings_read` (option name ->
  environment variable, e.g. `{"bot_id": "COZE_BOT_ID"}`; YAML
  `providers: {<name>: {bot_id: ...}}` overrides it) and, when a key is not
  always needed, `usable(credentials)`. Config reads these declarations: no
  central table to edit. Instances are built `cls(credentials, settings, store)`.
- a pure `Decoder` (below) that turns the upstream's SSE events, or its
  whole non-streamed body, into canonical events;
- `open()` builds the payload (a pure module) and hands URL, body, headers and
  decoder to `providers.http.open_upstream`, which owns the socket, cancel,
  `finished_at`, closing, and the redaction of the key from every error.
- one line in providers/__init__.py REGISTRY (`name: "module:Class"`).

`open()` does the IO that can fail before the first byte (connect, status
check) and raises a ProxyError for it, so surfaces can still answer with a
real HTTP status. Failures after that come out of the iteration as a final
`Error` event. `cancel()` may be called from another thread or greenlet (the
response generator of a departed client) and must stop the upstream promptly.
"""
from __future__ import annotations

import contextvars
import ipaddress
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping

from ..canonical import ChatRequest, Event
from ..config import ProviderSettings, Settings

# A DNS name as an HTTP client sends it (ASCII; an internationalized name in its xn-- form).
HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?")

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


def check_base_url(url: Any, where: str) -> None:
    """A configured base URL must be an absolute http(s) URL with a valid host:
    a clear error at start-up instead of a 500 on every request."""
    if url is None:
        return
    from urllib.parse import urlsplit

    problem = None
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is not None:
            _ = parts.port  # raises ValueError for a port that is no port
    except ValueError:
        parts = None
    if parts is None or any(c.isspace() for c in url):
        problem = "is not a valid URL"
    elif parts.scheme not in ("http", "https"):
        problem = "must start with http:// or https://"
    else:
        host = parts.hostname or ""
        try:
            ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            if not host.isascii() or not HOST_NAME.fullmatch(host):
                problem = "has no valid host"
    if problem:
        raise ValueError(f"{where}: base URL {str(url)[:200]!r} {problem} (for example https://api.example.com/v1)")


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


# Greenlet-local under gevent (each greenlet has its own context), thread-local
# otherwise; cheaper to bind per request than a gevent threading.local.
_pending: contextvars.ContextVar["Pending | None"] = contextvars.ContextVar("switchboard_pending", default=None)


class Pending:
    """An upstream call that has not answered yet (connecting, sending,
    waiting for the status line and headers).

    `provider.open()` blocks until the upstream answers, so there is no
    stream to cancel yet; the resilient stream binds a Pending around each
    attempt, the HTTP plumbing tells it how to hang up the connection in use
    (`on_cancel`), and `cancel()` from another greenlet or thread (a client
    that left, a missed first-byte deadline) hangs up at once instead of
    waiting for the idle timeout."""

    __slots__ = ("cancelled", "_hang_up", "_token")

    def __init__(self) -> None:
        self.cancelled = False
        self._token: Any = None
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
        self._token = _pending.set(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _pending.reset(self._token)
        self._token = None
        self._hang_up = None  # the connection now belongs to the stream (or the pool)


def pending_call() -> Pending | None:
    """The Pending bound around the upstream call this thread is making."""
    return _pending.get()


class Decoder:
    """Upstream wire -> canonical events, for one response (pure, no IO).

    Streamed: `feed(event)` per SSE event (`event.event`, `event.data`), until
    a terminal canonical event (Finish / Error) comes out or `done` turns
    true; then, at the end of the body, `end()` gives the closing events or
    raises a ProxyError when the upstream was cut short. When the stream fails
    (cut, timed out), `interrupted()` gives what is still worth reporting
    (usage known so far) before the error.
    Non-streamed: `whole(body)` gives every event of the complete body.
    """

    done = False  # the upstream said the answer is over ([DONE], message_stop)

    def feed(self, event: Any) -> Iterable[Event]:
        raise NotImplementedError

    def end(self) -> Iterable[Event]:
        raise NotImplementedError

    def interrupted(self) -> Iterable[Event]:
        return ()

    def whole(self, body: bytes) -> Iterable[Event]:
        raise NotImplementedError


class Provider:
    """Base class: one instance per vendor per app, shared by all requests."""

    name: ClassVar[str]
    # environment variables that may hold the key, in order of preference
    key_variables: ClassVar[tuple[str, ...]] = ()
    base_url_variable: ClassVar[str | None] = None
    # option name -> environment variable; the value lands in credentials.options
    settings_read: ClassVar[Mapping[str, str]] = {}

    def __init__(self, credentials: ProviderSettings, settings: Settings, store: Any = None) -> None:
        check_base_url(getattr(credentials, "base_url", None), self.base_url_source())
        self.credentials = credentials
        self.settings = settings
        self.store = store

    @classmethod
    def base_url_source(cls) -> str:
        """Where the base URL was configured, for start-up errors."""
        name = getattr(cls, "name", "provider")
        yaml = f"providers: {name}: base_url"
        return f"{cls.base_url_variable} (or {yaml})" if cls.base_url_variable else yaml

    @classmethod
    def usable(cls, credentials: ProviderSettings) -> bool:
        """Whether a call with these credentials can be made (a key is there)."""
        return bool(credentials.api_key)

    @property
    def configured(self) -> bool:
        return self.usable(self.credentials)

    def models(self) -> list[ModelRoute]:
        """Models this provider offers without any model declaration."""
        return []

    def open(self, request: ChatRequest, route: ModelRoute) -> UpstreamStream:
        raise NotImplementedError
