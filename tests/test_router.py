"""Routing, the YAML model catalog, retries and fallbacks, over fake upstreams on real sockets."""
from __future__ import annotations

import threading
import time

import pytest

from proxy import create_app
from proxy.config import ProviderSettings
from proxy.streaming import guard
from tests.fakes.openai import KEY, chat, error, text_stream
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.integration

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
DEAD_URL = "http://127.0.0.1:9/v1"  # the discard port: connection refused


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SWITCHBOARD_CONFIG", "VLLM_KEY"):
        monkeypatch.delenv(name, raising=False)


def make_app(models=None, fake=None, **settings):
    config = {"demo_delay": 0, "max_retries": 2, "retry_base_delay": 0.01, "idle_timeout": 2.0,
              "models": models or []}
    if fake is not None:
        config["providers"] = {"openai": ProviderSettings(api_key=KEY, base_url=fake.url + "/v1",
                                                          key_variable="OPENAI_API_KEY")}
    config.update(settings)
    return create_app(config)


def post(app, model):
    return app.test_client().post("/api/chat", json={**CHAT, "model": model})


def test_retry_after_429_then_success(fake_upstream):
    fake_upstream.reply(error(429, "Rate limit reached", "requests", "rate_limit_exceeded", **{"retry-after": "0.05"}),
                        chat(text_stream("Hello", "!")))
    response = post(make_app(fake=fake_upstream), "openai/gpt-4o-mini")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == 'data: {"content":"Hello"}\n\ndata: {"content":"!"}\n\ndata: [DONE]\n\n'
    assert len(fake_upstream.received) == 2


def test_retry_after_503_with_backoff(fake_upstream):
    fake_upstream.reply(error(503, "The server is overloaded"), error(503, "The server is overloaded"),
                        chat(text_stream("ok")))
    response = post(make_app(fake=fake_upstream), "openai/gpt-4o-mini")
    assert response.get_data(as_text=True) == 'data: {"content":"ok"}\n\ndata: [DONE]\n\n'
    assert len(fake_upstream.received) == 3


def test_retries_are_bounded_by_max_retries(fake_upstream):
    fake_upstream.reply(*[error(503, "overloaded")] * 5)
    response = post(make_app(fake=fake_upstream, max_retries=1), "openai/gpt-4o-mini")
    assert response.status_code == 502 and response.get_json()["error"]["message"].endswith("overloaded")
    assert len(fake_upstream.received) == 2


def test_non_retryable_errors_are_not_retried(fake_upstream):
    fake_upstream.reply(error(400, "Unsupported parameter: 'max_tokens'", "invalid_request_error",
                              "unsupported_parameter"))
    response = post(make_app(fake=fake_upstream), "openai/o3-mini")
    assert response.status_code == 400
    assert len(fake_upstream.received) == 1


def test_in_band_error_before_content_is_retried_and_metadata_replayed_once(fake_upstream):
    failing = (b'data: {"id":"chatcmpl-first","object":"chat.completion.chunk","created":1,"model":"m","choices":'
               b'[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
               b'data: {"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}\n\n')
    fake_upstream.reply(chat(failing), chat(text_stream("fine")))
    app = make_app(fake=fake_upstream)
    from proxy.canonical import ChatRequest, Message, TextPart

    stream = app.extensions["switchboard"].router.open(
        ChatRequest("openai/gpt-4o-mini", [Message("user", (TextPart("hi"),))]))
    events = list(guard(stream))
    metadata = [e for e in events if e.type == "response-metadata"]
    assert [m.id for m in metadata] == ["chatcmpl-fake"]  # only the attempt that succeeded
    assert "".join(e.delta for e in events if e.type == "text-delta") == "fine"
    assert events[-1].type == "finish"
    assert stream.attempts == [("openai/gpt-4o-mini", "server_error")]
    assert len(fake_upstream.received) == 2


def test_cut_before_content_is_retried(fake_upstream):
    fake_upstream.reply(chat(text_stream("never", "seen"), cut_after=1), chat(text_stream("second")))
    response = post(make_app(fake=fake_upstream), "openai/gpt-4o-mini")
    assert response.get_data(as_text=True) == 'data: {"content":"second"}\n\ndata: [DONE]\n\n'
    assert len(fake_upstream.received) == 2


def test_no_retry_after_content_was_sent(fake_upstream):
    # cut right after the first content chunk; a fallback exists and retries are allowed
    fake_upstream.reply(chat(text_stream("Hello", " there", " friend"), cut_after=2))
    models = [{"id": "main", "provider": "openai", "model": "gpt-4o-mini", "fallbacks": ["backup"]},
              {"id": "backup", "provider": "openai", "model": "gpt-4o"}]
    response = post(make_app(models, fake=fake_upstream), "main")
    body = response.get_data(as_text=True)
    assert body.startswith('data: {"content":"Hello"}\n\n')
    assert "event: error" in body and body.endswith("data: [DONE]\n\n")
    assert "there" not in body
    assert len(fake_upstream.received) == 1


