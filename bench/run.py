"""The benchmark: every scenario, direct and through Switchboard, in one run.

    .venv/bin/python -m bench [--smoke] [--out bench/results]   (or `make bench`)

    1. start the fake upstream (bench/fake_upstream.py) and measure it directly
    2. start gunicorn as in production (one gevent worker), run the scenarios
       through it with the same load, sampling the worker's RSS and CPU;
       (d) on a fresh worker of its own
    3. again with two workers for the throughput scenario (b), and (b) on one
       worker with per-key limits and usage accounting on (a key with rpm,
       tpm, max_concurrent and a budget that the load never reaches; limits
       and usage in Redis when one answers at BENCH_REDIS_URL, default
       redis://127.0.0.1:6379/0, else per process and SQLite)
    4. write results.json (figures, targets, machine) and summary.md

Scenarios (specs in SCENARIOS; `--smoke` shrinks every count so the run takes
seconds and only checks that the harness works):
    a  sequential, c=1, 20-chunk streams: added time to the first event
    b  c=50, 20-chunk unpaced streams: streams per second
    c  1,000 concurrent streams paced at 200 ms a chunk: added TTFT p99, errors
    d  2,000 open streams on one worker, slow pacing: RSS per open stream
    e  Anthropic upstream answered to an OpenAI client (translation) vs passthrough
    f  Open Responses (/v1/responses) vs Chat Completions, same upstream and load: worker CPU per event
    g  the AI SDK UI message stream (useChat) vs Chat Completions, same upstream: worker CPU per event
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from .processes import ROOT, FakeUpstream, Gunicorn, RssSampler, run_load

OPENAI_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
ANTHROPIC_PATH = "/v1/messages"
UI_PATH = "/api/ai/chat/bench"
PASSTHROUGH_MODEL = "openai/bench-model"
TRANSLATING_MODEL = "anthropic/bench-model"

# name -> fake upstream shape and load; "smoke" overrides for the CI smoke test.
SCENARIOS = {
    "a": dict(title="sequential, c=1, 20-chunk streams", chunks=20, ttft=0, pace=0, concurrency=1, requests=400,
              smoke=dict(requests=5)),
    "b": dict(title="c=50, 20-chunk unpaced streams", chunks=20, ttft=0, pace=0, concurrency=50, requests=5000,
              smoke=dict(concurrency=4, requests=20)),
    # (c) and (d): the slots start spread over one stream's length, so new
    # streams arrive at the steady rate of that many concurrent streams.
    "c": dict(title="1,000 concurrent streams, 200 ms per chunk", chunks=20, ttft=0.2, pace=0.2, concurrency=1000,
              requests=3000, ramp=4.2, smoke=dict(chunks=3, ttft=0.02, pace=0.02, concurrency=10, requests=20, ramp=0.1)),
    "d": dict(title="2,000 open streams on one worker, 1 s per chunk", chunks=8, ttft=0.5, pace=1.0, concurrency=2000,
              requests=2000, ramp=4.0, smoke=dict(chunks=3, ttft=0.05, pace=0.1, concurrency=20, requests=20, ramp=0.1)),
    "e": dict(title="translating (Anthropic upstream, OpenAI client) vs passthrough, c=50", chunks=20, ttft=0, pace=0,
              concurrency=50, requests=5000, smoke=dict(concurrency=4, requests=20)),
    "f": dict(title="Open Responses vs Chat Completions, c=50, 20-chunk unpaced streams", chunks=20, ttft=0, pace=0,
              concurrency=50, requests=3000, smoke=dict(concurrency=4, requests=20)),
    "g": dict(title="UI message stream (useChat) vs Chat Completions, c=20", chunks=20, ttft=0, pace=0,
              concurrency=20, requests=1000, smoke=dict(concurrency=4, requests=20)),
}

TARGETS = {
    "a_added_ttft_p50_ms": 1.0,
    "a_added_ttft_p99_ms": 3.0,
    "b_streams_per_s": 400,
    "b_fraction_of_direct": 0.5,
    "c_errors": 0,
    "c_added_ttft_p99_ms": 100,
    "d_errors": 0,
    "d_rss_per_stream_kb": 64,
    "e_translation_cost": 0.20,
    "f_responses_cpu_per_event_over_chat": 0.25,
    "g_cpu_per_event_vs_chat": 1.25,
}


def scenario(name: str, smoke: bool) -> dict:
    spec = dict(SCENARIOS[name])
    overrides = spec.pop("smoke")
    if smoke:
        spec.update(overrides)
    spec.setdefault("ramp", 0.0)
    return spec


def load(url: str, spec: dict, **kwargs) -> dict:
    timeout = 30 + spec["ttft"] + spec["pace"] * spec["chunks"]
    return run_load(url, concurrency=spec["concurrency"], requests=spec["requests"], ramp=spec["ramp"],
                    timeout=timeout, max_seconds=90, **kwargs)


def through(server: Gunicorn, url: str, spec: dict, **kwargs) -> dict:
    """Load through Switchboard, with the workers' RSS and CPU over the run."""
    rss_before, cpu_before = server.usage()
    with RssSampler(server) as sampler:
        result = load(url, spec, **kwargs)
    rss_after, cpu_after = server.usage()
    peak = max(sampler.peak, rss_before, rss_after)
    cpu = cpu_after - cpu_before
    events = result["events_per_stream"] * result["requests"] if result["requests"] else 0
    result["server"] = {
        "rss_before_mb": round(rss_before / 2**20, 1),
        "rss_peak_mb": round(peak / 2**20, 1),
        "rss_after_mb": round(rss_after / 2**20, 1),
        "cpu_s": round(cpu, 3),
        "cpu_busy": round(cpu / result["elapsed_s"] / server.workers, 2) if result["elapsed_s"] else None,
        "cpu_us_per_stream": round(cpu / result["requests"] * 1e6, 1) if result["requests"] else None,
        "cpu_us_per_event": round(cpu / events * 1e6, 2) if events else None,
        "rss_samples": len(sampler.samples),
    }
    result["_rss_peak_bytes"] = peak
    result["_rss_before_bytes"] = rss_before
    return result


