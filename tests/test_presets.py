"""Presets (YAML `presets:`): a name usable as a model id on every surface,
with instructions and request defaults that request values override; listed
by /v1/models; a bad preset stops start-up naming the field."""
from __future__ import annotations

import json

import openai
import pytest
import yaml

from proxy import create_app

from .fakes import openai as openai_fake
from .fakes.upstream import FakeUpstream
from .helpers import ServerThread, split_frames

pytestmark = pytest.mark.integration

MSG = [{"role": "user", "content": "write a loop"}]


def app_with(tmp_path, presets, **extra):
    path = tmp_path / "switchboard.yaml"
    path.write_text(yaml.safe_dump({"presets": presets, **extra}))
    return create_app({"demo_delay": 0, "config_file": str(path), "database_path": str(tmp_path / "p.db")})


@pytest.fixture
def upstream():
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def coder(tmp_path, upstream, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", openai_fake.KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", upstream.url + "/v1")
    return app_with(tmp_path, {
        "coder": {"model": "openai/gpt-4o-mini", "system": "You write Python.", "temperature": 0.2,
                  "max_tokens": 300, "description": "terse Python help"},
        "storyteller": {"model": "reflection-and-thinking", "system": "Tell stories."},
    })


def test_models_lists_presets_with_their_models_capabilities(coder):
    listing = {m["id"]: m for m in coder.test_client().get("/v1/models").get_json()["data"]}
    story = listing["storyteller"]
    assert story["preset"] is True and story["model"] == "reflection-and-thinking"
    assert story["capabilities"] == listing["reflection-and-thinking"]["capabilities"]
    assert story["capabilities"]["thinking"] is True and story["instructions"] == "Tell stories."
    assert listing["coder"]["description"] == "terse Python help" and listing["coder"]["provider"] == "openai"
    one = coder.test_client().get("/v1/models/coder").get_json()
    assert one["id"] == "coder" and one["preset"] is True


def sent(upstream):
    return upstream.received[-1].json


def test_workbench_answers_a_preset_with_its_instructions_and_defaults(coder, upstream):
    upstream.reply(openai_fake.chat(openai_fake.text_stream("for i in range(3): pass")))
    response = coder.test_client().post("/api/chat", json={"model": "coder", "messages": MSG})
    assert "for i in range(3)" in response.get_data(as_text=True)
    payload = sent(upstream)
    assert payload["model"] == "gpt-4o-mini"
    assert payload["messages"][0] == {"role": "system", "content": "You write Python."}
    assert payload["temperature"] == 0.2
    assert payload.get("max_completion_tokens", payload.get("max_tokens")) == 300


def test_openai_sdk_request_values_override_the_preset_field_by_field(coder, upstream):
    upstream.reply(openai_fake.chat(openai_fake.text_stream("ok")))
    with ServerThread(coder) as server:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key="unused", max_retries=0)
        stream = client.chat.completions.create(model="coder", messages=MSG, temperature=0.9, stream=True)
        chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ok"
    assert chunks[0].model == "coder"  # the name the client asked for is echoed
    payload = sent(upstream)
    assert payload["temperature"] == 0.9  # the request's value
    assert payload.get("max_completion_tokens", payload.get("max_tokens")) == 300  # the preset's
    assert payload["messages"][0]["content"] == "You write Python."


def test_a_system_message_of_the_request_wins_over_the_presets(coder, upstream):
    upstream.reply(openai_fake.chat(openai_fake.text_stream("ok")))
    messages = [{"role": "system", "content": "You write Rust."}, *MSG]
    coder.test_client().post("/v1/chat/completions", json={"model": "coder", "messages": messages}).get_data()
    system = [m for m in sent(upstream)["messages"] if m["role"] == "system"]
    assert system == [{"role": "system", "content": "You write Rust."}]


def test_a_demo_preset_answers_on_both_surfaces(coder):
    client = coder.test_client()
    frames = split_frames(client.post("/api/chat", json={"model": "storyteller", "messages": MSG}).get_data())
    assert frames[-1] == "data: [DONE]" and any("thinking" in f for f in frames)
    body = client.post("/v1/chat/completions", json={"model": "storyteller", "messages": MSG, "stream": False})
    assert body.status_code == 200 and body.get_json()["model"] == "storyteller"


@pytest.mark.parametrize("preset, says", [
    ({"system": "x"}, "model is required"),
    ({"model": "no-such-model"}, "'no-such-model' is not a model"),
    ({"model": "mock", "temperature": 7}, "temperature must be a number from 0 to 2"),
    ({"model": "mock", "max_tokens": 0}, "max_tokens must be a positive integer"),
    ({"model": "mock", "tempurature": 0.2}, "unknown field(s) tempurature"),
    ({"model": "mock", "system": ["a"]}, "system must be a string"),
    ("mock", "must be a mapping"),
])
def test_a_bad_preset_fails_at_start_up_naming_the_field(tmp_path, preset, says):
    with pytest.raises(ValueError) as failure:
        app_with(tmp_path, {"broken": preset})
    assert "'broken'" in str(failure.value) and says in str(failure.value)


def test_a_preset_may_not_shadow_a_model(tmp_path):
    with pytest.raises(ValueError, match="has the name of a model"):
        app_with(tmp_path, {"mock": {"model": "mock"}})


def test_presets_must_be_a_mapping(tmp_path):
    with pytest.raises(ValueError, match="presets: must be a mapping"):
        app_with(tmp_path, ["coder"])


def test_unknown_model_error_mentions_presets(coder):
    response = coder.test_client().post("/api/chat", json={"model": "nope", "messages": MSG})
    assert response.status_code == 404
    assert "coder" in json.dumps(response.get_json())
