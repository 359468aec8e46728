"""/v1/chat/completions over HTTP details the SDK tests do not reach: the
per-deployment thinking setting, CORS preflight with API keys, the trailing
slash, a non-streaming failure, and a departed client stopping its upstream."""
from __future__ import annotations

import time

import openai
import pytest
from openai import OpenAI

from proxy import create_app

from .fakes.live import serve

pytestmark = pytest.mark.integration


def chat(client, **body):
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return client.post("/v1/chat/completions", json=body)


def test_thinking_mode_per_deployment():
    client = create_app({"demo_delay": 0, "extra": {"openai_chat": {"thinking": "workbench"}}}).test_client()
    body = chat(client, model="reflection-and-thinking", stream=True).get_data(as_text=True)
    assert '"delta":{"content":"Analyzing the request...\\n","type":"thinking"}' in body
    assert "reasoning_content" not in body
    # a request can still ask for the standard field
    response = client.post("/v1/chat/completions", headers={"X-Switchboard-Thinking": "reasoning_content"},
                           json={"model": "reflection-and-thinking", "stream": True,
                                 "messages": [{"role": "user", "content": "hi"}]})
    assert '"reasoning_content":"Analyzing the request...\\n"' in response.get_data(as_text=True)


def test_a_mistyped_thinking_setting_fails_at_start_up():
    with pytest.raises(ValueError, match="openai_chat.thinking"):
        create_app({"extra": {"openai_chat": {"thinking": "loud"}}})


def test_an_unknown_thinking_header_is_a_bad_request(client):
    response = client.post("/v1/chat/completions", headers={"X-Switchboard-Thinking": "loud"},
                           json={"model": "mock", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400
    assert "X-Switchboard-Thinking" in response.get_json()["error"]["message"]


def test_cors_preflight_needs_no_api_key():
    client = create_app({"api_keys": ["sk-right"]}).test_client()
    response = client.options("/v1/chat/completions", headers={
        "Origin": "https://ui.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://ui.example")
    assert chat(client, model="mock").status_code == 401
    assert chat(client, model="mock").headers["Access-Control-Allow-Origin"] == "*"


def test_trailing_slash_is_accepted(client):
    response = client.post("/v1/chat/completions/", json={"model": "mock", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 200
    assert response.get_json()["object"] == "chat.completion"


def test_invalid_json_is_a_bad_request(client):
    response = client.post("/v1/chat/completions", data=b"{not json", content_type="application/json")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["type"] == "invalid_request_error" and "not valid JSON" in error["message"]


def test_non_streaming_failure_is_an_http_error_not_a_partial_answer(client):
    response = chat(client, model="error-demo")
    assert response.status_code == 502
    assert response.get_json()["error"]["type"] == "api_error"


def test_a_client_that_leaves_stops_the_upstream():
    # short heartbeats: the server notices the closed socket on its next write
    app = create_app({"demo_delay": 1.0, "heartbeat_seconds": 0.1})
    demo = app.extensions["switchboard"].router.providers["demo"]
    with serve(app) as base_url:
        client = OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0, timeout=20)
        stream = client.chat.completions.create(model="reflection-and-thinking", stream=True,
                                                messages=[{"role": "user", "content": "hi"}])
        next(iter(stream))  # the role chunk arrived; the model now thinks for about a second
        stream.close()
        upstream = demo.recent[-1]
        deadline = time.monotonic() + 5
        while upstream.finished_at is None and time.monotonic() < deadline:
            time.sleep(0.02)
    assert upstream.cancelled.is_set()
    assert upstream.finished_at is not None
    assert upstream.finished_at - upstream.cancelled_at < 1.0


def test_sdk_raises_internal_server_error_for_a_non_streaming_failure():
    with serve(create_app({"demo_delay": 0})) as base_url:
        client = OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0, timeout=20)
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="error-demo", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502
