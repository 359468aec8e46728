"""The UI chat surface over HTTP: configuration resolution case by case (seen
in the `start` chunk and in what the upstream receives), block metadata and
settings, per-caller scoping, errors before the stream, and a departed client
stopping its upstream when there is no resume grace period."""
from __future__ import annotations

import json
import time

import pytest
import requests
import yaml

from proxy import create_app
from proxy.config import ProviderSettings

from .fakes import openai as openai_fake
from .fakes import scripted
from .fakes.live import serve
from .fakes.upstream import FakeUpstream

pytestmark = pytest.mark.integration

PRESETS = {
    "quick": {"model": "openai-chat", "temperature": 0.1, "max_tokens": 50, "system": "Quick."},
    "careful": {"model": "openai-chat", "temperature": 0.9, "max_tokens": 900, "system": "Careful."},
    "blocky": {"model": "openai-chat", "temperature": 0.3, "max_tokens": 300},
    "asked": {"model": "openai-chat", "temperature": 0.5, "max_tokens": 500, "system": "Asked."},
    "demo": {"model": "mock"},
}


def user_body(text="hi", **extra):
    return {"id": "chat-1", "trigger": "submit-message",
            "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": text}]}], **extra}


def chunks_of(response) -> list[dict]:
    data = response.get_data(as_text=True)
    return [json.loads(line[6:]) for line in data.split("\n") if line.startswith("data: {")]


@pytest.fixture
def fake():
    with FakeUpstream(default=scripted.openai_responder) as upstream:
        yield upstream


def make_app(tmp_path, fake, **yaml_values):
    path = tmp_path / "switchboard.yaml"
    path.write_text(yaml.safe_dump({"presets": PRESETS, **yaml_values}))
    return create_app({
        "demo_delay": 0, "config_file": str(path), "database_path": str(tmp_path / "db.sqlite"),
        "providers": {"openai": ProviderSettings(api_key=openai_fake.KEY, base_url=fake.url, key_variable="OPENAI_API_KEY")},
        "models": [{"id": "openai-chat", "provider": "openai", "model": "chat"}],
    })


