"""The chat runner (proxy/chat.py): what a surface gets without code of its own.

A throw-away surface — a codec of a few lines and a blueprint that only calls
the runner — is registered into an app; it must get auth in its own error
shape, the request id, the /health stream count, recording into a named
conversation, and disconnect -> cancel, exactly like the built-in surfaces.
"""
from __future__ import annotations

import json
import time

import pytest
from flask import Blueprint

from proxy import chat as chat_runner
from proxy import create_app
from proxy.canonical import ChatRequest, Error, Message, ResponseMetadata, TextPart
from proxy.chat import Surface
from proxy.errors import ProxyError, UpstreamError
from proxy.surfaces.common import error_response

from .helpers import ServerThread, finished, http_request, read_until, register, text_then, wait_until

pytestmark = pytest.mark.integration

KEY = "sk-runner-test-key-123456"


def decode(body, headers, context):
    """A minimal codec: {"say": text, "model"?} -> one user message."""
    if not isinstance(body, dict) or not isinstance(body.get("say"), str):
        from proxy.errors import BadRequest

        raise BadRequest("'say' must be a string", param="say")
    return ChatRequest(model=body.get("model") or context.default_model,
                       messages=[Message("user", (TextPart(body["say"]),))],
                       stream=body.get("stream", True) is not False)


def error_body(error: ProxyError) -> dict:
    return {"oops": error.message, "why": error.code}


def encode(events):
    for event in events:
        if event.type == "text-delta":
            yield f"data: {event.delta}\n\n".encode()
        elif event.type == "error":
            yield f"event: oops\ndata: {error.code if (error := event.error) else ''}\n\n".encode()
    yield b"data: END\n\n"


TOY = Surface("toy", decode, error_body, prefixes=("/toy/",))


def toy_app(tmp_path, **settings):
    app = create_app({"demo_delay": 0, "database_path": str(tmp_path / "toy.db"), **settings})
    blueprint = Blueprint("toy", __name__)

    @blueprint.errorhandler(ProxyError)
    def handle(error):
        return error_response(error, error_body)

    @blueprint.post("/toy/chat")
    def toy_chat():
        chat = chat_runner.start(TOY)
        if chat.request.stream:
            return chat.stream_response(encode)
        return {"text": chat.result().text}

    chat_runner.register(app, blueprint, TOY)  # the one registration line
    return app


def demo(app):
    return app.extensions["switchboard"].router.providers["demo"]


