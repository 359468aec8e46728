"""The official Open Responses compliance suite against a live Switchboard.

The suite (the specification's own CLI and its zod schemas, all 17 tests:
HTTP JSON and SSE, the WebSocket mode with store: false continuations,
compaction) is not on npm: it lives in a `shared/conformance/openresponses`
folder beside the checkout (CI lays it next to the repository). The test
copies it to a temporary directory, installs its two npm packages with
`npm ci`, and runs it against the demo `mock` model and against the OpenAI,
Anthropic and Gemini providers over their fake upstreams (model `auto`,
which answers like `mock`: tools called when declared, results quoted).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from proxy import create_app

from .fakes.live import serve
from .test_openai_sdk import ANTHROPIC, DEMO, GEMINI, OPENAI, Target

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SUITE = Path("shared") / "conformance" / "openresponses"
KEY = "sk-compliance-test"
TESTS = 17


def find_suite() -> Path | None:
    """`shared/` beside the checkout (CI), or beside a folder above it (worktrees)."""
    for folder in ROOT.parents:
        candidate = folder / SUITE
        if (candidate / "package.json").exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    source = find_suite()
    if source is None:
        pytest.skip(f"the Open Responses compliance suite ({SUITE}) is not beside this checkout")
    if shutil.which("npm") is None:
        pytest.fail("npm is needed to run the Open Responses compliance suite")
    target = tmp_path_factory.mktemp("openresponses") / "suite"
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:  # the source is read-only
        path.chmod(path.stat().st_mode | 0o200)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=target, check=True, capture_output=True, timeout=300)
    return target


def run_suite(suite: Path, base_url: str, model: str) -> dict:
    completed = subprocess.run(
        ["npm", "run", "--silent", "compliance", "--", "-u", f"{base_url}/v1", "-k", KEY, "-m", model, "--json"],
        cwd=suite, capture_output=True, text=True, timeout=240)
    try:
        return json.loads(completed.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"the suite printed no JSON: {completed.stdout[-2000:]} {completed.stderr[-2000:]}") from None


MODELS = {"demo": "mock", "openai": "openai-auto", "anthropic": "anthropic-auto", "gemini": "gemini-auto"}


@pytest.mark.timeout(600)  # the first one includes `npm ci`
@pytest.mark.parametrize("target", [DEMO, OPENAI, ANTHROPIC, GEMINI], ids=lambda t: t.id)
def test_compliance_suite_passes_in_full(suite, target: Target, tmp_path):
    with target.start(None) as (settings, _fake):
        if "models" in settings:
            vendor = target.id
            settings["models"] = settings["models"] + [{"id": f"{vendor}-auto", "provider": vendor, "model": "auto"}]
        app = create_app({"demo_delay": 0, "api_keys": [KEY], "database_path": str(tmp_path / "state.db"),
                          **settings})
        with serve(app) as base_url:
            report = run_suite(suite, base_url, MODELS[target.id])
    failures = {r["id"]: r.get("errors") for r in report["results"] if r["status"] != "passed"}
    assert not failures, json.dumps(failures, indent=1)[:4000]
    assert report["summary"] == {"passed": TESTS, "failed": 0, "skipped": 0, "total": TESTS}
