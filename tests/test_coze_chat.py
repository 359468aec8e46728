"""Coze chat mode through the official `openai` Python SDK against a live
Switchboard whose coze provider talks to the fake Coze (real sockets)."""
from __future__ import annotations

import json

import pytest
from openai import OpenAI

from tests.fakes import coze as fake_coze
from tests.fakes.coze import CozeUpstream, make_app
from tests.fakes.live import serve

pytestmark = pytest.mark.integration


@pytest.fixture
def fake():
    with CozeUpstream() as server:
        yield server


@pytest.fixture
def live(fake, tmp_path):
    app = make_app(fake, database_path=str(tmp_path / "switchboard.db"))
    with serve(app) as base_url:
        yield OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0, timeout=20)


def chats(fake):
    return fake.requests_to("/v3/chat")


@pytest.mark.parametrize("stream", [True, False])
def test_chat_mode_answers_once_without_the_repeated_completed_text(fake, live, stream):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "What day is it?"}]
    extra = {"extra_headers": {"x-model-type": "chat"}}
    if stream:
        chunks = list(live.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,
                                                   stream_options={"include_usage": True}, **extra))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        usage = chunks[-1].usage
        model = chunks[0].model
    else:
        completion = live.chat.completions.create(model="gpt-4o-mini", messages=messages, **extra)
        text, finish, usage, model = (completion.choices[0].message.content, [completion.choices[0].finish_reason],
                                      completion.usage, completion.model)
    # Coze stored only what this chat sent: its two questions count as turn 2
    assert text == fake_coze.answer_text("What day is it?", 2)
    assert finish == ["stop"]
    assert model == "gpt-4o-mini"  # echoed back
    assert usage.prompt_tokens == 620 and usage.completion_tokens == len(text.split())
    sent = chats(fake)[-1]
    body = sent.json
    assert sent.headers["Authorization"] == f"Bearer {fake.key}"
    assert body["bot_id"] == fake_coze.PLAIN_BOT and body["stream"] is True
    assert [(m["role"], m["type"], m["content"]) for m in body["additional_messages"]] == [
        ("user", "question", "Be brief.\n\nHi"), ("assistant", "answer", "Hello!"), ("user", "question", "What day is it?")]
    assert "model" not in body and "temperature" not in body


def test_model_coze_slash_bot_id_reaches_that_bot_without_headers(fake, live):
    completion = live.chat.completions.create(model=f"coze/{fake_coze.REASONING_BOT}",
                                              messages=[{"role": "user", "content": "Which day?"}])
    assert chats(fake)[-1].json["bot_id"] == fake_coze.REASONING_BOT
    assert completion.model == f"coze/{fake_coze.REASONING_BOT}"
    message = completion.choices[0].message
    assert message.content == fake_coze.answer_text("Which day?", 1)
    assert message.model_extra["reasoning_content"] == "The user asks: Which day?. Answer plainly."


def test_reasoning_streams_as_reasoning_content(fake, live):
    chunks = list(live.chat.completions.create(
        model="any-name", messages=[{"role": "user", "content": "Why?"}], stream=True,
        extra_headers={"x-bot-id": fake_coze.REASONING_BOT}))
    reasoning = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks if c.choices)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert reasoning == "The user asks: Why?. Answer plainly."
    assert text == fake_coze.answer_text("Why?", 1)


def test_bot_override_header_wins_over_the_default_bot(fake, live):
    completion = live.chat.completions.create(model="whatever", messages=[{"role": "user", "content": "Search this"}],
                                              extra_headers={"x-bot-id": fake_coze.PLUGIN_BOT})
    assert chats(fake)[-1].json["bot_id"] == fake_coze.PLUGIN_BOT
    # function_call / tool_response / knowledge / verbose / follow_up never become text
    assert completion.choices[0].message.content == fake_coze.answer_text("Search this", 1)


def test_card_answer_without_deltas_is_sent_once(fake, live):
    completion = live.chat.completions.create(model="m", messages=[{"role": "user", "content": "card"}],
                                              extra_headers={"x-bot-id": fake_coze.CARD_BOT})
    content = completion.choices[0].message.content
    assert content.startswith(fake_coze.answer_text("card", 1))
    assert content.count('"title": "CARD"') == 1


