"""Retries and fallbacks before the first content token (DESIGN.md "Errors").

    Router.open(request) -> ResilientStream(plan=[model, *fallbacks]).start()
        attempt: provider.open() -> events ... first content event -> pass-through

An attempt fails when `provider.open()` raises, or when its stream errs, is
cut, or ends before any content event (`canonical.CONTENT_EVENTS`). A failed
attempt is retried on the same model while the error is retryable and
`Settings.max_retries` allows (exponential back-off with jitter, or the
upstream's retry-after when it is at most RETRY_AFTER_CAP), then the next
fallback model is tried. Events an attempt produced before its first content
event (response metadata, block starts) are held back and only the
succeeding attempt's are replayed. Once content has been delivered nothing is
retried: a later error passes through as the in-band error.

`start()` runs in the request handler, so when every attempt fails to open
the surface can still answer with the real HTTP status. `cancel()` stops the
current attempt -- also one still waiting for the upstream's headers (a
`Pending` hangs its connection up) -- and any back-off pause at once; no
retry or fallback starts after it.

The first content must arrive within `Settings.first_byte_timeout` of
`start()`, across all attempts: a watchdog hangs up the attempt in progress
when the deadline passes, a back-off that would end after it is not waited
for, and the answer is an UpstreamTimeout (504). A request that is not
streamed is asked of the upstream unstreamed, whose whole answer is its
first byte: a slow model is not a stalled one there, so its deadline is
`Settings.total_timeout` (still across all attempts).
"""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Iterator

from . import metrics
from .canonical import CONTENT_EVENTS, ChatRequest, Error, Event
from .errors import BadRequest, Cancelled, ProxyError, UpstreamError, UpstreamTimeout
from .providers.base import ModelRoute, Pending, UpstreamStream
from .providers.redaction import scrub_error
from .timers import call_later

if TYPE_CHECKING:
    from .router import Router

log = logging.getLogger(__name__)

# A private generator: retries in a stream's thread never touch the global
# random state that other code (or a test framework) may have seeded.
_jitter = random.Random()
RETRY_AFTER_CAP = 30.0  # a longer retry-after goes to the next fallback instead of waiting
BACKOFF_CAP = 8.0


def backoff_delay(error: ProxyError, retry: int, base: float) -> float | None:
    """Seconds before retry number `retry` (0-based); None when waiting is not worth it."""
    if error.retry_after is not None:
        return error.retry_after if error.retry_after <= RETRY_AFTER_CAP else None
    # Exponential with jitter so that many clients hit by one outage do not retry in step.
    return min(BACKOFF_CAP, base * (2 ** retry)) * _jitter.uniform(0.5, 1.0)


def close_attempt(stream: UpstreamStream) -> None:
    """Stop an attempt we no longer read: cancel it (shuts its socket down) and
    close its generator so the provider's `finally` closes the response now,
    not whenever the garbage collector gets to it."""
    stream.cancel()
    close = getattr(iter(stream), "close", None)
    if close is not None:
        close()


def should_fall_back(error: ProxyError) -> bool:
    """The client's own bad request fails on every model: surface it at once."""
    return not isinstance(error, (BadRequest, Cancelled))


