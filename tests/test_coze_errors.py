"""Coze errors as the OpenAI SDK sees them: HTTP-200 `{code, msg}` bodies
mapped to real statuses (logid logged, key never shown), missing bot or
workflow ids, unknown modes, and in-band errors after the first byte."""
from __future__ import annotations

import logging

import openai
import pytest
import requests
from openai import OpenAI

from tests.fakes import coze as fake_coze
from tests.fakes.coze import CozeUpstream, make_app
from tests.fakes.live import serve

pytestmark = pytest.mark.integration


@pytest.fixture
def fake():
    with CozeUpstream() as server:
        yield server


def serve_app(fake, tmp_path, **kwargs):
    return serve(make_app(fake, database_path=str(tmp_path / "s.db"), **kwargs))


def sdk(url):
    return OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0, timeout=20)


def post(url, headers, messages=None, **body):
    return requests.post(f"{url}/v1/chat/completions", headers=headers, timeout=10, json={
        "model": "gpt-4o", "messages": messages or [{"role": "user", "content": "hi"}], **body})


def test_wrong_token_is_a_401_with_the_logid_logged_and_no_key(fake, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with serve_app(fake, tmp_path) as url:
        fake.key = "pat_the_real_one_0123456789"  # the proxy still sends fake_coze.KEY
        with pytest.raises(openai.AuthenticationError) as caught:
            sdk(url).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                             extra_headers={"x-model-type": "chat"})
    body = caught.value.body
    assert body["code"] == "invalid_api_key" and "4101" in body["message"]
    assert "FAKE" in body["message"]  # Coze's logid, for support
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "logid" in logged and "4101" in logged
    for text in (logged, str(body)):
        assert fake_coze.KEY not in text


@pytest.mark.parametrize("headers, status, code", [
    ({"x-bot-id": fake_coze.RATE_LIMITED_BOT}, 429, "rate_limit_exceeded"),
    ({"x-bot-id": "1234"}, 400, "coze_resource_unavailable"),
    ({"x-model-type": "workflow", "x-workflow-id": fake_coze.UNPUBLISHED_WORKFLOW}, 400, "coze_resource_unavailable"),
    ({"x-model-type": "agent"}, 400, "invalid_model_type"),
    ({"x-bot-id": "not-a-number"}, 400, "invalid_request"),
])
def test_coze_codes_map_to_statuses(fake, tmp_path, headers, status, code):
    with serve_app(fake, tmp_path) as url:
        response = post(url, headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if status == 429:
        assert error["type"] == "rate_limit_error"


def test_missing_bot_and_workflow_ids(fake, tmp_path):
    with serve_app(fake, tmp_path, bot_id=None, workflow_id=None) as url:
        bot = post(url, {"x-model-type": "chat"})
        workflow = post(url, {"x-model-type": "workflow"})
    assert bot.status_code == 400 and bot.json()["error"]["code"] == "missing_bot_id"
    assert workflow.status_code == 400 and workflow.json()["error"]["code"] == "missing_workflow_id"
    assert bot.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("bot", [fake_coze.FAILING_BOT, fake_coze.ERROR_BOT, fake_coze.CUT_BOT])
def test_failures_after_the_first_byte_are_in_band_errors(fake, tmp_path, bot):
    with serve_app(fake, tmp_path) as url:
        stream = sdk(url).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi there"}],
                                                  stream=True, extra_headers={"x-bot-id": bot})
        received = []
        with pytest.raises(openai.APIError):
            for chunk in stream:
                received.append(chunk)
    text = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
    assert text.startswith("You asked:")  # some text came first, then the error
    assert not any(c.choices and c.choices[0].finish_reason for c in received)


def test_a_connection_cut_mid_stream_is_an_in_band_error(fake, tmp_path):
    fake.reply(fake_coze.sse("chat_text.sse", cut_after=4))  # after two deltas
    with serve_app(fake, tmp_path) as url:
        stream = sdk(url).chat.completions.create(model="m", messages=[{"role": "user", "content": "day?"}],
                                                  stream=True, extra_headers={"x-model-type": "chat"})
        received = []
        with pytest.raises(openai.APIError):
            for chunk in stream:
                received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "20"


def test_failure_without_streaming_is_an_error_status(fake, tmp_path):
    with serve_app(fake, tmp_path) as url:
        response = post(url, {"x-bot-id": fake_coze.FAILING_BOT})
    assert response.status_code == 502
    assert "event interval error" in response.json()["error"]["message"]


