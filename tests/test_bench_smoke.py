"""The benchmark harness still works: every scenario with tiny counts.

Runs `python -m bench --smoke` for real (fake upstream, gunicorn with gevent
workers, load generator, each its own process) and checks the results files.
No timing is asserted: figures of a smoke run mean nothing; what matters is
that every stream went through complete and the results were written.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent


def test_bench_smoke_run(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["smoke"] is True
    assert results["machine"]["cpus"] >= 1
    assert sorted(results["scenarios"]) == ["a", "b", "c", "d", "e", "f", "g"]
    for name, entry in results["scenarios"].items():
        runs = {key: value for key, value in entry.items() if key != "spec"}
        assert {"direct", "switchboard_1_worker"} <= set(runs), name
        for label, run in runs.items():
            assert run["requests"] == entry["spec"]["requests"], (name, label)
            assert run["errors"] == 0, (name, label, run["error_kinds"])
            # role, 20 or 3 content chunks, finish, usage, [DONE] (OpenAI); more events for Anthropic
            assert run["events_per_stream"] >= entry["spec"]["chunks"] + 3, (name, label)
            assert run["ttft_ms"]["p50"] is not None, (name, label)
        for label, run in runs.items():
            if label != "direct":
                assert run["server"]["rss_peak_mb"] > 0, (name, label)
    assert "switchboard_2_workers" in results["scenarios"]["b"]
    assert {"switchboard_1_worker_accounting_off", "switchboard_1_worker_limits"} <= set(results["scenarios"]["b"])
    assert results["figures"]["b_limits_cpu_us_per_request"]["value"] is not None
    assert "switchboard_1_worker_passthrough" in results["scenarios"]["e"]
    assert "switchboard_1_worker_chat_completions" in results["scenarios"]["f"]
    assert {"switchboard_1_worker_passthrough", "switchboard_1_worker_unsaved"} <= set(results["scenarios"]["g"])
    assert results["figures"]["d_open_streams_held"]["value"] >= 1
    summary = (tmp_path / "summary.md").read_text()
    assert "| (b) c=50, 20-chunk unpaced streams | direct |" in summary