class ResilientStream(UpstreamStream):
    __slots__ = ("router", "request", "plan", "index", "retries", "attempts", "current", "pending", "deadline",
                 "timed_out", "_settled", "_timer", "_lock", "_first")

    def __init__(self, router: "Router", request: ChatRequest, plan: list[ModelRoute]) -> None:
        super().__init__(self._run())
        self.router = router
        self.request = request
        self.plan = plan
        self.index = 0  # which model of the plan
        self.retries = 0  # retries used on that model
        self.attempts: list[tuple[str, str | None]] = []  # (model id, error code or None): for logs and tests
        self.current: UpstreamStream | None = None
        self.pending: Pending | None = None  # the attempt waiting for its upstream's headers
        self.deadline: float | None = None  # for the first content (monotonic)
        self.timed_out = False
        self._settled = False  # first content, end or cancel: the deadline no longer applies
        self._timer = None
        self._lock = threading.Lock()
        self._first: UpstreamStream | None = None

    @property
    def route(self) -> ModelRoute:
        return self.plan[self.index]

    def start(self) -> "ResilientStream":
        """Open the first attempt that connects; raises the last error when none does."""
        self._arm_deadline()
        try:
            self._first = self._connect()
        except BaseException:
            self._settle()  # nothing more will run: the deadline is moot
            # The unstarted _run() holds this stream (and this stream it):
            # closed, no cycle is left for the garbage collector.
            self._events.close()
            raise
        self.response_headers = self._first.response_headers
        return self

    # -- the first-content deadline -------------------------------------------

    def _deadline_seconds(self) -> tuple[float, str]:
        settings = self.router.settings
        if self.request.stream:
            return settings.first_byte_timeout, "first byte timeout"
        return settings.total_timeout, "total timeout"

    def _arm_deadline(self) -> None:
        timeout, _ = self._deadline_seconds()
        if self.deadline is not None or not timeout or timeout <= 0:
            return
        self.deadline = time.monotonic() + timeout
        # A timer, cancelled at the first content, the end or a cancel,
        # whichever comes first (timers.py: no greenlet unless it fires).
        self._timer = call_later(timeout, self._watchdog, timeout)

    def _settle(self) -> None:
        self._settled = True
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _watchdog(self, timeout: float) -> None:
        with self._lock:
            if self._settled:  # the first content came just now
                return
            self.timed_out = True
        log.warning("model %s: no content within %gs (%s); hanging up", self.route.id, timeout,
                    self._deadline_seconds()[1])
        self._cancel_current()

    def _timeout_error(self) -> UpstreamTimeout:
        timeout, which = self._deadline_seconds()
        return UpstreamTimeout(
            f"{self.route.id}: no answer within {timeout:g}s, retries included ({which})",
            provider=self.route.provider,
        )

    # -- attempts -------------------------------------------------------------

    def _connect(self) -> UpstreamStream:
        while True:
            if self.cancelled.is_set():
                raise Cancelled("the client went away")
            if self.timed_out:
                raise self._timeout_error()
            route = self.route
            pending = Pending()
            with self._lock:
                self.pending = pending
            try:
                with pending:
                    stream = self.router.open_route(self.request, route)
            except ProxyError as error:
                self._after_failure(error)
                continue
            finally:
                with self._lock:
                    self.pending = None
            with self._lock:
                self.current = stream
            if self.cancelled.is_set() or self.timed_out:  # hung up while its headers came in
                stream.cancel()
            return stream

    def _after_failure(self, error: ProxyError) -> None:
        """Sleep and retry the same model, move to the next fallback, or raise `error`."""
        route = self.route
        # Providers redact their key from errors already (providers/http.py
        # open_upstream); this repeats it for any provider that does not, before
        # the error is logged here or handed to the client.
        scrub_error(error, self.router.secrets(route))
        self.attempts.append((route.id, error.code))
        if self.cancelled.is_set():
            raise Cancelled("the client went away")
        metrics.UPSTREAM_ERRORS.labels(route.provider, error.code).inc()
        if self.timed_out:
            raise self._timeout_error()
        if error.retryable and self.retries < self.router.settings.max_retries:
            delay = backoff_delay(error, self.retries, self.router.settings.retry_base_delay)
            if delay is not None and self.deadline is not None and time.monotonic() + delay >= self.deadline:
                delay = None  # the retry would start after the deadline: fall back now, or answer
            if delay is not None:
                self.retries += 1
                metrics.RETRIES.labels(route.provider).inc()
                log.warning("model %s failed (%s: %s); retry %d in %.2fs",
                            route.id, error.code, error.message, self.retries, delay)
                if self.cancelled.wait(delay):
                    raise Cancelled("the client went away")
                if self.timed_out:
                    raise self._timeout_error()
                return
        if should_fall_back(error) and self.index + 1 < len(self.plan):
            self.index += 1
            self.retries = 0
            metrics.FALLBACKS.labels(route.id, self.route.id).inc()
            log.warning("model %s failed (%s: %s); falling back to %s",
                        route.id, error.code, error.message, self.route.id)
            return
        raise error

    def cancel(self) -> None:
        # Overridden rather than passing on_cancel=self._cancel_current: a bound
        # method kept on the instance is a reference cycle, which would hold
        # the whole finished stream (upstream response included) until the
        # garbage collector runs.
        if self.cancelled.is_set():
            return
        super().cancel()
        self._settle()
        self._cancel_current()

    def _cancel_current(self) -> None:
        with self._lock:
            stream, pending = self.current, self.pending
        if pending is not None:
            pending.cancel()
        if stream is not None:
            stream.cancel()

    # -- events -------------------------------------------------------------------

    def _run(self) -> Iterator[Event]:
        stream = self._first
        self._first = None
        if stream is None:  # iterated without start(): open lazily, errors in-band
            self._arm_deadline()
            try:
                stream = self._connect()
            except ProxyError as error:
                yield Error(error)
                return
        delivered = False
        try:
            while True:
                held: list[Event] = []
                failure: ProxyError | None = None
                try:
                    for event in iter(stream):
                        if delivered:
                            if event.type == "error" and not isinstance(event.error, Cancelled):
                                metrics.UPSTREAM_ERRORS.labels(self.route.provider, event.error.code).inc()
                            yield event
                            if event.type == "finish" or event.type == "error":
                                return
                        elif isinstance(event, CONTENT_EVENTS):
                            with self._lock:
                                if not self.timed_out:
                                    delivered = True
                                    self._settle()
                            if not delivered:  # the watchdog hung this attempt up just now
                                failure = self._timeout_error()
                                break
                            yield from held
                            yield event
                        elif event.type == "error":
                            failure = event.error
                            break
                        elif event.type == "finish":  # an empty but complete answer
                            yield from held
                            yield event
                            return
                        else:
                            held.append(event)
                    else:
                        if delivered:
                            return  # streaming.guard turns a missing Finish into an error
                        failure = UpstreamError("the upstream stream ended before any content",
                                                code="stream_incomplete")
                except ProxyError as error:
                    if delivered:
                        if not isinstance(error, Cancelled):
                            metrics.UPSTREAM_ERRORS.labels(self.route.provider, error.code).inc()
                        raise
                    failure = error
                close_attempt(stream)
                if self.cancelled.is_set():
                    return
                try:
                    self._after_failure(failure)
                    stream = self._connect()
                except ProxyError as error:
                    yield Error(error)
                    return
        finally:
            self._settle()
            close_attempt(stream)
            self.finished_at = stream.finished_at or time.monotonic()