def test_recorded_transcript_replays_through_the_sdk(fake, tmp_path):
    fake.reply(fake_coze.sse("chat_text.sse"))
    with serve_app(fake, tmp_path) as url:
        completion = sdk(url).chat.completions.create(model="m", messages=[{"role": "user", "content": "day?"}],
                                                      extra_headers={"x-model-type": "chat"})
    assert completion.choices[0].message.content == "2024 年 10 月 1 日是星期三。"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (614, 19)


def test_coze_not_configured_names_the_variable(tmp_path):
    from proxy import create_app

    app = create_app({"demo_delay": 0, "database_path": str(tmp_path / "s.db")})
    response = app.test_client().post("/v1/chat/completions", headers={"x-bot-id": "123"},
                                      json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 503 and "COZE_API_KEY" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("name", ["chat_error.sse", "chat_cut.sse"])
def test_a_chat_that_failed_after_coze_accepted_it_is_not_run_again(fake, tmp_path, name):
    # created, then an error event (or the end) before any content: the router
    # would retry a retryable failure, but Coze already ran and saved that chat
    fake.reply(fake_coze.sse(name))
    with serve_app(fake, tmp_path, max_retries=2, retry_base_delay=0.01) as url:
        response = post(url, {"x-model-type": "chat"})
    assert response.status_code == 502
    assert len(fake.requests_to("/v3/chat")) == 1


def test_a_rate_limited_chat_is_retried_before_it_starts(fake, tmp_path):
    fake.reply(lambda received: fake.error(4013, "Request rate exceed limit."))
    with serve_app(fake, tmp_path, max_retries=2, retry_base_delay=0.01) as url:
        response = post(url, {"x-model-type": "chat"})
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == fake_coze.answer_text("hi", 1)
    assert len(fake.requests_to("/v3/chat")) == 2


def test_the_fake_speaks_cozes_framing_and_envelopes(fake):
    """The fake itself, byte for byte: what the provider tests stand on."""
    body = {"bot_id": fake_coze.PLAIN_BOT, "user_id": "u", "stream": True,
            "additional_messages": [{"role": "user", "content": "hi", "content_type": "text"}]}
    auth = {"Authorization": f"Bearer {fake.key}"}
    raw = requests.post(f"{fake.url}/v3/chat", json=body, headers=auth, timeout=5)
    assert raw.headers["Content-Type"].startswith("text/event-stream") and raw.headers["x-tt-logid"]
    assert raw.content.startswith(b"event:conversation.chat.created\ndata:{")
    assert raw.content.endswith(b'event:done\ndata:"[DONE]"\n\n')
    assert b"event:conversation.message.completed\ndata:" in raw.content and b"data: " not in raw.content
    missing = requests.post(f"{fake.url}/v3/chat", json=body, timeout=5)
    assert missing.status_code == 200 and missing.headers["Content-Type"] == "application/json"
    assert missing.json()["code"] == 4100 and missing.json()["detail"]["logid"]
    run = requests.post(f"{fake.url}/v1/workflow/stream_run", headers=auth, timeout=5,
                        json={"workflow_id": fake_coze.END_WORKFLOW, "parameters": {"input": "x"}})
    assert run.content.startswith(b"id: 0\nevent: PING\ndata: {}\n\nid: 1\nevent: Message\ndata: ")
    assert b'\\"output\\"' in run.content  # JSON inside the JSON


def test_a_key_limited_to_other_models_cannot_reach_coze_by_header(fake, tmp_path):
    from proxy.keys import digest

    team, bots = "sk-team-only-openai-0001", "sk-team-one-bot-0002"
    keys = [{"name": "team", "key": "sha256:" + digest(team), "models": ["openai/*"]},
            {"name": "bots", "key": "sha256:" + digest(bots), "models": [f"coze/{fake_coze.PLAIN_BOT}"]}]
    client = make_app(fake, database_path=str(tmp_path / "s.db"), keys=keys).test_client()

    def ask(token, **headers):
        return client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {token}", **headers},
                           json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]})

    refused = ask(team, **{"x-bot-id": fake_coze.PLAIN_BOT})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "model_not_allowed"
    assert f"coze/{fake_coze.PLAIN_BOT}" in refused.get_json()["error"]["message"]
    assert ask(team, **{"x-model-type": "workflow"}).status_code == 403
    assert fake.received == []
    assert ask(bots, **{"x-model-type": "chat"}).status_code == 200  # the default bot is the allowed one
    assert ask(bots, **{"x-bot-id": fake_coze.REASONING_BOT}).status_code == 403
    assert len(fake.requests_to("/v3/chat")) == 1
