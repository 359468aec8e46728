"""What per-key limits and usage accounting cost per request, measured in one process.

    .venv/bin/python -m bench.gate [-n 3000] [--redis redis://127.0.0.1:6379/0]

Runs the gate (proxy/gate.py) the way the chat runner does for every chat —
admit before the upstream opens, finish with the final usage — N times in
each configuration, and prints the CPU time and wall time per request:

    off       no keys, usage accounting off (metrics and the access line only)
    sqlite    no keys, usage rows in SQLite (the default)
    limits    a key with rpm, tpm, max_concurrent and a budget, all in Redis,
              usage rows in a Redis stream (what a team deployment runs)

The whole-server comparison is scenario (b) of `make bench`; this isolates
the gate from the noise of a shared machine (no sockets but Redis').
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import tempfile
import time
import uuid
from pathlib import Path

from proxy import create_app, logs
from proxy.canonical import ChatRequest, ChatResult, Finish, Message, TextPart, Usage
from proxy.gate import Tally


def measure(app, policy, requests: int) -> dict:
    gate = app.extensions["switchboard"].gate
    request = ChatRequest(model="mock", messages=[Message("user", (TextPart("hello " * 20),))])
    result = Tally.of(ChatResult(parts=[TextPart("an answer " * 20)], usage=Usage(30, 50), finish=Finish()))
    for _ in range(50):  # warm: scripts loaded, connections open, files created
        gate.admit(policy, request, "openai_chat").finish(result, True)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(requests):
        ticket = gate.admit(policy, request, "openai_chat", "req_" + uuid.uuid4().hex)
        ticket.finish(result, True)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_us_per_request": round(cpu / requests * 1e6, 1), "wall_us_per_request": round(wall / requests * 1e6, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=3000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="switchboard-gate-bench-"))
    prefix = f"switchboard-gate-bench-{uuid.uuid4().hex[:8]}"
    key = "sha256:" + hashlib.sha256(b"bench").hexdigest()
    team = {"keys": [{"name": "bench", "key": key, "rpm": 10**9, "tpm": 10**12, "max_concurrent": 10**6,
                      "budget": {"tokens": 10**15, "period": "month"}}],
            "redis_url": args.redis, "redis_prefix": prefix}
    configurations = {
        "off": {"usage": {"enabled": False}},
        "sqlite": {},
        "limits": team,
    }
    results = {}
    try:
        for name, config in configurations.items():
            app = create_app({"database_path": str(work / f"{name}.db"), **config})
            logs.configure(stream=io.StringIO())  # the access line is formatted, not written to a terminal
            gate = app.extensions["switchboard"].gate
            policy = gate.keys.find("bench") if name == "limits" else None
            results[name] = measure(app, policy, args.requests)
            print(f"{name:7} {results[name]}")
    finally:
        import redis

        client = redis.Redis.from_url(args.redis)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
    off = results["off"]["cpu_us_per_request"]
    print(json.dumps({name: {**value, "cpu_us_beyond_off": round(value["cpu_us_per_request"] - off, 1)}
                      for name, value in results.items()}, indent=1))


if __name__ == "__main__":
    main()
