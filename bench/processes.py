"""Starting, watching and stopping the processes of a benchmark run.

    FakeUpstream   bench/fake_upstream.py in its own process; configure() / stats()
    Gunicorn       `gunicorn -c gunicorn.conf.py wsgi:app` as in production
    RssSampler     a thread sampling the workers' RSS and CPU from /proc
    run_load()     bench/loadgen.py in its own process, its JSON summary back

Everything binds or connects on 127.0.0.1 only; every wait is bounded.
Processes start in their own session and are stopped by their own pid.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")
TICKS = os.sysconf("SC_CLK_TCK")


def http_json(port: int, method: str, path: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode("utf-8", "replace")
    finally:
        connection.close()


def stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: always this process's own pid."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class FakeUpstream:
    def __init__(self, log: Path) -> None:
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_upstream"], cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log,
            start_new_session=True,
        )
        line = self.process.stdout.readline().decode()  # "PORT <n>", printed once listening
        if not line.startswith("PORT "):
            stop(self.process)
            raise RuntimeError(f"the fake upstream did not start (see {log})")
        self.port = int(line.split()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def configure(self, **values: Any) -> None:
        status, _ = http_json(self.port, "PUT", "/_bench/config", values)
        assert status == 200, status

    def stats(self, reset: bool = False) -> dict:
        return http_json(self.port, "GET", "/_bench/stats?reset=1" if reset else "/_bench/stats")[1]

    def close(self) -> None:
        stop(self.process, 5)
        self.process.stdout.close()
        self.log.close()


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def rss_and_cpu(pid: int) -> tuple[int, float]:
    """(resident bytes, CPU seconds user+system) of one process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0, 0.0
    return rss_pages * PAGE, (int(fields[11]) + int(fields[12])) / TICKS


class Gunicorn:
    """The server under test: production config, N gevent workers, one port."""

    def __init__(self, workers: int, upstream: FakeUpstream, log: Path, workdir: Path, env: dict | None = None) -> None:
        self.port = 0  # gunicorn binds a free port and logs it (no race for a port picked beforehand)
        extra_env = env
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": "0",
            "WEB_CONCURRENCY": str(workers),
            # Scenario (d) holds 2,000 streams on one worker: the default pool
            # of 1,000 connections would queue the rest.
            "WORKER_CONNECTIONS": "4000",
            "OPENAI_BASE_URL": f"{upstream.url}/v1",
            "OPENAI_API_KEY": "bench-key",
            "ANTHROPIC_BASE_URL": upstream.url,
            "ANTHROPIC_API_KEY": "bench-key",
            "SWITCHBOARD_DATABASE": str(workdir / "switchboard.sqlite3"),
            "LOG_LEVEL": "info",  # for the "Listening at" line
        }
        for name in ("SWITCHBOARD_CONFIG", "REDIS_URL", "GEMINI_API_KEY", "COZE_API_KEY"):
            env.pop(name, None)
        env.update(extra_env or {})
        self.log_path = log
        self.log = log.open("wb")
        self.workers = workers
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            if not self.port:
                found = LISTENING.search(self.log_path.read_text(errors="replace"))
                if found:
                    self.port = int(found.group(1))
                else:
                    time.sleep(0.05)
                    continue
            try:
                if http_json(self.port, "GET", "/health", timeout=1)[0] == 200 and len(self.worker_pids()) == self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        stop(self.process)
        raise RuntimeError(f"gunicorn did not answer /health within {timeout:g}s; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        return children(self.process.pid)

    def usage(self) -> tuple[int, float]:
        """Total RSS and CPU seconds of the workers now."""
        rss = cpu = 0
        for pid in self.worker_pids():
            r, c = rss_and_cpu(pid)
            rss, cpu = rss + r, cpu + c
        return rss, cpu

    def close(self) -> str:
        stop(self.process, 15)
        self.log.close()
        return self.log_path.read_text(errors="replace")


class RssSampler:
    """Samples the workers' total RSS every `interval` seconds while running."""

    def __init__(self, server: Gunicorn, interval: float = 0.1) -> None:
        self.server = server
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(self.interval):
            self.samples.append((time.monotonic() - start, self.server.usage()[0]))

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def peak(self) -> int:
        return max((rss for _, rss in self.samples), default=0)


def run_load(url: str, *, concurrency: int, requests: int, fmt: str = "openai", model: str = "openai/bench-model",
             ramp: float = 0.0, timeout: float = 60.0, max_seconds: float = 120.0) -> dict:
    command = [
        sys.executable, "-m", "bench.loadgen", "--url", url, "--model", model, "--format", fmt,
        "-c", str(concurrency), "-n", str(requests), "--ramp", str(ramp), "--timeout", str(timeout),
        "--max-seconds", str(max_seconds),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=max_seconds + timeout + 30)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.decode(errors='replace')[-2000:]}")
    return json.loads(done.stdout)