def test_fallback_when_first_model_is_unreachable(fake_upstream):
    fake_upstream.reply(chat(text_stream("from backup")))
    models = [{"id": "main", "provider": "openai", "model": "gpt-4o", "base_url": DEAD_URL, "api_key": "sk-main-123456",
               "fallbacks": ["backup"]},
              {"id": "backup", "provider": "openai", "model": "llama3", "base_url": fake_upstream.url + "/v1",
               "api_key": KEY}]
    response = post(make_app(models, max_retries=1), "main")
    assert response.get_data(as_text=True) == 'data: {"content":"from backup"}\n\ndata: [DONE]\n\n'
    assert [r.json["model"] for r in fake_upstream.received] == ["llama3"]


def test_fallback_after_500s_keeps_the_order():
    with FakeUpstream() as first, FakeUpstream() as second, FakeUpstream() as third:
        first.reply(*[error(500, "boom")] * 3)
        second.reply(*[error(500, "boom")] * 3)
        third.reply(chat(text_stream("third"), key=None))
        models = [{"id": "a", "provider": "openai", "model": "m1", "base_url": first.url + "/v1", "fallbacks": ["b", "c"]},
                  {"id": "b", "provider": "openai", "model": "m2", "base_url": second.url + "/v1"},
                  {"id": "c", "provider": "openai", "model": "m3", "base_url": third.url + "/v1"}]
        response = post(make_app(models, max_retries=1), "a")
        assert response.get_data(as_text=True) == 'data: {"content":"third"}\n\ndata: [DONE]\n\n'
        assert (len(first.received), len(second.received), len(third.received)) == (2, 2, 1)


def test_fallbacks_of_a_fallback_are_not_followed():
    """A model's `fallbacks` are its whole plan (README: no chains, no cycles)."""
    with FakeUpstream() as first, FakeUpstream() as second, FakeUpstream() as third:
        first.reply(error(500, "boom"))
        second.reply(error(500, "boom"))
        third.reply(chat(text_stream("third"), key=None))
        models = [{"id": "a", "provider": "openai", "model": "m1", "base_url": first.url + "/v1", "fallbacks": ["b"]},
                  {"id": "b", "provider": "openai", "model": "m2", "base_url": second.url + "/v1", "fallbacks": ["c"]},
                  {"id": "c", "provider": "openai", "model": "m3", "base_url": third.url + "/v1", "fallbacks": ["a"]}]
        response = post(make_app(models, max_retries=0), "a")
        assert response.status_code == 502
        assert (len(first.received), len(second.received), len(third.received)) == (1, 1, 0)
        # asked for directly, b does use its own fallback
        assert post(make_app(models, max_retries=0), "b").get_data(as_text=True).startswith('data: {"content":"third"}')


def test_all_attempts_failing_give_the_last_error_status():
    models = [{"id": "a", "provider": "openai", "model": "m", "base_url": DEAD_URL, "fallbacks": ["b"]},
              {"id": "b", "provider": "openai", "model": "m", "base_url": DEAD_URL}]
    response = post(make_app(models, max_retries=0), "a")
    assert response.status_code == 502 and "could not connect" in response.get_json()["error"]["message"]


def test_cancel_stops_a_backoff_pause_promptly(fake_upstream):
    fake_upstream.reply(chat(text_stream("x"), cut_after=1))  # cut before content: a retry is due
    app = make_app(fake=fake_upstream, retry_base_delay=30.0)
    from proxy.canonical import ChatRequest, Message, TextPart

    stream = app.extensions["switchboard"].router.open(ChatRequest("openai/m", [Message("user", (TextPart("hi"),))]))
    done = threading.Event()
    events = []

    def consume():
        events.extend(stream)
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    deadline = time.monotonic() + 5
    while not stream.attempts and time.monotonic() < deadline:  # wait until it is backing off
        time.sleep(0.01)
    assert stream.attempts
    stream.cancel()
    assert done.wait(1.0)  # not 15-30 s later
    assert len(fake_upstream.received) == 1
    assert not any(e.type == "text-delta" for e in events)


# -- the YAML catalog ---------------------------------------------------------------

def write_config(tmp_path, text):
    path = tmp_path / "switchboard.yaml"
    path.write_text(text)
    return str(path)


