"""Property-based fuzzing (hypothesis) of every HTTP endpoint and the
Socket.IO `chat` event: hostile input is normal input.

For any body, header or Socket.IO payload: no 5xx, no traceback in the log,
every error in its surface's shape, and every Socket.IO chat ends in exactly
one `complete` or `error`. The strategies mix random JSON with fragments
known to have broken gateways (self-referencing and malformed JSON schemas,
non-string roles, list ids, lone surrogates, deep nesting, unparsable image
hosts), so reintroducing one of those defects fails this test. Bounded: a few
hundred examples per target, derandomized, well under a minute.
"""
from __future__ import annotations

import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import create_app
from proxy.config import ProviderSettings

from .fakes import anthropic as anthropic_fake
from .fakes import gemini as gemini_fake
from .fakes import openai as openai_fake
from .fakes.upstream import FakeUpstream, Reply, transcript

pytestmark = pytest.mark.integration

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# --- hostile fragments -------------------------------------------------------------

BOMB = {"type": "object", "$defs": {"a": {"type": "object", "properties": {"x": {"$ref": "#/$defs/a"},
                                                                           "y": {"$ref": "#/$defs/a"}}}},
        "properties": {"r": {"$ref": "#/$defs/a"}}}
BAD_SCHEMAS = [BOMB, {"type": "object", "required": [{}]}, {"anyOf": ["x"]}, {"anyOf": 5}, {"enum": 5},
               {"definitions": ["x"]}, {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}},
               {"$ref": "#"}, {"type": ["string", "null"]}, {"items": [1, 2]}, {"properties": []}]
BAD_URLS = ["http://%zz/", "http://１２７.０.０.１/", "http://a b/", "http://[::1/", "http://224.0.0.1/x.png",
            "ftp://x/y", "data:", "data:image/png;base64,@@@", "http://127.0.0.1:9/x.png", "", "javascript:x"]
MODELS = ["mock", "agent-demo", "error-demo", "tool-demo", "text-in-image-out", "openai/gpt-x",
          "anthropic/claude-x", "gemini/gemini-x", "", "nope", "openai/", "/x", "a" * 300]
ROLES = ["user", "assistant", "system", "developer", "tool", "", "USER", None, 5, ["user"], {"r": 1}]

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                      st.floats(allow_nan=False), st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
anything = st.one_of(json_value, st.sampled_from(BAD_SCHEMAS), st.sampled_from(BAD_URLS))


def deep(depth: int):
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


content_part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(st.text(max_size=30), anything)}),
    st.fixed_dictionaries({"type": st.just("image_url"),
                           "image_url": st.one_of(st.sampled_from(BAD_URLS).map(lambda u: {"url": u}), anything)}),
    st.fixed_dictionaries({"type": st.sampled_from(["image", "input_image", "file", "audio", 5])}, optional={
        "image": st.sampled_from(BAD_URLS), "url": anything}),
    anything,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(ROLES)},
    optional={"content": st.one_of(st.text(max_size=40), st.lists(content_part, max_size=3), anything),
              "tool_calls": st.one_of(anything, st.lists(st.fixed_dictionaries({
                  "id": anything, "type": st.just("function"),
                  "function": st.fixed_dictionaries({"name": anything, "arguments": anything})}), max_size=2)),
              "tool_call_id": anything, "name": anything},
)
tool = st.one_of(
    st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries(
        {"name": st.sampled_from(["get_weather", "", "x" * 100, "bad name!"])},
        optional={"parameters": st.one_of(st.sampled_from(BAD_SCHEMAS), anything), "description": anything})}),
    anything,
)
chat_body = st.fixed_dictionaries({}, optional={
    "model": st.one_of(st.sampled_from(MODELS), anything),
    "messages": st.one_of(st.lists(message, min_size=1, max_size=4), anything),
    "stream": st.one_of(st.booleans(), anything),
    "tools": st.one_of(st.lists(tool, max_size=2), anything),
    "tool_choice": st.one_of(st.sampled_from(["auto", "none", "required"]), anything),
    "response_format": st.one_of(st.builds(lambda s: {"type": "json_schema", "json_schema": {"name": "x", "schema": s}},
                                           st.sampled_from(BAD_SCHEMAS)), anything),
    "temperature": anything, "max_tokens": anything, "stop": anything, "n": anything,
    "stream_options": anything, "conversation_id": anything, "reasoning_effort": anything,
    "id": anything,
})
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain", "", "application/x-www-form-urlencoded",
                 "application/vnd.api+json", "multipart/form-data; boundary=x"]


