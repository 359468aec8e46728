"""Per-key limits and metrics across real gunicorn worker processes.

- 4 workers, one Redis: 200 concurrent requests against a limit of 50
  (concurrency, then requests per minute) -> exactly 50 admitted;
  slots of SIGKILLed workers expire after slot_ttl (and live ones do not,
  their heartbeat keeps them); a budget overshoots by at most what was in
  flight when it ran out.
- 2 workers: /metrics after a mixed workload, parsed with Prometheus' own
  parser, sums both workers' counters.
Few and bounded: each test starts one gunicorn.
"""
from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from proxy.keys import digest
from tests.store_support import LOCAL_REDIS, Gunicorn, delete_prefix, unique_prefix, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CONCURRENT = "sk-concurrent-50"
RPM = "sk-rpm-50"
KILLED = "sk-killed-5"
BUDGET = "sk-budget-100"
ADMIN = "sk-admin"
SLOT_TTL = 3.0


def body(model: str, text: str = "hello", stream: bool = False) -> dict:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}


def headers(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def write_config(path, keys) -> str:
    path.write_text(yaml.safe_dump({"keys": keys, "limits": {"slot_ttl": SLOT_TTL}}))
    return str(path)


def worker_pids(master: subprocess.Popen) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master.pid)], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


@pytest.fixture
def four_workers(tmp_path):
    prefix = unique_prefix()
    keys = [
        {"name": "concurrent", "key": "sha256:" + digest(CONCURRENT), "max_concurrent": 50},
        {"name": "rpm", "key": "sha256:" + digest(RPM), "rpm": 50},
        {"name": "killed", "key": "sha256:" + digest(KILLED), "max_concurrent": 5},
        {"name": "budget", "key": "sha256:" + digest(BUDGET), "budget": {"tokens": 100, "period": "day"}},
        {"name": "ops", "key": "sha256:" + digest(ADMIN), "admin": True},
    ]
    env = {"REDIS_URL": LOCAL_REDIS, "SWITCHBOARD_REDIS_PREFIX": prefix,
           "SWITCHBOARD_CONFIG": write_config(tmp_path / "config.yaml", keys),
           "SWITCHBOARD_DEMO_DELAY": "5", "SWITCHBOARD_HEARTBEAT_SECONDS": "0.5", "ACCESS_LOG": "",
           "SWITCHBOARD_LOG_LEVEL": "WARNING"}
    server = Gunicorn(tmp_path, env, workers=4, boot_timeout=90)  # 4 workers booting on a busy CI machine
    try:
        yield server, prefix
    finally:
        server.close()
        delete_prefix(LOCAL_REDIS, prefix)


def test_limits_are_exact_across_four_workers(four_workers):
    server, prefix = four_workers
    session_pool = ThreadPoolExecutor(max_workers=200)

    def ask(token, model):
        try:
            return requests.post(server.url + "/v1/chat/completions", json=body(model), headers=headers(token),
                                 timeout=60).status_code
        except requests.RequestException as error:
            return repr(error)

    # 200 at once against max_concurrent 50: each admitted request takes
    # seconds (the demo's thinking pauses), so all 200 overlap.
    statuses = list(session_pool.map(lambda _: ask(CONCURRENT, "reflection-and-thinking"), range(200)))
    assert statuses.count(200) == 50 and statuses.count(429) == 150, statuses
    # every slot came back: 50 more fit again
    statuses = list(session_pool.map(lambda _: ask(CONCURRENT, "mock"), range(50)))
    assert statuses.count(200) == 50, statuses

    # 200 at once against rpm 50 (fast requests)
    statuses = list(session_pool.map(lambda _: ask(RPM, "mock"), range(200)))
    assert statuses.count(200) == 50 and statuses.count(429) == 150, statuses
    session_pool.shutdown()

    usage = requests.get(server.url + "/v1/usage?group_by=key,status", headers=headers(ADMIN), timeout=10).json()
    counts = {(g["key"], g["status"]): g["requests"] for g in usage["data"]}
    assert counts[("concurrent", "ok")] == 100 and counts[("concurrent", "rejected")] == 150
    assert counts[("rpm", "ok")] == 50 and counts[("rpm", "rejected")] == 150


