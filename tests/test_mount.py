"""Switchboard mounted inside a host Flask app under /llm (tests/host_app.py):
the host's routes, errors, CORS and JSON settings stay as they were; every
surface, the docs and Socket.IO live under the prefix; settings come from
app.config SWITCHBOARD_* keys. Live: the openai SDK and socket.io-client
under gunicorn's gevent worker and under `flask run`."""
from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import openai
import pytest
from openapi_spec_validator import validate

from proxy import Switchboard, create_app
from proxy.surfaces.api_docs import routes
from tests.helpers import content_of, split_frames
from tests.host_app import create_host_app

pytestmark = pytest.mark.integration  # the live-server tests below are e2e

ROOT = pathlib.Path(__file__).resolve().parent.parent
ORIGIN = {"Origin": "https://ui.example"}


@pytest.fixture
def host(tmp_path):
    return create_host_app(SWITCHBOARD_DEMO_DELAY="0", SWITCHBOARD_DATABASE=str(tmp_path / "sb.db"))


def test_host_routes_errors_and_json_style_are_unchanged(host):
    client = host.test_client()
    items = client.get("/items", headers=ORIGIN)
    assert items.status_code == 200
    assert items.get_data(as_text=True) == '{\n  "zebra": 1,\n  "apple": 2\n}\n'  # host's JSON settings
    assert "Access-Control-Allow-Origin" not in items.headers  # Switchboard's CORS is not the host's
    assert client.post("/items").status_code == 201
    for path in ("/nothing", "/health", "/api/chat", "/v1/models"):  # Switchboard's paths only exist under /llm
        missing = client.get(path)
        assert (missing.status_code, missing.get_json()) == (404, {"ok": False, "problem": "no such page here"}), path
    boom = client.get("/boom")
    assert (boom.status_code, boom.get_json()) == (500, {"ok": False, "problem": "the host failed"})
    assert host.config["MAX_CONTENT_LENGTH"] is None  # the body limit applies per Switchboard request only
    assert "switchboard" in host.extensions and "socketio" in host.extensions


def test_surfaces_live_under_the_prefix(host):
    client = host.test_client()
    assert client.get("/llm/health").get_data(as_text=True) == "OK"
    assert client.get("/llm/").get_json()["name"] == "switchboard"
    models = client.get("/llm/v1/models", headers=ORIGIN)
    assert "agent-demo" in {m["id"] for m in models.get_json()["data"]}
    assert models.headers["Access-Control-Allow-Origin"] in ("*", "https://ui.example")
    # the default model came from app.config SWITCHBOARD_DEFAULT_MODEL
    frames = split_frames(client.post("/llm/api/chat", json={"messages": [{"role": "user", "content": "hi"}]}).data)
    assert "".join(content_of(frames)).startswith("This is a response from the mock model")
    assert frames[-1] == "data: [DONE]"
    # Switchboard's own errors keep their shapes under the prefix
    unknown = client.post("/llm/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    assert unknown.status_code == 404 and unknown.get_json()["error"]["param"] == "model"
    # routing errors (no route matched) belong to the host app: its handlers, its shape
    assert client.get("/llm/v1/chat/completions").status_code == 405
    assert client.get("/llm/no-such-surface").get_json() == {"ok": False, "problem": "no such page here"}


def test_body_limit_applies_to_switchboard_only(tmp_path):
    host = create_host_app(SWITCHBOARD_MAX_BODY_BYTES="1000", SWITCHBOARD_DATABASE=str(tmp_path / "sb.db"))
    client = host.test_client()
    big = {"messages": [{"role": "user", "content": "x" * 5000}]}
    too_big = client.post("/llm/api/chat", json=big)
    assert too_big.status_code == 413 and "SWITCHBOARD_MAX_BODY_BYTES" in too_big.get_json()["error"]["message"]
    assert client.post("/items", json=big).status_code == 201


def test_playground_and_openapi_under_the_prefix(host):
    client = host.test_client()
    page = client.get("/llm/", headers={"Accept": "text/html"})
    assert page.mimetype == "text/html" and b'data-base="/llm"' in page.data
    assert b'src="/llm/playground/vendor/socket.io.min.js"' in page.data
    with client.get("/llm/playground/app.js") as script:
        assert script.status_code == 200
    document = client.get("/llm/openapi.json").get_json()
    validate(document)
    assert document["servers"][0]["url"] == "/llm"
    assert set(document["paths"]) == routes(host)
    assert b"/llm/openapi.json" in client.get("/llm/docs").data
    standalone = create_app({"demo_delay": 0})
    assert routes(host) == routes(standalone)  # the same surfaces, only moved


def test_init_app_in_a_factory_and_settings_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_DEFAULT_MODEL", "reflection-and-thinking")
    extension = Switchboard(config={"demo_delay": 0})
    host = create_host_app(extension, SWITCHBOARD_API_KEYS="k1,k2", SWITCHBOARD_DATABASE=str(tmp_path / "sb.db"))
    board = host.extensions["switchboard"]
    assert board.settings.api_keys == ["k1", "k2"]
    assert board.settings.default_model == "mock"  # app.config wins over the environment
    assert extension.board is board
    client = host.test_client()
    assert client.get("/llm/v1/models").status_code == 401
    assert client.get("/llm/v1/models", headers={"Authorization": "Bearer k2"}).status_code == 200
    page = client.get("/llm/", headers={"Accept": "text/html"})
    assert b'data-keys-required="true"' in page.data
    with pytest.raises(ValueError, match="SWITCHBOARD_NOPE"):
        create_host_app(SWITCHBOARD_NOPE="1", SWITCHBOARD_DATABASE=str(tmp_path / "sb2.db"))


# -- live servers ------------------------------------------------------------

@pytest.fixture(scope="module", params=["gunicorn", "flask run"])
def live_host(request, tmp_path_factory):
    from tests.servers import start_flask_run, start_gunicorn

    tmp = tmp_path_factory.mktemp("host")
    if request.param == "gunicorn":
        server = start_gunicorn(tmp, app="tests.host_app:app", health="/llm/health")
    else:
        server = start_flask_run(tmp, app="tests.host_app:app", health="/llm/health")
    yield server
    server.stop()


@pytest.mark.e2e
def test_live_openai_sdk_streams_under_the_prefix(live_host):
    import requests

    assert requests.get(live_host.url + "/items").json() == {"zebra": 1, "apple": 2}
    assert requests.get(live_host.url + "/nothing").json() == {"ok": False, "problem": "no such page here"}
    client = openai.OpenAI(base_url=live_host.url + "/llm/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(model="reflection-and-thinking", stream=True,
                                            messages=[{"role": "user", "content": "owls"}])
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "After deep reflection, I have concluded that owls is indeed interesting."
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["polling", "websocket", "default"])
def test_live_socket_io_client_with_the_prefixed_path(live_host, mode):
    node = shutil.which("node")
    assert node, "node is required for the JavaScript client tests"
    script = ROOT / "tests" / "js" / "socketio_chat.mjs"
    result = subprocess.run([node, str(script), live_host.url, mode, "reflection-and-thinking", "owls", "/llm/socket.io"],
                            cwd=ROOT, capture_output=True, text=True, timeout=40)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, outcome
    assert outcome["completed"] is True
    assert "".join(outcome["chunks"]) == "After deep reflection, I have concluded that owls is indeed interesting."
    # the unprefixed path is not Switchboard's (the host answers it)
    default_path = subprocess.run([node, str(script), live_host.url, "polling", "mock", "x"],
                                  cwd=ROOT, capture_output=True, text=True, timeout=40)
    assert default_path.returncode == 1
