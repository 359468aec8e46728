"""Who is asking and which request this is: set once, before any route runs.

    every request  -> identify_request(): g.request_id (a sane incoming X-Request-Id is kept),
                      g.caller (proxy/auth.py) or g.auth_error for a missing / wrong key
    routes that serve model output or stored data -> require_caller() -> Caller or AuthenticationFailed
    every response -> X-Request-Id
    every log line -> "[<request id>] ..." (from the request context, or from the
                      stream pump's thread, which runs outside it: bind_request_id)

The caller is worked out for every request, but only routes that need one
call require_caller(): /health, HEAD / and (by setting) /v1/models stay open.
"""
from __future__ import annotations

import contextvars
import logging
import re
import uuid
from typing import Any

from flask import Blueprint, Flask, g, has_request_context, request

from .auth import ANONYMOUS, Caller, identify, presented_key
from .errors import AuthenticationFailed
from .keys import keyring_of

HEADER = "X-Request-Id"
# What an incoming id may look like to be kept: it goes into logs and back
# out in a header, so no spaces, quotes, newlines or percent signs.
SANE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

# The id of the request a stream pump works for: contextvars are
# greenlet-local under gevent and thread-local otherwise, and cheaper to
# set in a fresh greenlet than a (patched) threading.local.
_bound_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("switchboard_request_id", default=None)


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex


def request_id_from(value: str | None) -> str:
    if value and SANE_ID.fullmatch(value):
        return value
    return new_request_id()


def current_request_id() -> str | None:
    if has_request_context():
        return g.get("request_id")
    return _bound_id.get()


def bind_request_id(request_id: str | None) -> None:
    """Tag log lines of this thread (a stream pump) with `request_id`."""
    _bound_id.set(request_id)


def caller_for(settings: Any, headers: Any, auth: Any = None) -> Caller:
    """The caller of a request or Socket.IO handshake; raises AuthenticationFailed."""
    keys = keyring_of(settings)
    if not keys:
        return ANONYMOUS
    return identify(keys, presented_key(headers, auth))


def require_caller() -> Caller:
    """The request's caller; AuthenticationFailed (401 in the route's own shape) without a valid key."""
    error = g.get("auth_error")
    if error is not None:
        raise error
    return g.caller


def init_app(app: Flask | Blueprint, settings: Any) -> None:
    """On the app (stand-alone) or on Switchboard's own blueprint (mounted
    in a host app: the host's requests are left alone)."""

    @app.before_request
    def identify_request() -> None:
        g.request_id = request_id_from(request.headers.get(HEADER))
        g.auth_error = None
        try:
            g.caller = caller_for(settings, request.headers)
        except AuthenticationFailed as error:
            g.caller = None
            g.auth_error = error

    @app.after_request
    def send_request_id(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers[HEADER] = request_id
        return response

    install_log_tagging()


_installed = False


def install_log_tagging() -> None:
    """Prefix every log record made while a request is served with its id.

    A record factory rather than a handler filter: it reaches every logger
    and every handler (gunicorn's, the test runner's) without configuring them.
    """
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def tagged_record(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        request_id = current_request_id()
        record.request_id = request_id
        if request_id and isinstance(record.msg, str):
            record.msg = f"[{request_id}] {record.msg}"
        return record

    logging.setLogRecordFactory(tagged_record)
