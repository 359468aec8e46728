"""Log output: one JSON object per line (gunicorn) or plain text (flask run).

    create_app -> configure(settings) -> a handler on the `proxy` logger
    every log line of a request carries its request id (record.request_id)
    gate.finish / app.after_request -> access() -> one access line per request

SWITCHBOARD_LOG_FORMAT = json | text (default: text under `flask run`,
json otherwise) and SWITCHBOARD_LOG_LEVEL (default INFO) choose. The access
line names the key by its configured name, never the key; nothing here
logs a header or a body.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import orjson

ACCESS = logging.getLogger("proxy.access")
FORMATS = ("json", "text")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _untagged(record),
        }
        request_id = getattr(record, "request_id", None) or getattr(record, "_request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for name, value in vars(record).items():
            if name not in _RESERVED and not name.startswith("_") and name not in entry and value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def _untagged(record: logging.LogRecord) -> str:
    """The message without the "[request id] " prefix the request context
    puts on every line (JSON has a field of its own for it)."""
    message = record.getMessage()
    request_id = getattr(record, "request_id", None)
    if request_id and message.startswith(f"[{request_id}] "):
        return message[len(request_id) + 3:]
    return message


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        # the message carries "[request id] " already (proxy/request_context.py)
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.name == ACCESS.name:
            fields = {k: v for k, v in vars(record).items() if k in ACCESS_FIELDS and v is not None}
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


ACCESS_FIELDS = ("method", "path", "surface", "key", "model", "provider", "status", "http_status", "error",
                 "ttft", "duration", "input_tokens", "output_tokens", "reasoning_tokens", "cached_tokens", "cost")


def chosen_format(environ=os.environ) -> str:
    value = (environ.get("SWITCHBOARD_LOG_FORMAT") or "").strip().lower()
    if value:
        if value not in FORMATS:
            raise ValueError(f"SWITCHBOARD_LOG_FORMAT must be json or text, got {value!r}")
        return value
    return "text" if environ.get("FLASK_RUN_FROM_CLI") == "true" else "json"


def chosen_level(environ=os.environ) -> str:
    value = (environ.get("SWITCHBOARD_LOG_LEVEL") or "INFO").strip().upper()
    if value not in LEVELS:
        raise ValueError(f"SWITCHBOARD_LOG_LEVEL must be one of {', '.join(LEVELS)}, got {value!r}")
    return value


_handler: logging.Handler | None = None


def configure(environ=os.environ, stream=None) -> None:
    """Give the `proxy` loggers one handler (stderr) in the chosen format and
    level. Repeated calls (one per app) replace, never stack, it."""
    global _handler
    logger = logging.getLogger("proxy")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen_format(environ) == "json" else TextFormatter())
    if _handler is not None:
        logger.removeHandler(_handler)
    _handler = handler
    logger.addHandler(handler)
    logger.setLevel(chosen_level(environ))
    # Flask names the app's logger after the package ("proxy") and gives it
    # its own text handler when it has none: ours replaces it.
    from flask.logging import default_handler

    logger.removeHandler(default_handler)


def access(message: str = "request", **fields: Any) -> None:
    """One access line: `fields` become JSON keys (text: key=value)."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    request_id = fields.pop("request_id", None)
    extra = {k: v for k, v in fields.items() if v is not None}
    # The record factory of request_context.py sets record.request_id from
    # the request (or the stream's thread); this one is for lines written
    # where neither is bound.
    extra["_request_id"] = request_id
    ACCESS.info(message, extra=extra)


def init_app(app, settings) -> None:
    """Access lines for the requests that are not chats (a chat's own line,
    with its model and tokens, is written by the gate when it ends), and the
    check of SWITCHBOARD_METRICS."""
    from flask import g, request

    if settings.metrics not in ("open", "admin", "off"):
        raise ValueError(f"SWITCHBOARD_METRICS must be open, admin or off, got {settings.metrics!r}")

    @app.before_request
    def stamp() -> None:
        g.started = time.monotonic()

    @app.after_request
    def access_line(response):
        if getattr(g, "chat_logged", False) or request.method == "OPTIONS":
            return response
        started = getattr(g, "started", None)
        caller = getattr(g, "caller", None)
        access("request", request_id=getattr(g, "request_id", None), method=request.method, path=request.path,
               key=getattr(caller, "name", None), http_status=response.status_code,
               error=getattr(g, "error_code", None),
               duration=None if started is None else round(time.monotonic() - started, 4))
        return response