# --- the app under fuzzing: every provider configured against fake upstreams ----------

def answer(vendor: str):
    def reply(received) -> Reply:
        body = received.json if isinstance(received.json, dict) else {}
        streaming = "streamGenerateContent" in received.path if vendor == "gemini" else body.get("stream") is True
        if vendor == "openai":
            return Reply.sse(transcript("openai", "text.sse")) if streaming else \
                Reply.json(None, raw=transcript("openai", "nonstream_text.json"))
        if vendor == "anthropic":
            return Reply.sse(transcript("anthropic", "basic_text.sse")) if streaming else \
                Reply.json(None, raw=transcript("anthropic", "message.json"))
        return Reply.sse(transcript("gemini", "plain_text.sse")) if streaming else \
            Reply.json(None, raw=transcript("gemini", "generate_content.json"))
    return reply


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    with FakeUpstream(answer("openai")) as oa, FakeUpstream(answer("anthropic")) as an, \
            FakeUpstream(answer("gemini")) as ge:
        app = create_app({
            "demo_delay": 0, "max_retries": 0, "idle_timeout": 5.0, "heartbeat_seconds": 5.0,
            "database_path": str(tmp_path_factory.mktemp("fuzz") / "fuzz.db"),
            "providers": {
                "openai": ProviderSettings(openai_fake.KEY, oa.url + "/v1", "OPENAI_API_KEY"),
                "anthropic": ProviderSettings(anthropic_fake.KEY, an.url, "ANTHROPIC_API_KEY"),
                "gemini": ProviderSettings(gemini_fake.KEY, ge.url, "GEMINI_API_KEY"),
            },
        })
        yield app


class Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def errors_logged():
    handler = Failures()
    logging.getLogger().addHandler(handler)
    yield handler.records
    logging.getLogger().removeHandler(handler)


def check(response, logged, what) -> None:
    body = response.get_data()
    assert response.status_code < 500, (what, response.status_code, body[:500])
    assert not logged, (what, [r.getMessage() for r in logged])
    if response.status_code >= 400:
        error = json.loads(body)["error"]
        assert isinstance(error["message"], str) and error["message"], (what, body)
        assert isinstance(error["code"], str), (what, body)
    for key in (openai_fake.KEY, anthropic_fake.KEY, gemini_fake.KEY):
        assert key.encode() not in body


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
@FUZZ
@given(body=st.one_of(chat_body, anything), content_type=st.sampled_from(CONTENT_TYPES))
def test_chat_endpoints(fuzz_app, errors_logged, path, body, content_type):
    data = json.dumps(body).encode()
    response = fuzz_app.test_client().post(path, data=data, content_type=content_type or None)
    check(response, errors_logged, (path, body, content_type))


valid_messages = st.just([{"role": "user", "content": "hi"}])
hostile_field = st.one_of(
    st.builds(lambda schema: {"tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}]},
              st.sampled_from(BAD_SCHEMAS)),
    st.builds(lambda schema: {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}},
              st.sampled_from(BAD_SCHEMAS)),
    st.builds(lambda url: {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]},
              st.sampled_from(BAD_URLS)),
    st.builds(lambda role: {"messages": [{"role": role, "content": "x"}]}, st.sampled_from(ROLES)),
)


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
@FUZZ
@given(model=st.sampled_from(["openai/gpt-x", "anthropic/claude-x", "gemini/gemini-x", "mock"]),
       stream=st.booleans(), hostile=hostile_field)
