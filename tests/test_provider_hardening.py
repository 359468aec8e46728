"""Provider-level defences against hostile client input and configuration, one class each.

    client -> live Switchboard (/v1/chat/completions, /api/chat) -> Gemini provider -> FakeUpstream
    - a tool / response schema that explodes when its $refs are inlined: 400, /health keeps answering
    - malformed schemas: 400 naming the field, never a 500
    - image URLs that do not parse or point at non-public addresses: 400 naming the field
    - a malformed configured base URL: start-up fails naming where it was set
    - Gemini 429: the retry delay from a Retry-After header or the body's RetryInfo reaches the client
    - a provider that forgets to redact its key: the router's retry log line and the client still never see it
"""
from __future__ import annotations

import json
import logging
import threading

import pytest
import requests

from proxy import create_app
from proxy.config import ProviderSettings
from proxy.errors import BadRequest, UpstreamError
from proxy.providers.base import ModelRoute, Provider
from proxy.providers.gemini.schema import MAX_NODES, clean_schema
from proxy.providers.http import check_fetchable

from .fakes import gemini as gemini_fake
from .fakes.live import serve
from .fakes.upstream import Reply
from .helpers import free_port
from .servers import ServerProcess

pytestmark = pytest.mark.integration

MODEL = "gemini/gemini-2.5-flash"
# issue 10: 170 bytes that grow as 2^32 when each $ref is inlined
BOMB = json.loads('{"type":"object","$defs":{"a":{"type":"object","properties":{"x":{"$ref":"#/$defs/a"},'
                  '"y":{"$ref":"#/$defs/a"}}}},"properties":{"r":{"$ref":"#/$defs/a"}}}')
# no recursion at all, yet 2^30 objects once inlined: each definition uses the next one twice
CHAIN = {"type": "object", "$ref": "#/$defs/d0", "$defs": {
    **{f"d{i}": {"type": "object", "properties": {"a": {"$ref": f"#/$defs/d{i + 1}"}, "b": {"$ref": f"#/$defs/d{i + 1}"}}}
       for i in range(30)}, "d30": {"type": "string"}}}
PARAMETERS = "tools[0].function.parameters"
RESPONSE_SCHEMA = "response_format.json_schema.schema"


def tool(parameters) -> dict:
    return {"type": "function", "function": {"name": "f", "parameters": parameters}}


def chat_body(**fields) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **fields}


@pytest.fixture(scope="module")
def live():
    """A live app whose Gemini models reach a fake that answers any request (a schema never should)."""
    from .fakes.upstream import FakeUpstream

    with FakeUpstream(default=Reply.sse(gemini_fake.transcript_json("generate_content.json", 200).chunks[0])) as fake:
        app = create_app({"demo_delay": 0, "max_retries": 0, "providers": {"gemini": ProviderSettings(
            api_key=gemini_fake.KEY, base_url=fake.url, key_variable="GEMINI_API_KEY")}})
        with serve(app) as url:
            yield url, fake


# ------------------------------------------------------------------ schemas, pure


@pytest.mark.unit
@pytest.mark.parametrize("schema, param", [
    (BOMB, f"{PARAMETERS}.properties.r.properties.x.$ref"),
    (CHAIN, PARAMETERS),
    ({"type": "object", "properties": {"x": {"type": "object", "properties": {"y": {"$ref": "#"}}}}}, None),
    ({"required": [{}]}, f"{PARAMETERS}.required"),
    ({"anyOf": ["x"]}, f"{PARAMETERS}.anyOf[0]"),
    ({"anyOf": 5}, f"{PARAMETERS}.anyOf"),
    ({"enum": 5}, f"{PARAMETERS}.enum"),
    ({"definitions": ["x"]}, f"{PARAMETERS}.definitions"),
    ({"$defs": 3}, f"{PARAMETERS}.$defs"),
    ({"properties": ["x"]}, f"{PARAMETERS}.properties"),
    ({"properties": {"p": 5}}, f"{PARAMETERS}.properties.p"),
    ({"items": "x"}, f"{PARAMETERS}.items"),
    ({"type": [{}]}, f"{PARAMETERS}.type"),
    ("not a schema", PARAMETERS),
])
def test_a_malformed_or_exploding_schema_is_a_bad_request_naming_the_field(schema, param):
    if param is None:  # "#" is not a #/... reference: dropped like any unknown keyword, not a crash
        assert clean_schema(schema, PARAMETERS)["properties"]["x"] == {"type": "object", "properties": {"y": {}}}
        return
    with pytest.raises(BadRequest) as caught:
        clean_schema(schema, PARAMETERS)
    assert caught.value.param == param


