"""The chat runner: one path from a client request to a response, for every surface.

    start(surface): body (one reader) -> caller -> surface.decode(body, headers) -> ChatRequest
                    -> app hooks (a named conversation) -> surface hooks (stored context)
    Chat.stream(encode) / Chat.result() / Chat.events():
        router.prepare -> open (a client leaving before headers cancels it)
        -> guard (exactly one terminal event) -> wrappers, recorders -> open-stream count
        -> SSE with heartbeats (streaming.sse_response), or accumulate, or an emitter's loop

A surface is a pure codec, a small blueprint that hands `start()` its
`Surface`, and one registration line; everything here (auth, the request id,
`/health`'s stream count, recording, disconnect -> cancel, the real status
for failures before the first content) it gets without code of its own.
The last two are watched in response_start.py.
"""
from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

from flask import Response, current_app, g, has_request_context, request

from .canonical import ChatRequest, ChatResult, Event, accumulate
from .errors import Cancelled, ProxyError, ServerShutdown, UpstreamError
from .request_context import current_request_id, require_caller
from .response_start import DepartureWatch, FirstEvent
from .streaming import Body, Cancellable, Recorder, guard, pump, relay, sse_response
from .surfaces.common import read_json

log = logging.getLogger(__name__)

MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class DecodeContext:
    """What a codec may need besides the body and headers."""

    default_model: str
    server_url: str | None


@dataclass(frozen=True)
class Surface:
    """A client protocol as the runner sees it."""

    name: str
    decode: Callable[[Any, Mapping[str, str], DecodeContext], ChatRequest]
    error_body: Callable[[ProxyError], Any]
    prefixes: tuple[str, ...] = ()  # app-level 404 / 405 / 413 / 500 under these paths take this shape
    hooks: tuple[Callable[["Chat"], None], ...] = ()


class OpenChats:
    """The chats whose upstream is open, across every surface: counted for
    /health, ended politely at shutdown. A chat leaves as soon as its stream
    is over, so nothing finished is kept alive here."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chats: dict[int, "Chat"] = {}

    def add(self, chat: "Chat") -> None:
        with self._lock:
            self._chats[id(chat)] = chat

    def discard(self, chat: "Chat") -> None:
        with self._lock:
            self._chats.pop(id(chat), None)

    def __len__(self) -> int:
        return len(self._chats)

    def end_all(self, error: ProxyError) -> int:
        """End every open chat with `error` in-band (a worker that stops)."""
        with self._lock:
            chats = list(self._chats.values())
        for chat in chats:
            chat.end(error)
        return len(chats)


def register(app: Any, blueprint: Any, surface: Surface | None = None, parent: Any = None) -> None:
    """Add a surface's blueprint; its `prefixes` give app-level errors its shape.

    While Switchboard is being set up (proxy.Switchboard.init_app) the
    blueprint goes inside Switchboard's own blueprint `parent`; an app that
    adds a surface later gets it on the app, under Switchboard's url_prefix."""
    the_board = app.extensions["switchboard"]
    if parent is not None:
        parent.register_blueprint(blueprint)
    else:
        app.register_blueprint(blueprint, url_prefix=(the_board.url_prefix + (blueprint.url_prefix or "")) or None)
    the_board.blueprint_names.append(blueprint.name)
    if surface is not None:
        surfaces = the_board.surfaces
        surfaces.append(surface)
        surfaces.sort(key=lambda known: -max((len(p) for p in known.prefixes), default=0))


def error_body_for(app: Any, path: str) -> Callable[[ProxyError], Any] | None:
    """The error shape of the surface whose path prefix `path` is under
    (the path is taken below Switchboard's url_prefix, if it is mounted under one)."""
    the_board = app.extensions["switchboard"]
    mount = the_board.url_prefix
    if mount:
        if path != mount and not path.startswith(mount + "/"):
            return None
        path = path[len(mount):] or "/"
    best, length = None, -1
    for surface in the_board.surfaces:
        for prefix in surface.prefixes:
            if path.startswith(prefix) and len(prefix) > length:
                best, length = surface.error_body, len(prefix)
    return best