def test_one_hostile_field_in_an_otherwise_valid_request(fuzz_app, errors_logged, path, model, stream, hostile):
    """Random JSON rarely gets past validation: here everything is valid
    but one field, so the hostile value reaches the provider's request builder."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream, **hostile}
    response = fuzz_app.test_client().post(path, json=body)
    check(response, errors_logged, (path, body))


@FUZZ
@given(raw=st.one_of(st.binary(max_size=60), st.sampled_from([b"{", b"\xff\xfe", b"[" * 5000, b'{"a":' * 2000,
                                                               b'"\\ud800"', b"null", b"1e999999"])))
def test_chat_endpoints_with_bytes_that_are_not_json(fuzz_app, errors_logged, raw):
    for path in ("/api/chat", "/v1/chat/completions", "/api/conversations"):
        response = fuzz_app.test_client().post(path, data=raw, content_type="application/json")
        check(response, errors_logged, (path, raw))


@FUZZ
@given(body=st.one_of(st.fixed_dictionaries({}, optional={
    "title": anything, "metadata": anything, "messages": st.one_of(st.lists(message, max_size=3), anything)}), anything),
    limit=st.one_of(st.none(), st.text(max_size=5), st.integers()), before=st.one_of(st.none(), st.text(max_size=5)),
    conversation_id=st.text(max_size=20))
def test_conversation_endpoints(fuzz_app, errors_logged, body, limit, before, conversation_id):
    client = fuzz_app.test_client()
    check(client.post("/api/conversations", json=body), errors_logged, ("create", body))
    query = {k: v for k, v in (("limit", limit), ("before", before)) if v is not None}
    check(client.get("/api/conversations", query_string=query), errors_logged, ("list", query))
    safe = conversation_id.replace("/", "_") or "x"
    check(client.get(f"/api/conversations/{safe}"), errors_logged, ("get", safe))
    check(client.delete(f"/api/conversations/{safe}"), errors_logged, ("delete", safe))


@FUZZ
@given(model_id=st.one_of(st.sampled_from(MODELS), st.text(max_size=30)))
def test_models_endpoint(fuzz_app, errors_logged, model_id):
    client = fuzz_app.test_client()
    check(client.get("/v1/models"), errors_logged, "list")
    safe = model_id.replace("?", "").replace("#", "") or "x"
    check(client.get(f"/v1/models/{safe}"), errors_logged, ("get", safe))


# --- Socket.IO ------------------------------------------------------------------------

socket_payload = st.one_of(chat_body, anything, st.builds(lambda t: {"messages": [{"role": "user", "content": t}],
                                                                     "model": "openai/gpt-x"},
                                                          st.sampled_from(["\ud800", "a\udfffb", "ok"])),
                           st.just({"messages": [{"role": "user", "content": "x"}], "id": ["a"]}),
                           st.just({"messages": [{"role": "user", "content": "x"}], "id": {"a": 1}}),
                           st.just({"messages": deep(200)}))


@FUZZ
@given(payload=socket_payload, extra=st.lists(anything, max_size=2))
def test_socketio_chat_always_ends_once(fuzz_app, errors_logged, payload, extra):
    client = fuzz_app.extensions["socketio"].test_client(fuzz_app)
    try:
        client.emit("chat", payload, *extra)
        names = [packet["name"] for packet in client.get_received()]
    finally:
        client.disconnect()
    assert sum(1 for n in names if n in ("complete", "error")) == 1, (payload, extra, names)
    assert names[-1] in ("complete", "error"), names
    assert not errors_logged, [r.getMessage() for r in errors_logged]


def test_socketio_packets_that_no_client_library_would_send(tmp_path):
    """Raw engine.io polling packets: a 10,000-deep payload, broken JSON,
    two arguments. The server answers each chat with one `error`."""
    import requests

    from .helpers import ServerThread

    app = create_app({"demo_delay": 0, "database_path": str(tmp_path / "raw.db")})
    with ServerThread(app) as server:
        base = f"http://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=polling"
        sid = json.loads(requests.get(base, timeout=5).text[1:])["sid"]
        url = f"{base}&sid={sid}"
        assert requests.post(url, data="40", timeout=5).status_code == 200
        requests.get(url, timeout=5)  # the namespace's connect answer
        packets = ['42["chat",' + "[" * 10000 + "]" * 10000 + "]",
                   '42["chat",{"messages": [',
                   '42["chat",{"messages":[{"role":"user","content":"x"}]},{"extra":1}]']
        errors = []
        for packet in packets:
            assert requests.post(url, data=packet, timeout=5).status_code == 200
            answer = ""
            for _ in range(20):
                answer += requests.get(url, timeout=5).text
                if '"error"' in answer:
                    break
            errors.append(answer)
        assert all(answer.count('42["error"') == 1 for answer in errors), errors