@pytest.mark.unit
def test_deep_nesting_is_refused_and_wide_schemas_are_capped():
    deep = {"type": "string"}
    for _ in range(40):
        deep = {"type": "array", "items": deep}
    with pytest.raises(BadRequest, match="deeper"):
        clean_schema(deep, PARAMETERS)
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(MAX_NODES + 1)}}
    with pytest.raises(BadRequest, match=str(MAX_NODES)):
        clean_schema(wide, PARAMETERS)
    fine = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(MAX_NODES - 1)}}
    assert len(clean_schema(fine, PARAMETERS)["properties"]) == MAX_NODES - 1


@pytest.mark.unit
def test_a_shared_definition_used_many_times_is_still_inlined():
    schema = {"$defs": {"P": {"type": "object", "properties": {"lat": {"type": "number"}}}}, "type": "object",
              "properties": {name: {"$ref": "#/$defs/P"} for name in ("a", "b", "c")}}
    cleaned = clean_schema(schema, PARAMETERS)
    assert cleaned["properties"]["c"] == {"type": "object", "properties": {"lat": {"type": "number"}}}


# ------------------------------------------------------------------ schemas, live


@pytest.mark.parametrize("fields, param", [
    ({"tools": [tool(BOMB)]}, f"{PARAMETERS}.properties.r.properties.x.$ref"),
    ({"tools": [tool(CHAIN)]}, PARAMETERS),
    ({"tools": [tool({"type": "object", "properties": {"a": {"anyOf": ["x"]}}})]}, f"{PARAMETERS}.properties.a.anyOf[0]"),
    ({"tools": [tool({"type": "object", "required": [{}], "properties": {"a": {}}})]}, f"{PARAMETERS}.required"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": BOMB}}},
     f"{RESPONSE_SCHEMA}.properties.r.properties.x.$ref"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"enum": 5}}}},
     f"{RESPONSE_SCHEMA}.enum"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"definitions": ["x"]}}}},
     f"{RESPONSE_SCHEMA}.definitions"),
    ({"response_format": {"type": "json_schema", "json_schema": "x"}}, "response_format.json_schema"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_bad_schemas_are_answered_400_naming_the_field_and_nothing_goes_upstream(live, fields, param, stream):
    url, fake = live
    before = len(fake.received)
    response = requests.post(f"{url}/v1/chat/completions", json=chat_body(stream=stream, **fields), timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert len(fake.received) == before


def test_the_schema_bomb_is_a_400_while_health_keeps_answering(live):
    """The bomb is sent over and over from another thread while /health is asked
    in this one: every /health answers, and so does every bomb, with a 400.
    (Before the fix the first bomb never finished and took the worker down.)"""
    url, _ = live
    answers: list[int] = []
    bodies = [chat_body(tools=[tool(BOMB)]), chat_body(tools=[tool(CHAIN)]),
              chat_body(response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": BOMB}})]

    def attack() -> None:
        with requests.Session() as session:
            for _ in range(10):
                for body in bodies:
                    answers.append(session.post(f"{url}/v1/chat/completions", json=body, timeout=60).status_code)

    attacker = threading.Thread(target=attack)
    attacker.start()
    health = []
    with requests.Session() as session:
        while attacker.is_alive():
            health.append(session.get(f"{url}/health", timeout=60).status_code)
    attacker.join()
    assert answers == [400] * 30
    assert health and set(health) == {200}


@pytest.mark.e2e
def test_the_schema_bomb_under_gunicorn_and_gevent(tmp_path):
    """Where it hurt: one gevent worker. /health answers during the attack, the bomb gets a 400."""
    port = free_port()
    env = {"SWITCHBOARD_DATABASE": str(tmp_path / "db.sqlite"), "GEMINI_API_KEY": "test-key-not-used",
           "GEMINI_BASE_URL": "http://127.0.0.1:9", "PYTHONUNBUFFERED": "1", "WEB_CONCURRENCY": "1"}
    from .servers import BIN

    server = ServerProcess("gunicorn", [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                                        "--workers", "1", "wsgi:app"], port, tmp_path / "gunicorn.log", env)
    try:
        server.wait_healthy()
        answers: list[int] = []

        def attack() -> None:
            with requests.Session() as session:
                for _ in range(20):
                    answers.append(session.post(f"{server.url}/v1/chat/completions", timeout=60,
                                                json=chat_body(tools=[tool(BOMB)])).status_code)

        attacker = threading.Thread(target=attack)
        attacker.start()
        health = []
        while attacker.is_alive():
            health.append(requests.get(f"{server.url}/health", timeout=60).status_code)
        attacker.join()
        assert answers == [400] * 20
        assert health and set(health) == {200}
        assert "Traceback" not in server.log()
    finally:
        server.stop()


# ------------------------------------------------------------------ image URLs


@pytest.mark.parametrize("url", ["http://%zz/", "http://１２７.０.０.１/", "http://a b/", "http://x:99999/",
                                 "http://[::1/", "http://224.0.0.1/i.png", "http://239.255.255.250/i.png",
                                 "http://[ff02::1]/i.png", "http://0.0.0.0/i.png", "http://[::]/i.png",
                                 "http://240.0.0.1/i.png", "http://100.64.0.1/i.png", "http://[::ffff:127.0.0.1]/i.png",
                                 "http://127.0.0.1/i.png", "http://169.254.169.254/latest"])
def test_image_urls_that_do_not_parse_or_are_not_public_are_400s(live, url):
    with pytest.raises(BadRequest) as caught:
        check_fetchable(url, allow_private=False)
    assert caught.value.param == "messages"
    base, fake = live
    before = len(fake.received)
    content = [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": url}}]
    response = requests.post(f"{base}/v1/chat/completions", timeout=30,
                             json={"model": MODEL, "messages": [{"role": "user", "content": content}]})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "messages"
    assert len(fake.received) == before


@pytest.mark.unit
def test_a_public_address_passes_the_guard():
    check_fetchable("http://8.8.8.8/i.png", allow_private=False)


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize("config, named", [
    ({"providers": {"openai": ProviderSettings(api_key="k", base_url="localhost:11434/v1")}}, "OPENAI_BASE_URL"),
    ({"providers": {"anthropic": ProviderSettings(api_key="k", base_url="http://a b/")}}, "ANTHROPIC_BASE_URL"),
    ({"providers": {"gemini": ProviderSettings(api_key="k", base_url="http://%zz/")}}, "GEMINI_BASE_URL"),
    ({"models": [{"id": "local", "provider": "openai", "model": "m", "base_url": "http://h:99999/v1"}]},
     "models: entry 'local'"),
])
def test_a_malformed_base_url_stops_start_up_naming_where_it_was_set(config, named):
    with pytest.raises(ValueError) as caught:
        create_app({"demo_delay": 0, **config})
    assert named in str(caught.value) and "base URL" in str(caught.value)


def test_a_malformed_base_url_from_the_environment_stops_start_up(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "ftp://example.com/v1")
    with pytest.raises(ValueError, match="OPENAI_BASE_URL"):
        create_app({"demo_delay": 0})


# ------------------------------------------------------------------ Gemini 429 retry delay


def rate_limited(header: str | None, body_delay: str | None) -> Reply:
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": body_delay}] if body_delay else None
    reply = gemini_fake.error_reply(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted", details)
    if header:
        reply.headers["Retry-After"] = header
    return reply


@pytest.mark.parametrize("header, body_delay, expected", [("45", None, "45"), (None, "52s", "52"), ("45", "52s", "52")])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
def test_a_gemini_429_keeps_its_retry_delay_for_the_client(live, header, body_delay, expected, path):
    url, fake = live
    fake.reply(rate_limited(header, body_delay))  # delays over 30 s: not waited for, handed to the client
    body = chat_body(stream=True) if path.startswith("/v1") else chat_body()
    response = requests.post(url + path, json=body, timeout=30)
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == expected


# ------------------------------------------------------------------ the router's own redaction


KEY = "sk-forgetful-0123456789"


class Forgetful(Provider):
    """A provider that puts its key in an error and does not redact it."""

    name = "forgetful"
    calls = 0

    def open(self, request, route):
        Forgetful.calls += 1
        raise UpstreamError(f"upstream said: bad key {self.credentials.api_key}", retryable=True)


def test_the_retry_log_line_and_the_client_never_see_a_key_a_provider_forgot_to_redact(caplog):
    caplog.set_level(logging.DEBUG)
    app = create_app({"demo_delay": 0, "max_retries": 1, "retry_base_delay": 0.01})
    router = app.extensions["switchboard"].router
    router.providers["forgetful"] = Forgetful(ProviderSettings(api_key=KEY), router.settings)
    router.routes["forgetful-m"] = ModelRoute("forgetful-m", "forgetful", "m", "tests")
    Forgetful.calls = 0
    response = app.test_client().post("/v1/chat/completions", json={"model": "forgetful-m", "messages": [
        {"role": "user", "content": "hi"}]})
    assert Forgetful.calls == 2 and response.status_code == 502
    assert KEY not in response.get_data(as_text=True)
    assert "retry 1" in caplog.text and KEY not in caplog.text


# ------------------------------------------------------------------ DNS rebinding


PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5e1a1a00000000049454e44ae426082")


def resolver(monkeypatch, answers):
    """`images.test` resolves to each of `answers` in turn (the last one stays); other names as usual."""
    import socket

    real = socket.getaddrinfo
    calls = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "images.test":
            return real(host, port, *args, **kwargs)
        address = answers[min(len(calls), len(answers) - 1)]
        calls.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


def image_request(port: int):
    from proxy.canonical import ChatRequest, ImagePart, Message, TextPart

    return ChatRequest(MODEL, [Message("user", (TextPart("Describe"), ImagePart(f"http://images.test:{port}/cat.png")))])


def test_a_name_that_rebinds_to_loopback_after_the_check_is_not_fetched(monkeypatch):
    from .fakes.upstream import FakeUpstream

    with FakeUpstream(default=Reply([PNG], content_type="image/png")) as images, FakeUpstream() as upstream:
        calls = resolver(monkeypatch, ["93.184.216.34", "127.0.0.1"])  # public for the check, then loopback
        app = create_app({"demo_delay": 0, "max_retries": 0, "providers": {"gemini": ProviderSettings(
            api_key=gemini_fake.KEY, base_url=upstream.url)}})
        with pytest.raises(BadRequest, match="could not download"):
            app.extensions["switchboard"].router.open(image_request(images.server.server_port))
        assert len(calls) == 2  # checked, then resolved again to connect, and refused there
        assert images.received == [] and upstream.received == []


def test_the_guarded_connection_fetches_from_the_address_it_checked(monkeypatch):
    """The positive path of the same guard: the name is the Host header, the checked address is connected to."""
    from proxy.providers import http

    from .fakes.upstream import FakeUpstream

    monkeypatch.setattr(http, "_refused", lambda address: False)  # let this test's loopback count as public
    with FakeUpstream(default=Reply([PNG], content_type="image/png")) as images, FakeUpstream() as upstream:
        upstream.reply(Reply.sse(b'data: {"candidates": [{"content": {"parts": [{"text": "a cat"}]}, '
                                 b'"finishReason": "STOP", "index": 0}]}\n\n'))
        resolver(monkeypatch, ["127.0.0.1"])
        app = create_app({"demo_delay": 0, "max_retries": 0, "providers": {"gemini": ProviderSettings(
            api_key=gemini_fake.KEY, base_url=upstream.url)}})
        from proxy.canonical import accumulate

        assert accumulate(app.extensions["switchboard"].router.open(image_request(images.server.server_port))).text == "a cat"
        assert images.received[0].headers["Host"] == f"images.test:{images.server.server_port}"
        assert upstream.received[0].json["contents"][0]["parts"][1]["inlineData"]["mimeType"] == "image/png"