@pytest.mark.parametrize("stream", [True, False])
def test_requires_action_is_a_tool_call_and_the_result_goes_to_submit_tool_outputs(fake, live, stream):
    headers = {"x-bot-id": fake_coze.LOCAL_PLUGIN_BOT}
    messages = [{"role": "user", "content": "Nanjing"}]
    if stream:
        chunks = list(live.chat.completions.create(model="m", messages=messages, stream=True, extra_headers=headers))
        calls = [t for c in chunks if c.choices for t in (c.choices[0].delta.tool_calls or [])]
        call_id, name = calls[0].id, calls[0].function.name
        arguments = "".join(t.function.arguments or "" for t in calls)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        completion = live.chat.completions.create(model="m", messages=messages, extra_headers=headers)
        call = completion.choices[0].message.tool_calls[0]
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
        finish = [completion.choices[0].finish_reason]
    assert finish == ["tool_calls"] and name == "local_weather"
    assert json.loads(arguments) == {"location": "Nanjing", "type": 0}
    follow = live.chat.completions.create(model="m", extra_headers=headers, messages=messages + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "sunny, 25°C"}])
    assert follow.choices[0].message.content == "The weather in Nanjing: sunny, 25°C"
    submitted = fake.requests_to("/v3/chat/submit_tool_outputs")
    assert len(submitted) == 1 and len(chats(fake)) == 1
    assert submitted[0].json["tool_outputs"][0]["output"] == "sunny, 25°C"


def test_data_url_images_are_uploaded_and_sent_as_file_ids(fake, live):
    png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    live.chat.completions.create(model="m", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": png}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}],
        extra_headers={"x-model-type": "chat"})
    assert len(fake.requests_to("/v1/files/upload")) == 1
    message = chats(fake)[-1].json["additional_messages"][-1]
    items = json.loads(message["content"])
    assert message["content_type"] == "object_string"
    assert items[0] == {"type": "text", "text": "What is in this picture?"}
    assert items[1]["file_id"] in fake.files and fake.files[items[1]["file_id"]]["bytes"].startswith(b"\x89PNG")
    assert items[2] == {"type": "image", "file_url": "https://example.com/cat.png"}


@pytest.mark.e2e
def test_node_openai_sdk_streams_a_coze_chat(fake, tmp_path):
    import pathlib
    import subprocess

    root = pathlib.Path(__file__).resolve().parent.parent
    app = make_app(fake, database_path=str(tmp_path / "s.db"))
    with serve(app) as base_url:
        result = subprocess.run(
            ["node", str(root / "tests" / "js" / "openai_stream.mjs"), f"{base_url}/v1", f"coze/{fake_coze.PLAIN_BOT}",
             "hello from node"], capture_output=True, text=True, timeout=60, cwd=root)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["text"] == fake_coze.answer_text("hello from node", 1)
    assert report["finish_reason"] == "stop" and report["chunks"] >= 3
    assert chats(fake)[-1].json["bot_id"] == fake_coze.PLAIN_BOT


def test_configuration_from_the_environment_and_a_yaml_alias(fake, tmp_path, monkeypatch):
    from proxy import create_app

    config = tmp_path / "switchboard.yaml"
    config.write_text(f"""
models:
  - id: support-bot
    provider: coze
    model: "{fake_coze.CARD_BOT}"
providers:
  coze:
    workflow_id: "{fake_coze.END_WORKFLOW}"
""")
    for name, value in {"COZE_API_KEY": fake.key, "COZE_BASE_URL": fake.url, "COZE_BOT_ID": fake_coze.PLUGIN_BOT,
                        "COZE_WORKFLOW_ID": fake_coze.OUTPUT_WORKFLOW, "DEFAULT_MODEL_TYPE": "chat",
                        "SWITCHBOARD_CONFIG": str(config)}.items():
        monkeypatch.setenv(name, value)
    app = create_app({"demo_delay": 0, "database_path": str(tmp_path / "s.db")})
    with serve(app) as base_url:
        client = OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0, timeout=20)
        listed = [m.id for m in client.models.list()]
        assert f"coze/{fake_coze.PLUGIN_BOT}" in listed and "support-bot" in listed
        client.chat.completions.create(model="support-bot", messages=[{"role": "user", "content": "a"}])
        assert chats(fake)[-1].json["bot_id"] == fake_coze.CARD_BOT  # the alias's bot
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "b"}],
                                       extra_headers={"x-model-type": "chat"})
        assert chats(fake)[-1].json["bot_id"] == fake_coze.PLUGIN_BOT  # COZE_BOT_ID
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "c"}],
                                       extra_headers={"x-model-type": "workflow"})
        # YAML wins over the environment, as for the key and base URL
        assert fake.requests_to("/v1/workflow/stream_run")[-1].json["workflow_id"] == fake_coze.END_WORKFLOW


def test_metrics_label_header_routed_chats_coze_not_the_clients_model_name(fake, tmp_path):
    app = make_app(fake, database_path=str(tmp_path / "s.db"), metrics="open")
    client = app.test_client()
    response = client.post("/v1/chat/completions", headers={"x-bot-id": fake_coze.PLAIN_BOT},
                           json={"model": "made-up-name-4711", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200 and response.get_json()["model"] == "made-up-name-4711"
    exposition = client.get("/metrics").get_data(as_text=True)
    assert "made-up-name-4711" not in exposition
    assert 'switchboard_requests_total{model="coze",provider="coze",status="ok",surface="openai_chat"}' in exposition
