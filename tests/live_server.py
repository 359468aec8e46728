"""A real HTTP server on 127.0.0.1:<free port> for tests that drive
Switchboard with real clients (the openai SDKs, node scripts).

    with serve(app) as base_url: ...   # e.g. "http://127.0.0.1:53811"
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from werkzeug.serving import make_server


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