def ask(client, fake, url="/api/ai/chat/b1", body=None, headers=None):
    before = len(fake.received)
    response = client.post(url, json=body or user_body(), headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    chunks = chunks_of(response)
    assert chunks[-1]["type"] == "finish", chunks
    sent = fake.received[-1].json if len(fake.received) > before else None
    return chunks[0]["messageMetadata"], sent


def system_of(sent) -> str | None:
    systems = [m["content"] for m in sent["messages"] if m["role"] in ("system", "developer")]
    return systems[0] if systems else None


def test_resolution_order_level_by_level(tmp_path, fake):
    client = make_app(tmp_path, fake, default_preset="quick", settings={"ai:preset": "careful"}).test_client()
    # the YAML settings name "careful": it beats default_preset
    metadata, sent = ask(client, fake)
    assert metadata == {"model": "openai-chat", "preset": "careful"}
    assert (sent["temperature"], sent.get("max_tokens") or sent.get("max_completion_tokens"), system_of(sent)) == \
        (0.9, 900, "Careful.")
    # the block's ai:preset beats the global setting
    assert client.put("/api/ai/blocks/b1", json={"meta": {"ai:preset": "blocky"}}).get_json() == \
        {"id": "b1", "meta": {"ai:preset": "blocky"}}
    metadata, sent = ask(client, fake)
    assert metadata["preset"] == "blocky" and sent["temperature"] == 0.3 and system_of(sent) is None
    # only for that block
    assert ask(client, fake, "/api/ai/chat/other")[0]["preset"] == "careful"
    # the query parameter beats the block
    metadata, sent = ask(client, fake, "/api/ai/chat/b1?preset=asked")
    assert metadata["preset"] == "asked" and system_of(sent) == "Asked."
    # removing the block's and the global setting falls back to default_preset
    client.put("/api/ai/blocks/b1", json={"meta": {"ai:preset": None}})
    assert client.put("/api/ai/settings", json={"ai:preset": None}).get_json() == {}
    metadata, sent = ask(client, fake)
    assert metadata["preset"] == "quick" and sent["temperature"] == 0.1 and system_of(sent) == "Quick."


def test_default_model_without_any_preset(tmp_path, fake):
    client = make_app(tmp_path, fake).test_client()
    response = client.post("/api/ai/chat/b1", json=user_body())
    assert chunks_of(response)[0]["messageMetadata"] == {"model": "mock", "preset": None}


def test_request_values_beat_the_preset_field_by_field(tmp_path, fake):
    client = make_app(tmp_path, fake, default_preset="careful").test_client()
    # one field from each place a request can set it; the others stay the preset's
    metadata, sent = ask(client, fake, body=user_body(options={"temperature": 0.2}))
    assert metadata == {"model": "openai-chat", "preset": "careful"}
    assert (sent["temperature"], sent.get("max_tokens") or sent.get("max_completion_tokens"), system_of(sent)) == \
        (0.2, 900, "Careful.")
    metadata, sent = ask(client, fake, headers={"X-AI-Max-Tokens": "64"})
    assert (sent["temperature"], sent.get("max_tokens") or sent.get("max_completion_tokens")) == (0.9, 64)
    metadata, sent = ask(client, fake, body=user_body(options={"system": "Mine."}, temperature=0.4))
    assert (sent["temperature"], system_of(sent)) == (0.4, "Mine.")
    # the model too: the start chunk shows the model that answers, and still the preset
    before = len(fake.received)
    response = client.post("/api/ai/chat/b1", json=user_body(model="mock"))
    assert chunks_of(response)[0]["messageMetadata"] == {"model": "mock", "preset": "careful"}
    assert len(fake.received) == before
    response = client.post("/api/ai/chat/b1", json=user_body(), headers={"X-AI-Model": "mock"})
    assert chunks_of(response)[0]["messageMetadata"] == {"model": "mock", "preset": "careful"}


def test_unknown_presets_are_errors_naming_their_source(tmp_path, fake):
    client = make_app(tmp_path, fake).test_client()
    response = client.post("/api/ai/chat/b1?preset=nope", json=user_body())
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["param"] == "preset" and "nope" in error["message"] and "quick" in error["message"]
    client.put("/api/ai/blocks/b1", json={"meta": {"ai:preset": "gone"}})
    response = client.post("/api/ai/chat/b1", json=user_body())
    assert response.status_code == 400 and "block's ai:preset" in response.get_json()["error"]["message"]


def test_errors_before_the_stream_are_json_with_a_status(tmp_path, fake):
    client = make_app(tmp_path, fake).test_client()
    response = client.post("/api/ai/chat/b1", json=user_body(model="no-such-model"))
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "model_not_found"
    response = client.post("/api/ai/chat/b1", json={"messages": "hi"})
    assert response.status_code == 400 and response.get_json()["error"]["param"] == "messages"
    response = client.put("/api/ai/blocks/b1", json={"meta": ["x"]})
    assert response.status_code == 400 and response.get_json()["error"]["param"] == "meta"
    response = client.post("/api/ai/conversations/b1", json={"messages": [{"id": "a", "role": "user", "parts": []},
                                                                          {"id": "a", "role": "user", "parts": []}]})
    assert response.status_code == 400 and response.get_json()["error"]["param"] == "messages[1].id"


def test_blocks_and_settings_merge_and_null_removes(tmp_path, fake):
    client = make_app(tmp_path, fake, settings={"ai:preset": "quick", "theme": "dark"}).test_client()
    assert client.get("/api/ai/blocks/b9").get_json() == {"id": "b9", "meta": {}}
    client.put("/api/ai/blocks/b9", json={"meta": {"ai:preset": "asked", "title": "T"}})
    assert client.put("/api/ai/blocks/b9", json={"meta": {"title": None, "pin": True}}).get_json() == \
        {"id": "b9", "meta": {"ai:preset": "asked", "pin": True}}
    assert client.get("/api/ai/settings").get_json() == {"ai:preset": "quick", "theme": "dark"}
    assert client.put("/api/ai/settings", json={"theme": None, "ai:preset": "careful"}).get_json() == \
        {"ai:preset": "careful"}
    assert client.get("/api/ai/settings").get_json() == {"ai:preset": "careful"}


def test_everything_is_per_caller(tmp_path, fake):
    app = make_app(tmp_path, fake)
    app.extensions["switchboard"].settings.api_keys = ["key-a", "key-b"]
    client = app.test_client()
    a, b = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}
    assert client.get("/api/ai/settings").status_code == 401
    client.put("/api/ai/blocks/b1", json={"meta": {"ai:preset": "asked"}}, headers=a)
    client.put("/api/ai/settings", json={"ai:preset": "quick"}, headers=a)
    assert client.get("/api/ai/blocks/b1", headers=b).get_json()["meta"] == {}
    assert client.get("/api/ai/settings", headers=b).get_json() == {}
    assert ask(client, fake, headers=a)[0]["preset"] == "asked"
    assert client.get("/api/ai/conversations/b1", headers=b).get_json() == {"messages": []}
    assert len(client.get("/api/ai/conversations/b1", headers=a).get_json()["messages"]) == 2


def test_a_departed_client_stops_the_upstream_without_grace(tmp_path):
    """Default SWITCHBOARD_RESUME_GRACE_SECONDS=0: leaving cancels at once,
    and the cut turn is stored as aborted."""
    app = create_app({"demo_delay": 1, "database_path": str(tmp_path / "db.sqlite")})
    with serve(app) as base:
        response = requests.post(f"{base}/api/ai/chat/gone", json=user_body(model="agent-demo"), stream=True, timeout=10)
        lines = response.iter_lines()
        while b"reasoning-delta" not in next(lines):
            pass
        response.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            health = requests.get(f"{base}/health?format=json", timeout=5).json()
            if health["open_streams"] == 0:
                break
            time.sleep(0.1)
        assert health["open_streams"] == 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            stored = requests.get(f"{base}/api/ai/conversations/gone", timeout=5).json()["messages"]
            if stored:
                break
            time.sleep(0.1)
        assert stored[-1]["metadata"]["status"] == "aborted"
        assert requests.get(f"{base}/api/ai/chat/gone/stream", timeout=5).status_code == 204


