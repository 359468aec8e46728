"""Run something later unless cancelled first: the per-request watchdogs' clock.

    response_start.DepartureWatch (without gevent: look at the client socket if the answer is slow to start)
    resilience.ResilientStream (the first-content deadline)
    usage.SQLiteUsage (write the rows of the last moment together)
        -> call_later(seconds, function, *args) -> handle.cancel()

Most of these never fire: the answer starts, the content comes, well before.
Under gunicorn's gevent worker a waiting greenlet per request (spawned,
scheduled, sleeping, woken to find nothing to do) cost a measurable share
of a short stream's CPU; a timer on the hub's loop costs about a microsecond
and a greenlet is started only if it fires. Without gevent (flask run,
tests) a daemon threading.Timer does the same job.
"""
from __future__ import annotations

import sys
import threading
from typing import Any, Callable

_UNKNOWN: Any = object()
_hub: Any = _UNKNOWN


def gevent_hub() -> Any:
    """The gevent hub when gevent has patched threading in this process, else
    None. Decided at the first call, which comes while serving a request: a
    gevent worker patches before it imports the app."""
    global _hub
    if _hub is _UNKNOWN:
        monkey = sys.modules.get("gevent.monkey")
        if monkey is None or not monkey.is_module_patched("threading"):
            _hub = None
        else:
            import gevent

            _hub = gevent.get_hub()
    return _hub


class _HubTimer:
    __slots__ = ("_timer",)

    def __init__(self, hub: Any, seconds: float, function: Callable[..., Any], args: tuple) -> None:
        self._timer = hub.loop.timer(max(0.0, seconds))
        # The callback runs inside the hub, which must never block: the work
        # gets a greenlet of its own.
        self._timer.start(spawn_raw, function, *args)

    def cancel(self) -> None:
        self._timer.close()


def spawn_raw(function: Callable[..., Any], *args: Any) -> None:
    """Run `function(*args)` in a new greenlet (gevent only)."""
    import gevent

    gevent.spawn_raw(function, *args)


def call_later(seconds: float, function: Callable[..., Any], *args: Any) -> Any:
    """Call `function(*args)` in a greenlet or thread of its own after
    `seconds`; the returned handle's cancel() stops it if it has not run.
    Under gevent, call (and cancel) from the worker's own thread."""
    hub = gevent_hub()
    if hub is not None:
        return _HubTimer(hub, seconds, function, args)
    timer = threading.Timer(seconds, function, args)
    timer.daemon = True
    timer.start()
    return timer
