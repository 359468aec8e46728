"""Serve a Switchboard app on a real socket for tests that use real clients.

    with serve(app) as base_url: ... requests / SDKs against base_url ...

Werkzeug's threaded server (HTTP/1.1, chunked, a thread per request) on
127.0.0.1 at a free port: the same server `flask run` uses.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from flask import Flask
from werkzeug.serving import make_server


@contextlib.contextmanager
def serve(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
