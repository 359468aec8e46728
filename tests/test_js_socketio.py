"""The JavaScript socket.io-client 4.x completes a chat against the real
server in polling-only, websocket-only and default (polling + upgrade)
transports, under gunicorn (gevent worker) and under `flask run` (threads)."""
from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = pathlib.Path(__file__).parent / "js" / "socketio_chat.mjs"
ROOT = SCRIPT.parent.parent.parent
EXPECTED = "After deep reflection, I have concluded that owls is indeed interesting."


def run_client(url: str, mode: str) -> dict:
    node = shutil.which("node")
    assert node, "node is required for the JavaScript client tests"
    result = subprocess.run([node, str(SCRIPT), url, mode, "reflection-and-thinking", "owls"], cwd=ROOT,
                            capture_output=True, text=True, timeout=40)
    lines = result.stdout.strip().splitlines()
    assert lines, f"no output; stderr: {result.stderr}"
    outcome = json.loads(lines[-1])
    assert result.returncode == 0, outcome
    return outcome


@pytest.mark.parametrize("server_fixture", ["gunicorn_server", "flask_server"])
@pytest.mark.parametrize("mode", ["polling", "websocket", "default"])
def test_socket_io_client_completes_a_chat(request, server_fixture, mode):
    server = request.getfixturevalue(server_fixture)
    outcome = run_client(server.url, mode)
    assert outcome["completed"] is True
    assert "".join(outcome["chunks"]) == EXPECTED
    assert outcome["thinking"] == ["Analyzing the request...\n", "Identifying key concepts...\n"]
    if mode == "polling":
        assert outcome["transports"] == ["polling"] and not outcome["upgraded"]
    elif mode == "websocket":
        assert outcome["transports"] == ["websocket"]
    else:
        assert outcome["transports"] == ["polling", "websocket"] and outcome["upgraded"]
    assert "MonkeyPatchWarning" not in server.log()