def warm_up(server_url: str, requests: int) -> None:
    """First requests import lazily loaded code and fill the connection pool."""
    for model in (PASSTHROUGH_MODEL, TRANSLATING_MODEL):
        run_load(server_url + OPENAI_PATH, concurrency=10, requests=requests, model=model, timeout=20, max_seconds=30)


def machine() -> dict:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        memory_kb = 0
    versions = {}
    for package in ("flask", "werkzeug", "gunicorn", "gevent", "requests", "urllib3", "orjson", "sseclient-py"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "packages": versions,
        "commit": commit,
    }


def raise_fd_limit() -> None:
    """Children (fake, gunicorn, load generator) inherit the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def team_config(work: Path) -> tuple[dict, str | None, str]:
    """Environment for (b) with limits and accounting on: the load generator's
    key ("bench") with limits it never reaches, prices, and Redis if it answers."""
    import hashlib

    key = "sha256:" + hashlib.sha256(b"bench").hexdigest()
    config = work / "team.yaml"
    config.write_text(
        "keys:\n"
        f"  - {{name: bench, key: \"{key}\", rpm: 100000000, tpm: 1000000000000, max_concurrent: 100000,\n"
        "     budget: {tokens: 1000000000000000, period: month}}\n"
        "prices:\n  openai/*: {input: 2.5, output: 10}\n")
    env = {"SWITCHBOARD_CONFIG": str(config)}
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"switchboard-bench-{os.getpid()}"
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=1)
        client.ping()
        client.close()
    except Exception:
        return env, None, "per process, usage in SQLite"
    env.update({"REDIS_URL": url, "SWITCHBOARD_REDIS_PREFIX": prefix})
    return env, prefix, "Redis (limits: one script per admit and per settle; usage: a stream)"


def drop_redis_prefix(prefix: str | None) -> None:
    if prefix is None:
        return
    import redis

    client = redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def added(through_ms: float | None, direct_ms: float | None) -> float | None:
    if through_ms is None or direct_ms is None:
        return None
    return round(through_ms - direct_ms, 3)


def run(smoke: bool, out: Path, only: str, log: callable = print, requests: int | None = None) -> dict:
    raise_fd_limit()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    specs = {name: scenario(name, smoke) for name in SCENARIOS if name in only}
    if requests:  # a short run: fewer requests per scenario, same concurrency
        for spec in specs.values():
            spec["requests"] = max(spec["concurrency"], requests)
    results: dict = {"machine": machine(), "smoke": smoke, "scenarios": {}, "targets": TARGETS}
    fake = FakeUpstream(work / "fake.log")
    servers: list[Gunicorn] = []
    try:
        direct_url = fake.url

        def start(workers: int, log_name: str, env: dict | None = None) -> tuple[Gunicorn, str]:
            server = Gunicorn(workers, fake, work / log_name, work, env)
            servers.append(server)
            base = f"http://127.0.0.1:{server.port}"
            fake.configure(chunks=20, ttft=0, pace=0)
            warm_up(base, 10 if smoke else 100)
            return server, base

        # 1. The fake alone: what the upstream serves with nothing in between.
        direct = {}
        for name, spec in specs.items():
            fake.configure(chunks=spec["chunks"], ttft=spec["ttft"], pace=spec["pace"])
            if name == "e":
                direct[name] = load(direct_url + ANTHROPIC_PATH, spec, fmt="anthropic", model="bench-model")
            else:
                direct[name] = load(direct_url + OPENAI_PATH, spec, model="bench-model")
            log(f"direct    {name}: {brief(direct[name])}")

        # 2. One gevent worker for (a), (b), (c), (e).
        one = {}
        server, base = start(1, "gunicorn-1.log")
        for name, spec in specs.items():
            if name == "d":
                continue
            fake.configure(chunks=spec["chunks"], ttft=spec["ttft"], pace=spec["pace"])
            if name == "e":
                # Passthrough right before, so both halves of (e) share conditions.
                one["e_passthrough"] = through(server, base + OPENAI_PATH, spec, model=PASSTHROUGH_MODEL)
                log(f"1 worker  e (passthrough): {brief(one['e_passthrough'])}")
            if name == "f":
                # Chat Completions right before, so both halves of (f) share conditions.
                one["f_chat"] = through(server, base + OPENAI_PATH, spec, model=PASSTHROUGH_MODEL)
                log(f"1 worker  f (chat completions): {brief(one['f_chat'])}")
                one[name] = through(server, base + RESPONSES_PATH, spec, model=PASSTHROUGH_MODEL, fmt="responses")
                log(f"1 worker  f (responses): {brief(one[name])}")
                continue
            if name == "g":
                # Chat Completions right before, so both halves share conditions.
                one["g_passthrough"] = through(server, base + OPENAI_PATH, spec, model=PASSTHROUGH_MODEL)
                log(f"1 worker  g (passthrough): {brief(one['g_passthrough'])}")
                one[name] = through(server, base + UI_PATH, spec, fmt="ui", model=PASSTHROUGH_MODEL)
                log(f"1 worker  {name}: {brief(one[name])}")
                one["g_unsaved"] = through(server, base + "/api/chat", spec, fmt="ui-unsaved", model=PASSTHROUGH_MODEL)
                log(f"1 worker  {name} (unsaved): {brief(one['g_unsaved'])}")
                continue
            model = TRANSLATING_MODEL if name == "e" else PASSTHROUGH_MODEL
            one[name] = through(server, base + OPENAI_PATH, spec, model=model)
            log(f"1 worker  {name}: {brief(one[name])}")
        servers.pop().close()

        # (d) on a fresh worker: RSS per stream is what the open streams add
        # to a warm, idle worker, not memory an earlier scenario left behind.
        if "d" in specs:
            spec = specs["d"]
            server, base = start(1, "gunicorn-1-d.log")
            fake.configure(chunks=spec["chunks"], ttft=spec["ttft"], pace=spec["pace"])
            one["d"] = through(server, base + OPENAI_PATH, spec, model=PASSTHROUGH_MODEL)
            log(f"1 worker  d: {brief(one['d'])}")
            servers.pop().close()

        # 3. (b) with usage accounting off, then with per-key limits and
        # accounting on, one worker each, one right after the other.
        limits_mode = None
        if "b" in specs:
            off_config = work / "off.yaml"
            off_config.write_text("usage: {enabled: false}\n")
            server, base = start(1, "gunicorn-1-off.log", {"SWITCHBOARD_CONFIG": str(off_config)})
            fake.configure(chunks=20, ttft=0, pace=0)
            one["b_off"] = through(server, base + OPENAI_PATH, specs["b"], model=PASSTHROUGH_MODEL)
            log(f"1 worker  b, no keys, accounting off: {brief(one['b_off'])}")
            servers.pop().close()
            env, prefix, limits_mode = team_config(work)
            try:
                server, base = start(1, "gunicorn-1-limits.log", env)
                fake.configure(chunks=20, ttft=0, pace=0)
                one["b_limits"] = through(server, base + OPENAI_PATH, specs["b"], model=PASSTHROUGH_MODEL)
                log(f"1 worker  b, limits and accounting on ({limits_mode}): {brief(one['b_limits'])}")
                servers.pop().close()
            finally:
                drop_redis_prefix(prefix)

        # 4. Two workers, throughput only.
        two = {}
        if "b" in specs:
            server, base = start(2, "gunicorn-2.log")
            fake.configure(chunks=20, ttft=0, pace=0)
            two["b"] = through(server, base + OPENAI_PATH, specs["b"], model=PASSTHROUGH_MODEL)
            log(f"2 workers b: {brief(two['b'])}")
            servers.pop().close()
    except BaseException:
        log(f"benchmark failed; logs kept in {work}")
        raise
    finally:
        for server in servers:
            server.close()
        fake.close()
    shutil.rmtree(work, ignore_errors=True)

    for name, spec in specs.items():
        entry = {"spec": spec, "direct": direct[name], "switchboard_1_worker": one[name]}
        if name in two:
            entry["switchboard_2_workers"] = two[name]
        if name == "e":
            entry["switchboard_1_worker_passthrough"] = one["e_passthrough"]
        if name == "f":
            entry["switchboard_1_worker_chat_completions"] = one["f_chat"]
        if name == "g":
            entry["switchboard_1_worker_passthrough"] = one["g_passthrough"]
            entry["switchboard_1_worker_unsaved"] = one["g_unsaved"]
        if name == "b" and "b_limits" in one:
            entry["switchboard_1_worker_accounting_off"] = one["b_off"]
            entry["switchboard_1_worker_limits"] = {**one["b_limits"], "limits_mode": limits_mode}
        results["scenarios"][name] = entry
    results["figures"] = figures(results["scenarios"])
    for entry in results["scenarios"].values():
        for key in list(entry):
            if isinstance(entry[key], dict):
                for private in [k for k in entry[key] if k.startswith("_")]:
                    entry[key].pop(private)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "summary.md").write_text(markdown(results))
    return results


def figures(scenarios: dict) -> dict:
    """The numbers the targets speak about, each with whether it was met."""
    found: dict = {}

    def check(key: str, value, ok) -> None:
        found[key] = {"value": value, "target": TARGETS.get(key), "met": None if value is None else bool(ok(value))}

    if "a" in scenarios:
        a = scenarios["a"]
        check("a_added_ttft_p50_ms", added(a["switchboard_1_worker"]["ttft_ms"]["p50"], a["direct"]["ttft_ms"]["p50"]),
              lambda v: v <= TARGETS["a_added_ttft_p50_ms"])
        check("a_added_ttft_p99_ms", added(a["switchboard_1_worker"]["ttft_ms"]["p99"], a["direct"]["ttft_ms"]["p99"]),
              lambda v: v <= TARGETS["a_added_ttft_p99_ms"])
    if "b" in scenarios:
        b = scenarios["b"]
        sps = b["switchboard_1_worker"]["streams_per_s"]
        check("b_streams_per_s", sps, lambda v: v >= TARGETS["b_streams_per_s"])
        check("b_fraction_of_direct", round(sps / b["direct"]["streams_per_s"], 3),
              lambda v: v >= TARGETS["b_fraction_of_direct"])
        if "switchboard_2_workers" in b:
            found["b_streams_per_s_2_workers"] = {"value": b["switchboard_2_workers"]["streams_per_s"], "target": None,
                                                  "met": None}
        found["b_cpu_us_per_event"] = {"value": b["switchboard_1_worker"]["server"]["cpu_us_per_event"],
                                       "target": None, "met": None}
        if "switchboard_1_worker_limits" in b:
            off = b["switchboard_1_worker_accounting_off"]

            def cost(run: dict) -> float | None:
                """Worker CPU per request beyond the run with accounting off."""
                if run["server"]["cpu_us_per_stream"] is None or off["server"]["cpu_us_per_stream"] is None:
                    return None
                return round(run["server"]["cpu_us_per_stream"] - off["server"]["cpu_us_per_stream"], 1)

            found["b_off_streams_per_s"] = {"value": off["streams_per_s"], "target": None, "met": None}
            found["b_limits_streams_per_s"] = {"value": b["switchboard_1_worker_limits"]["streams_per_s"],
                                               "target": None, "met": None}
            found["b_default_accounting_cpu_us_per_request"] = {"value": cost(b["switchboard_1_worker"]),
                                                                "target": None, "met": None}
            found["b_limits_cpu_us_per_request"] = {"value": cost(b["switchboard_1_worker_limits"]),
                                                    "target": None, "met": None}
    if "c" in scenarios:
        c = scenarios["c"]
        check("c_errors", c["switchboard_1_worker"]["errors"], lambda v: v == TARGETS["c_errors"])
        check("c_added_ttft_p99_ms", added(c["switchboard_1_worker"]["ttft_ms"]["p99"], c["direct"]["ttft_ms"]["p99"]),
              lambda v: v <= TARGETS["c_added_ttft_p99_ms"])
    if "d" in scenarios:
        d = scenarios["d"]["switchboard_1_worker"]
        held = d["max_open_streams"]
        per_stream = (d["_rss_peak_bytes"] - d["_rss_before_bytes"]) / held / 1024 if held else None
        check("d_errors", d["errors"], lambda v: v == TARGETS["d_errors"])
        check("d_rss_per_stream_kb", round(per_stream, 1) if per_stream is not None else None,
              lambda v: v <= TARGETS["d_rss_per_stream_kb"])
        found["d_open_streams_held"] = {"value": held, "target": None, "met": None}
    if "e" in scenarios and "switchboard_1_worker_passthrough" in scenarios["e"]:
        e = scenarios["e"]
        translating = e["switchboard_1_worker"]["streams_per_s"]
        passthrough = e["switchboard_1_worker_passthrough"]["streams_per_s"]
        check("e_translation_cost", round(1 - translating / passthrough, 3) if passthrough else None,
              lambda v: v <= TARGETS["e_translation_cost"])
    if "f" in scenarios and "switchboard_1_worker_chat_completions" in scenarios["f"]:
        f = scenarios["f"]
        responses = f["switchboard_1_worker"]["server"]["cpu_us_per_event"]
        chat = f["switchboard_1_worker_chat_completions"]["server"]["cpu_us_per_event"]
        check("f_responses_cpu_per_event_over_chat", round(responses / chat - 1, 3) if responses and chat else None,
              lambda v: v <= TARGETS["f_responses_cpu_per_event_over_chat"])
        found["f_cpu_us_per_stream"] = {"value": {
            "responses": f["switchboard_1_worker"]["server"]["cpu_us_per_stream"],
            "chat_completions": f["switchboard_1_worker_chat_completions"]["server"]["cpu_us_per_stream"]},
            "target": None, "met": None}
    if "g" in scenarios and "switchboard_1_worker_passthrough" in scenarios["g"]:
        g = scenarios["g"]
        ui = g["switchboard_1_worker"]["server"]["cpu_us_per_event"]
        chat = g["switchboard_1_worker_passthrough"]["server"]["cpu_us_per_event"]
        check("g_cpu_per_event_vs_chat", round(ui / chat, 3) if ui and chat else None,
              lambda v: v <= TARGETS["g_cpu_per_event_vs_chat"])
        if "switchboard_1_worker_unsaved" in g:
            # the protocol alone: no conversation write, no resume recording
            unsaved = g["switchboard_1_worker_unsaved"]["server"]["cpu_us_per_event"]
            found["g_unsaved_cpu_per_event_vs_chat"] = {
                "value": round(unsaved / chat, 3) if unsaved and chat else None, "target": None, "met": None}
    return found


def brief(result: dict) -> str:
    text = (f"{result['ok']}/{result['requests']} ok, {result['streams_per_s']} streams/s, "
            f"ttft p50 {result['ttft_ms']['p50']} p99 {result['ttft_ms']['p99']} ms, "
            f"max open {result['max_open_streams']}")
    if result["errors"]:
        text += f", errors {result['error_kinds']}"
    if "server" in result:
        server = result["server"]
        text += (f", worker cpu {server['cpu_us_per_event']} us/event ({server['cpu_busy']:.0%} busy), "
                 f"rss peak {server['rss_peak_mb']} MB")
    return text


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Switchboard benchmark" + (" (smoke run: tiny counts, figures meaningless)" if results["smoke"] else ""),
        "",
        f"{m['date']} on {m['cpus']} x {m['cpu_model']}, {m['memory_gb']} GB, Linux {m['kernel']}, "
        f"Python {m['python']}, gunicorn {m['packages']['gunicorn']} + gevent {m['packages']['gevent']}, "
        f"commit {m['commit']}. Command: `make bench`.",
        "",
        "| scenario | | requests | errors | streams/s | TTFT p50 ms | TTFT p99 ms | total p99 ms | worker CPU µs/event | worker RSS peak MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, entry in results["scenarios"].items():
        for label, key in (("direct", "direct"), ("Switchboard, 1 worker", "switchboard_1_worker"),
                           ("Switchboard, 1 worker, passthrough", "switchboard_1_worker_passthrough"),
                           ("Switchboard, 1 worker, Chat Completions", "switchboard_1_worker_chat_completions"),
                           ("Switchboard, 1 worker, nothing stored", "switchboard_1_worker_unsaved"),
                           ("Switchboard, 1 worker, accounting off", "switchboard_1_worker_accounting_off"),
                           ("Switchboard, 1 worker, limits + accounting on", "switchboard_1_worker_limits"),
                           ("Switchboard, 2 workers", "switchboard_2_workers")):
            if key not in entry:
                continue
            r = entry[key]
            server = r.get("server", {})
            lines.append(
                f"| ({name}) {entry['spec']['title']} | {label} | {r['requests']} | {r['errors']} | {r['streams_per_s']} | "
                f"{r['ttft_ms']['p50']} | {r['ttft_ms']['p99']} | {r['total_ms']['p99']} | "
                f"{server.get('cpu_us_per_event', '')} | {server.get('rss_peak_mb', '')} |")
    lines += ["", "| figure | value | target | met |", "|---|---:|---:|---|"]
    for key, figure in results["figures"].items():
        met = "" if figure["met"] is None else ("yes" if figure["met"] else "**no**")
        target = "" if figure["target"] is None else figure["target"]
        lines.append(f"| {key} | {figure['value']} | {target} | {met} |")
    b = results["scenarios"].get("b")
    if b and b["switchboard_1_worker"]["streams_per_s"]:
        direct, relayed = b["direct"]["streams_per_s"], b["switchboard_1_worker"]["streams_per_s"]
        lines += ["", f"Upstream check: the fake upstream alone served {direct} streams/s in (b) "
                      f"({b['direct']['events_per_s']} events/s), {direct / relayed:.1f} times what one Switchboard "
                      f"worker relayed, so the fake is not the bottleneck."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Switchboard benchmark (see bench/run.py)")
    parser.add_argument("--smoke", action="store_true", help="tiny counts: checks the harness in seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--only", default="abcdefg", help="scenario letters to run, e.g. 'ab'")
    parser.add_argument("--requests", type=int, help="requests per scenario (a short run)")
    args = parser.parse_args(argv)
    results = run(args.smoke, args.out, args.only, requests=args.requests)
    print(markdown(results))
    print(f"written: {args.out / 'results.json'}, {args.out / 'summary.md'}")
    sys.exit(0)


if __name__ == "__main__":
    main()