def test_auth_in_the_surfaces_own_shape(tmp_path):
    client = toy_app(tmp_path, api_keys=[KEY]).test_client()
    missing = client.post("/toy/chat", json={"say": "hi"})
    assert missing.status_code == 401
    assert set(missing.get_json()) == {"oops", "why"} and missing.get_json()["why"] == "invalid_api_key"
    wrong = client.post("/toy/chat", json={"say": "hi"}, headers={"Authorization": "Bearer sk-wrong"})
    assert wrong.status_code == 401 and "invalid API key" in wrong.get_json()["oops"]
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"x-api-key": KEY}):
        answer = client.post("/toy/chat", json={"say": "hi"}, headers=headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert b"I received your message: " in answer.get_data()


def test_bad_input_and_app_level_errors_in_the_surfaces_shape(tmp_path):
    client = toy_app(tmp_path).test_client()
    bad = client.post("/toy/chat", json={"say": 5})
    assert bad.status_code == 400 and bad.get_json() == {"oops": "'say' must be a string", "why": "invalid_request"}
    plain = client.post("/toy/chat", data=b'{"say": "x"}', content_type="text/plain")
    assert plain.status_code == 415 and plain.get_json()["why"] == "unsupported_media_type"
    # no such route under the surface's prefix: 404 in its shape too
    missing = client.get("/toy/nothing-here")
    assert missing.status_code == 404 and set(missing.get_json()) == {"oops", "why"}
    wrong_method = client.get("/toy/chat")
    assert wrong_method.status_code == 405 and set(wrong_method.get_json()) == {"oops", "why"}


def test_request_id_is_kept_when_sane_and_made_otherwise(tmp_path):
    client = toy_app(tmp_path).test_client()
    kept = client.post("/toy/chat", json={"say": "hi"}, headers={"X-Request-Id": "trace-42.a:b"})
    assert kept.headers["X-Request-Id"] == "trace-42.a:b"
    for insane in ("has space", "x" * 200, "50%"):
        made = client.post("/toy/chat", json={"say": "hi"}, headers={"X-Request-Id": insane})
        assert made.headers["X-Request-Id"].startswith("req_") and made.headers["X-Request-Id"] != insane
    assert client.get("/health").headers["X-Request-Id"].startswith("req_")


def test_health_counts_the_new_surfaces_streams(tmp_path):
    app = toy_app(tmp_path, demo_delay=1.0)
    client = app.test_client()
    health = lambda: client.get("/health?format=json").get_json()["open_streams"]  # noqa: E731
    assert health() == 0
    response = client.post("/toy/chat", json={"say": "x", "model": "reflection-and-thinking"}, buffered=False)
    next(iter(response.response))
    assert health() == 1
    response.close()
    assert wait_until(lambda: health() == 0, 1.0)


def test_recording_when_a_conversation_is_named(tmp_path):
    client = toy_app(tmp_path).test_client()
    conversation = client.post("/api/conversations", json={"title": "toy"}).get_json()
    answer = client.post("/toy/chat", json={"say": "remember me", "conversation_id": conversation["id"]})
    assert answer.status_code == 200 and answer.get_data().endswith(b"data: END\n\n")
    stored = client.get(f"/api/conversations/{conversation['id']}").get_json()["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[0]["content"] == "remember me"
    assert "I received your message: remember me" in stored[1]["content"]
    unknown = client.post("/toy/chat", json={"say": "x", "conversation_id": "conv_nope"})
    assert unknown.status_code == 404 and unknown.get_json()["why"] == "conversation_not_found"


def test_non_streaming_through_the_runner(tmp_path):
    client = toy_app(tmp_path).test_client()
    answer = client.post("/toy/chat", json={"say": "whole", "stream": False})
    assert answer.get_json()["text"].endswith("whole")


def test_disconnect_cancels_the_upstream_over_a_real_socket(tmp_path):
    app = toy_app(tmp_path, demo_delay=1.0)
    with ServerThread(app) as server:
        body = json.dumps({"say": "x", "model": "reflection-and-thinking"}).encode()
        sock = http_request(server.port, "POST", "/toy/chat", body, {"Content-Type": "application/json"})
        read_until(sock, b"data: ", 5)
        stream = demo(app).recent[-1]
        assert stream.finished_at is None
        sock.close()
        closed = time.monotonic()
        assert wait_until(lambda: stream.finished_at is not None, 1.5)
        assert stream.cancelled.is_set() and stream.finished_at - closed < 1.0


def fails_before_content(stream):
    yield ResponseMetadata("r1", "m", 0)
    yield Error(UpstreamError("the upstream is down (scripted)", status=503, retryable=False))


@pytest.mark.parametrize("path, shape", [("/api/chat", "error"), ("/v1/chat/completions", "error"),
                                         ("/toy/chat", "oops")])
def test_a_failure_before_any_content_gets_its_real_status(tmp_path, path, shape):
    """Nothing was sent yet when the upstream failed: the client gets the
    error's status in the surface's shape, not a 200 with an in-band error."""
    app = toy_app(tmp_path)
    register(app, "fails-early", fails_before_content)
    body = {"model": "fails-early", "messages": [{"role": "user", "content": "x"}], "say": "x", "stream": True}
    response = app.test_client().post(path, json=body)
    assert response.status_code == 503, response.get_data(as_text=True)
    assert shape in response.get_json()


def test_a_failure_after_content_stays_in_band(tmp_path):
    client = toy_app(tmp_path).test_client()
    response = client.post("/toy/chat", json={"say": "x", "model": "error-demo"})
    assert response.status_code == 200
    assert response.get_data().endswith(b"event: oops\ndata: upstream_error\n\ndata: END\n\n")


def test_log_lines_of_the_stream_carry_the_request_id(tmp_path, caplog):
    """Retries run in the stream's pump thread, outside the request context."""
    app = toy_app(tmp_path, max_retries=1, retry_base_delay=0.0)
    attempts = []

    def flaky(stream):
        attempts.append(1)
        if len(attempts) == 1:
            yield Error(UpstreamError("overloaded (scripted)", status=503))
            return
        yield from text_then(finished)(stream)

    register(app, "flaky", flaky)
    caplog.set_level("INFO")
    response = app.test_client().post("/toy/chat", json={"say": "x", "model": "flaky"},
                                      headers={"X-Request-Id": "trace-retry-7"})
    assert b"partial" in response.get_data()
    retry_lines = [r for r in caplog.records if "retry" in r.getMessage()]
    assert retry_lines and all(r.getMessage().startswith("[trace-retry-7] ") for r in retry_lines)