# -- hostile input ----------------------------------------------------------------------------

from hypothesis import HealthCheck, given  # noqa: E402
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st  # noqa: E402

leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
value = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                     max_leaves=8)
short_text = st.text(max_size=12)
text_part = st.fixed_dictionaries({
    "type": st.sampled_from(["text", "reasoning", "step-start", "data-x", "source-url"]),
    "text": st.one_of(short_text, short_text, value)}, optional={"providerMetadata": value})
file_part = st.fixed_dictionaries({
    "type": st.just("file"), "mediaType": st.sampled_from(["image/png", "text/plain", "x", 5]),
    "url": st.sampled_from(["data:image/png;base64,iVBORw0KGgo=", "data:text/plain;base64,aGk=",
                            "data:text/plain;base64,@@", "https://example.com/a.png", "javascript:x", "", 7])})
tool_part = st.fixed_dictionaries({
    "type": st.sampled_from(["tool-get_weather", "dynamic-tool", "tool-"]),
    "toolCallId": st.one_of(short_text, value), "toolName": st.one_of(short_text, value),
    "state": st.sampled_from(["output-available", "output-error", "output-denied", "input-available", None]),
    "input": value, "output": value, "errorText": value}, optional={"callProviderMetadata": value})
structured_part = st.one_of(text_part, file_part, tool_part)
part = st.one_of(value, structured_part)
message = st.one_of(value, st.fixed_dictionaries({
    "id": st.one_of(short_text, value), "role": st.sampled_from(["user", "assistant", "system", "tool", 5]),
    "parts": st.one_of(st.lists(part, max_size=4), value)}))
USER = {"id": "u-last", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
plausible = st.fixed_dictionaries({"id": st.text(min_size=1, max_size=6),
                                   "role": st.sampled_from(["user", "assistant", "system"]),
                                   "parts": st.lists(structured_part, max_size=4)})
# mostly a history ending in a valid user message, so that many bodies reach the stream
history = st.one_of(st.lists(plausible, max_size=3).map(lambda messages: [*messages, USER]),
                    st.lists(plausible, max_size=3).map(lambda messages: [*messages, USER]),
                    st.lists(message, max_size=3).map(lambda messages: [*messages, USER]),
                    st.lists(message, min_size=1, max_size=4), value)
body = st.one_of(value, st.fixed_dictionaries(
    {"messages": history},
    optional={"id": value, "trigger": st.sampled_from(["submit-message", "regenerate-message", "x", None]),
              "model": st.sampled_from(["mock", "tool-demo", "agent-demo", "error-demo", "nope", 5, None]),
              "options": st.one_of(st.fixed_dictionaries({}, optional={
                  "temperature": st.floats(0, 2), "maxTokens": st.integers(1, 99), "system": short_text,
                  "model": st.sampled_from(["mock", "agent-demo"])}), value),
              "temperature": st.one_of(st.floats(0, 2), value), "maxTokens": st.one_of(st.integers(1, 99), value),
              "tools": st.one_of(st.just([{"name": "get_weather", "parameters": {"type": "object"}}]), value),
              "messageId": value}))


@hypothesis_settings(max_examples=150, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=body, preset=st.sampled_from([None, "quick", "nope", ""]), text=st.booleans())
def test_hostile_bodies_get_4xx_or_a_terminated_stream(tmp_path_factory, payload, preset, text):
    app = fuzz_app(tmp_path_factory)
    query = "&".join(q for q in (f"preset={preset}" if preset is not None else "", "protocol=text" if text else "") if q)
    response = app.test_client().post(f"/api/ai/chat/fuzz?{query}", json=payload)
    assert response.status_code < 500, response.get_data(as_text=True)
    data = response.get_data(as_text=True)
    if response.status_code != 200:
        assert set(response.get_json()["error"]) >= {"message", "code"}
    elif not text:
        chunks = [json.loads(line[6:]) for line in data.split("\n") if line.startswith("data: {")]
        assert chunks[-1]["type"] in ("finish", "error") and data.endswith("data: [DONE]\n\n")


_FUZZ_APPS: dict = {}


def fuzz_app(factory):
    if "app" not in _FUZZ_APPS:
        path = factory.mktemp("fuzz")
        (path / "c.yaml").write_text(yaml.safe_dump({"presets": {"quick": {"model": "mock", "temperature": 0.1}}}))
        _FUZZ_APPS["app"] = create_app({"demo_delay": 0, "config_file": str(path / "c.yaml"),
                                        "database_path": str(path / "db.sqlite")})
    return _FUZZ_APPS["app"]