def board() -> Any:
    return current_app.extensions["switchboard"]


def start(surface: Surface, body: Any = MISSING, headers: Mapping[str, str] | None = None, *,
          caller: Any = None) -> "Chat":
    """Decode a chat request and run the request hooks; raises ProxyError
    (the blueprint renders it in its own shape) before anything is opened.

    HTTP routes pass nothing but the surface; an emitter (Socket.IO,
    WebSocket) passes the message as `body`, its handshake headers and the
    caller it authenticated at connect."""
    the_board = board()
    if caller is None:
        caller = require_caller()
    if body is MISSING:
        body = read_json()  # the one body reader
    if headers is None:
        headers = request.headers
    context = DecodeContext(the_board.settings.default_model, the_board.settings.public_url)
    chat = Chat(surface, the_board, body, headers, caller, surface.decode(body, headers, context))
    for hook in the_board.chat_hooks:
        hook(chat)
    for hook in surface.hooks:
        hook(chat)
    return chat


class Chat:
    """One chat request on its way through the runner."""

    def __init__(self, surface: Surface, the_board: Any, body: Any, headers: Mapping[str, str], caller: Any,
                 chat_request: ChatRequest) -> None:
        self.surface = surface
        self.board = the_board
        self.body = body
        self.headers = headers
        self.caller = caller
        self.request = chat_request
        self.request_id = current_request_id()
        self.started = g.get("started") if has_request_context() else None  # monotonic, for TTFT and duration
        self.response_headers: dict[str, str] = {}
        self.stream: Any = None
        self.ending: ProxyError | None = None  # why the runner ended the stream early (shutdown)
        self.cancelled = False
        self._recorders: list[Callable[[ChatResult, bool], None]] = []
        self._wrappers: list[Callable[[Iterator[Event]], Iterator[Event]]] = []

    # -- what hooks add -----------------------------------------------------

    def add_recorder(self, on_close: Callable[[ChatResult, bool], None]) -> None:
        """`on_close(result, completed)` runs once when the stream is over:
        finished, failed, or cut short by a departed client."""
        self._recorders.append(on_close)

    def add_wrapper(self, wrap: Callable[[Iterator[Event]], Iterator[Event]]) -> None:
        """Wrap the guarded events (e.g. hold the terminal event until a turn is stored)."""
        self._wrappers.append(wrap)

    # -- opening ---------------------------------------------------------------

    def open(self) -> None:
        """Start the upstream (retries and fallbacks included). Raises the
        ProxyError of the last attempt, or Cancelled when the chat was
        cancelled (client gone) while connecting."""
        if self.stream is not None:
            return
        # Per-key models and limits (403 / 429) before anything opens; the
        # ticket accounts the chat once it ended (gate.py).
        if has_request_context():
            g.chat_logged = True  # this request's access line is the chat's own (written by the gate)
        ticket = self.board.gate.admit_chat(self)
        try:
            self.stream = self.board.router.prepare(self.request)
        except BaseException as error:
            ticket.finish(None, False, None, error if isinstance(error, ProxyError) else None)
            self._drop_hooks()
            raise
        self.board.open_chats.add(self)
        if self.cancelled:  # cancelled before there was a stream to cancel
            self.stream.cancel()
        try:
            self.stream.start()
        except BaseException as error:
            self.board.open_chats.discard(self)
            if isinstance(error, Cancelled) and self.ending is not None:
                error = self.ending  # ended by the server (shutdown) while connecting, not by the client
            ticket.finish(None, False, self.stream, error if isinstance(error, ProxyError) else None)
            self._drop_hooks()
            if error is self.ending:
                raise error from None
            raise
        self.response_headers.update(getattr(self.stream, "response_headers", None) or {})

    def _drop_hooks(self) -> None:
        """Never opened: its wrappers and recorders (which often close over
        this chat) will not run; dropped so that they leave no cycle."""
        self._wrappers, self._recorders = [], []

    def cancel(self) -> None:
        self.cancelled = True
        if self.stream is not None:
            self.stream.cancel()

    def end(self, error: ProxyError) -> None:
        """Stop the upstream and end the stream with `error` in-band."""
        self.ending = error
        self.cancel()

    def _early_end(self) -> ProxyError:
        """Why a stream stopped before its provider finished it."""
        if self.ending is not None:
            return self.ending
        if self.stream is not None and self.stream.cancelled.is_set():
            return Cancelled("the client went away before the answer was complete")
        return UpstreamError("the upstream stream ended before it finished", code="stream_incomplete")

    # -- events ------------------------------------------------------------------

    def events(self, first: FirstEvent | None = None) -> Iterator[Event]:
        """The opened, guarded, wrapped and recorded events of this chat
        (watched by `first`, when the caller waits for the first one)."""
        self.open()
        events = guard(self.stream, self._early_end)
        # Hooks' wrappers and recorders often close over the chat: handed to
        # the generators and dropped here, or each chat would be a reference
        # cycle that keeps its request, body and upstream response alive until
        # a full garbage collection (under load: many megabytes).
        wrappers, self._wrappers = self._wrappers, []
        recorders, self._recorders = self._recorders, []
        for wrap in wrappers:
            events = wrap(events)
        if recorders:
            events = Recorder(functools.partial(_record, recorders)).tap(events)
        return self._tracked(events, first)

    def _tracked(self, events: Iterator[Event], first: FirstEvent | None = None) -> Iterator[Event]:
        """The events while the chat is open (counted by /health), the first
        one noted for `first` when given (one generator layer for both)."""
        try:
            for event in events:
                if first is not None and first.state == "waiting" and first.note(event):
                    return
                yield event
        finally:
            # Closing the guard closes the provider's iterator: its upstream is released.
            close = getattr(events, "close", None)
            if close is not None:
                close()
            if first is not None:
                first.ended()
            self.board.open_chats.discard(self)

    # -- the three ways out ----------------------------------------------------

    def result(self) -> ChatResult:
        """Accumulate the whole answer; raises its error (answered with a real status)."""
        with DepartureWatch(self):
            try:
                return accumulate(self.events())
            finally:
                self.cancel()

    def stream_response(self, encode: Callable[[Iterator[Event]], Iterable[bytes]],
                        headers: Mapping[str, str] | None = None, *, first: FirstEvent | None = None,
                        cancel: Cancellable | None = None, on_open: Callable[[], None] | None = None,
                        plain_text: bool = False) -> Response:
        """SSE: nothing is sent until the first content (or the heartbeat
        interval passes), so a failure before any content is answered with its
        real HTTP status; then frames as they come, heartbeats while silent.

        A surface may bring its own `first` (to read its failure later), what
        the response's end cancels (`cancel`, default the upstream; the UI
        stream's resume grace period goes there), a step right after the
        upstream opened (`on_open`), and a plain-text body without heartbeats
        (`plain_text`: they would be text; the total timeout bounds silence)."""
        settings = self.board.settings
        first = first if first is not None else FirstEvent()
        with DepartureWatch(self):
            self.open()
            if on_open is not None:
                on_open()
            frames = encode(self.events(first))
            target = cancel if cancel is not None else self.stream
            if plain_text:
                body = Body(relay(pump(frames, self.request_id), target, settings.total_timeout), target)
                response = Response(body, mimetype="text/plain", direct_passthrough=True)
            else:
                response = sse_response(frames, target, settings.heartbeat_seconds, request_id=self.request_id)
            failure = first.wait(settings.heartbeat_seconds)
            if failure is not None:
                response.response.close()
                raise failure
        response.headers.update(self.response_headers)
        if headers:
            response.headers.update(headers)
        return response


def _record(recorders: list[Callable[[ChatResult, bool], None]], result: ChatResult, completed: bool) -> None:
    for on_close in recorders:
        try:
            on_close(result, completed)
        except Exception:
            log.exception("recording the chat failed")


def shutdown_error() -> ServerShutdown:
    return ServerShutdown("the server is restarting: the answer was cut short; send the request again")
