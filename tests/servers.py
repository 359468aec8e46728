"""Real server processes for end-to-end tests: gunicorn (gevent worker) and
`flask --app app run` (threads), each on a free loopback port, logging to a
file, stopped with SIGTERM then SIGKILL."""
from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import requests

from .helpers import free_port

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(sys.executable).parent


class ServerProcess:
    def __init__(self, name: str, argv: list[str], port: int, log_path: pathlib.Path, env: dict,
                 health: str = "/health") -> None:
        self.name = name
        self.health = health
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.log_file = open(log_path, "wb")
        self.process = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, stdout=self.log_file,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log()}")
            try:
                if requests.get(self.url + self.health, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not become healthy: {self.log()}")

    def log(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.log_file.close()


SERVER_ENV = {
    "SWITCHBOARD_DEMO_DELAY": "1",
    "SWITCHBOARD_HEARTBEAT_SECONDS": "0.25",
    "GRACEFUL_TIMEOUT": "2",
    "PYTHONUNBUFFERED": "1",
}


def start_gunicorn(tmp: pathlib.Path, app: str = "wsgi:app", health: str = "/health") -> ServerProcess:
    port = free_port()
    env = {**SERVER_ENV, "SWITCHBOARD_DATABASE": str(tmp / "switchboard.db")}
    server = ServerProcess("gunicorn", [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                                        app], port, tmp / "gunicorn.log", env, health)
    server.wait_healthy()
    return server


def start_flask_run(tmp: pathlib.Path, app: str = "app", health: str = "/health") -> ServerProcess:
    port = free_port()
    server = ServerProcess("flask run", [str(BIN / "flask"), "--app", app, "run", "--host", "127.0.0.1",
                                         "--port", str(port)], port, tmp / "flask.log",
                           {**SERVER_ENV, "SWITCHBOARD_DATABASE": str(tmp / "switchboard.db")}, health)
    server.wait_healthy()
    return server