def test_slots_of_killed_workers_expire_and_live_slots_do_not(four_workers):
    server, prefix = four_workers
    streams = []
    for _ in range(5):  # long streams: the demo's pauses scaled by 5 (about 11 s)
        response = requests.post(server.url + "/api/chat", json={**body("reflection-and-thinking"), "stream": True},
                                 headers=headers(KILLED), stream=True, timeout=30)
        assert response.status_code == 200
        streams.append(response)
    time.sleep(SLOT_TTL * 1.5)  # past the ttl: the heartbeat keeps live slots held
    refused = requests.post(server.url + "/v1/chat/completions", json=body("mock"), headers=headers(KILLED), timeout=10)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "max_concurrent_exceeded"
    client = redis.Redis.from_url(LOCAL_REDIS)
    try:
        assert client.zcard(f"{prefix}:limits:killed:slots") == 5
        for pid in worker_pids(server.process):
            os.kill(pid, 9)
        killed_at = time.monotonic()
        for response in streams:
            response.close()
        assert client.zcard(f"{prefix}:limits:killed:slots") == 5  # nobody is left to release them

        def admitted():
            try:
                return requests.post(server.url + "/v1/chat/completions", json=body("mock"), headers=headers(KILLED),
                                     timeout=5).status_code == 200
            except requests.RequestException:
                return False  # the master is starting new workers

        wait_until(admitted, timeout=SLOT_TTL + 60, interval=0.2)  # the master boots 4 new workers first
        # freed by expiry: no worker survived to release them
        assert time.monotonic() - killed_at >= SLOT_TTL * 0.5
        # Each slot expires SLOT_TTL after its own last renewal, all before the
        # kill: past killed_at + SLOT_TTL every one of the five is free (the
        # first admission above may have come while a later one still held).
        time.sleep(max(0.0, killed_at + SLOT_TTL + 1.0 - time.monotonic()))
        five = ThreadPoolExecutor(5)
        statuses = list(five.map(lambda _: requests.post(
            server.url + "/v1/chat/completions", json=body("mock"), headers=headers(KILLED), timeout=30).status_code,
            range(5)))
        five.shutdown()
        assert statuses.count(200) == 5
    finally:
        client.close()


def test_budget_overshoot_is_bounded_by_what_was_in_flight(four_workers):
    server, prefix = four_workers
    clients = 8
    text = "x" * 40  # mock: 10 input tokens; its answer repeats the text

    def spend():
        admitted = 0
        for _ in range(50):
            response = requests.post(server.url + "/v1/chat/completions", json=body("mock", text),
                                     headers=headers(BUDGET), timeout=30)
            if response.status_code == 429:
                assert response.json()["error"]["code"] == "budget_exceeded"
                assert 0 < int(response.headers["Retry-After"]) <= 86400
                return admitted
            assert response.status_code == 200
            admitted += 1
        raise AssertionError("the budget never ran out")

    pool = ThreadPoolExecutor(clients)
    admitted = sum(pool.map(lambda _: spend(), range(clients)))
    pool.shutdown()
    usage = requests.get(server.url + "/v1/usage?group_by=key,status", headers=headers(ADMIN), timeout=10).json()
    ok = [g for g in usage["data"] if g["key"] == "budget" and g["status"] == "ok"][0]
    per_request = (ok["input_tokens"] + ok["output_tokens"]) // ok["requests"]
    spent = ok["input_tokens"] + ok["output_tokens"]
    assert ok["requests"] == admitted and per_request > 0
    client = redis.Redis.from_url(LOCAL_REDIS)
    try:
        charged = [float(client.get(k)) for k in client.scan_iter(f"{prefix}:limits:budget:budget:*")]
    finally:
        client.close()
    assert charged == [spent]
    # The bound: every admitted request saw less than 100 spent, so past 100
    # only the requests in flight at that moment (at most one per client) add.
    assert 100 <= spent < 100 + clients * per_request, (spent, per_request)


def test_metrics_sum_two_workers(tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    server = Gunicorn(tmp_path, {"PROMETHEUS_MULTIPROC_DIR": str(directory), "SWITCHBOARD_METRICS": "open",
                                 "SWITCHBOARD_DEMO_DELAY": "0.2", "ACCESS_LOG": "",
                                 "SWITCHBOARD_DATABASE": str(tmp_path / "s.db")}, workers=2)
    try:
        def post(model, stream):
            # not stream=True: requests reads the whole body, the stream's end included
            return requests.post(server.url + "/v1/chat/completions", json=body(model, stream=stream),
                                 timeout=30).status_code

        pool = ThreadPoolExecutor(8)
        work = [("mock", False)] * 12 + [("mock", True)] * 8 + [("error-demo", True)] * 5 + [("nope/x", False)] * 3
        rounds = 0
        while True:  # until both workers served some (the kernel picks the worker of each connection)
            rounds += 1
            statuses = list(pool.map(lambda item: post(*item), work))
            assert statuses.count(200) == 25 and statuses.count(404) == 3
            pids = {name.rsplit("_", 1)[1] for name in os.listdir(directory) if name.startswith("counter_")}
            if len(pids) == 2 or rounds == 5:
                break
        pool.shutdown()
        assert len(pids) == 2, "the workload reached only one worker"
        text = requests.get(server.url + "/metrics", timeout=10).text
    finally:
        server.close()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def value(name, **labels):
        return values.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("switchboard_requests_total", surface="openai_chat", model="mock", provider="demo",
                 status="ok") == 20 * rounds
    assert value("switchboard_requests_total", surface="openai_chat", model="error-demo", provider="demo",
                 status="error") == 5 * rounds
    assert value("switchboard_requests_total", surface="openai_chat", model="(unknown)", provider="",
                 status="error") == 3 * rounds
    assert value("switchboard_upstream_errors_total", provider="demo", kind="upstream_error") == 5 * rounds
    assert value("switchboard_request_duration_seconds_count", surface="openai_chat", provider="demo") == 25 * rounds
    assert value("switchboard_time_to_first_token_seconds_count", surface="openai_chat", provider="demo") == 25 * rounds
    assert value("switchboard_active_streams", surface="openai_chat") == 0
    # mock: the demo counts about four characters a token; "hello" -> 2 in
    assert value("switchboard_tokens_total", model="mock", provider="demo", direction="input") == 20 * 2 * rounds
