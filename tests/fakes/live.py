"""Serve a Switchboard app on a real socket for tests that use real clients.

    with serve(app) as base_url: ...      # "http://127.0.0.1:53811"
    with LiveServer(app) as server: ...   # server.port, server.url

Werkzeug's threaded server (HTTP/1.1, chunked, a thread per request) on
127.0.0.1 at a free port: the same server `flask run` uses.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from werkzeug.serving import make_server


class LiveServer:
    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    with LiveServer(app) as server:
        yield server.url