def test_yaml_two_compatible_servers_aliases_capabilities_params_fallbacks(tmp_path, monkeypatch):
    with FakeUpstream() as ollama, FakeUpstream() as vllm:
        ollama.reply(error(500, "model runner crashed"), chat(text_stream("from ollama"), key=None))
        vllm.reply(chat(text_stream("from vllm"), key="vllm-secret-key"))
        monkeypatch.setenv("VLLM_KEY", "vllm-secret-key")
        monkeypatch.setenv("SWITCHBOARD_CONFIG", write_config(tmp_path, f"""
models:
  - id: local-qwen
    provider: openai
    model: qwen3:8b
    base_url: {ollama.url}/v1
    api_key: none
    capabilities: {{thinking: true}}
    params: {{temperature: 0.2, max_tokens: 256}}
    fallbacks: [gpu-llama]
  - id: gpu-llama
    provider: openai
    model: meta-llama/Llama-3.1-8B-Instruct
    base_url: {vllm.url}/v1
    api_key_env: VLLM_KEY
    capabilities: {{imageInput: true}}
    params: {{top_k: 20}}
"""))
        app = create_app({"demo_delay": 0, "max_retries": 0})
        client = app.test_client()
        listed = {m["id"]: m for m in client.get("/v1/models").get_json()["data"]}
        assert {"mock", "local-qwen", "gpu-llama"} <= set(listed)
        assert listed["local-qwen"]["capabilities"]["thinking"] is True
        assert listed["local-qwen"]["capabilities"]["imageInput"] is False
        assert listed["gpu-llama"]["capabilities"]["imageInput"] is True
        assert listed["gpu-llama"]["owned_by"] == "openai"

        # first: ollama 500s (no retries) -> falls back to vLLM, in declared order
        first = client.post("/api/chat", json={**CHAT, "model": "local-qwen"})
        assert first.get_data(as_text=True) == 'data: {"content":"from vllm"}\n\ndata: [DONE]\n\n'
        # second: ollama answers directly
        second = client.post("/api/chat", json={**CHAT, "model": "local-qwen"})
        assert second.get_data(as_text=True) == 'data: {"content":"from ollama"}\n\ndata: [DONE]\n\n'

        to_ollama = ollama.received[0]
        assert to_ollama.json["model"] == "qwen3:8b"
        assert to_ollama.json["temperature"] == 0.2 and to_ollama.json["max_tokens"] == 256
        assert "Authorization" not in to_ollama.headers  # keyless local server
        to_vllm = vllm.received[0]
        assert to_vllm.json["model"] == "meta-llama/Llama-3.1-8B-Instruct"
        assert to_vllm.json["top_k"] == 20 and "temperature" not in to_vllm.json  # its own params only
        assert to_vllm.headers["Authorization"] == "Bearer vllm-secret-key"


def test_missing_key_names_the_variable_and_hides_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_CONFIG", write_config(tmp_path, """
models:
  - id: gpt
    provider: openai
    model: gpt-4o-mini
  - id: remote-vllm
    provider: openai
    model: llama
    base_url: http://127.0.0.1:9/v1
    api_key_env: VLLM_KEY
"""))
    client = create_app({"demo_delay": 0}).test_client()
    listed = [m["id"] for m in client.get("/v1/models").get_json()["data"]]
    assert "gpt" not in listed and "remote-vllm" not in listed and "mock" in listed
    for model, variable in (("gpt", "OPENAI_API_KEY"), ("remote-vllm", "VLLM_KEY"), ("openai/gpt-4o", "OPENAI_API_KEY")):
        response = client.post("/api/chat", json={**CHAT, "model": model})
        assert response.status_code == 503
        assert variable in response.get_json()["error"]["message"]


def test_openai_base_url_alone_enables_a_keyless_local_server(fake_upstream, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", fake_upstream.url + "/v1")
    fake_upstream.reply(chat(text_stream("local"), key=None))
    response = post(create_app({"demo_delay": 0}), "openai/llama3.2")
    assert response.get_data(as_text=True) == 'data: {"content":"local"}\n\ndata: [DONE]\n\n'


@pytest.mark.parametrize("entry, message", [
    ({"id": "x", "provider": "openai", "model": "m", "capabilities": {"telepathy": True}}, "unknown capability 'telepathy'"),
    ({"id": "x", "provider": "openai", "model": "m", "fallbacks": ["nope"]}, "falls back to 'nope'"),
    ({"id": "x", "provider": "nobody", "model": "m"}, "provider must be one of"),
    ({"id": "x", "provider": "openai", "model": "m", "temperature": 1}, "unknown field(s) temperature"),
    ({"id": "x", "provider": "openai"}, "set model:"),
])
def test_bad_model_declarations_say_what_to_fix(entry, message):
    with pytest.raises(ValueError) as caught:
        make_app([entry])
    assert message in str(caught.value)
