"""The OpenAI provider through the Workbench surfaces: /api/chat (SSE) and the Socket.IO fallback."""
from __future__ import annotations

import pytest

from proxy import create_app
from proxy.config import ProviderSettings
from tests.fakes.openai import KEY, chat, text_stream
from tests.fakes.upstream import transcript

pytestmark = pytest.mark.integration

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


@pytest.fixture
def app(fake_upstream):
    return create_app({"demo_delay": 0, "max_retries": 0, "providers": {
        "openai": ProviderSettings(api_key=KEY, base_url=fake_upstream.url + "/v1", key_variable="OPENAI_API_KEY")}})


def test_workbench_api_chat_streams_text(app, fake_upstream):
    fake_upstream.reply(chat(transcript("openai", "text.sse")))
    response = app.test_client().post("/api/chat", json={
        "model": "openai/gpt-4o", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": PNG}}]}]})
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.get_data(as_text=True) == (
        'data: {"content":"Hello"}\n\ndata: {"content":" there!"}\n\ndata: [DONE]\n\n')
    sent = fake_upstream.received[0].json["messages"][0]["content"]
    assert sent[1] == {"type": "image_url", "image_url": {"url": PNG}}


def test_workbench_api_chat_streams_reasoning_as_thinking(app, fake_upstream):
    fake_upstream.reply(chat(transcript("openai", "deepseek_reasoning.sse")))
    response = app.test_client().post("/api/chat", json={
        "model": "openai/deepseek-reasoner", "messages": [{"role": "user", "content": "hello"}]})
    assert response.get_data(as_text=True) == (
        'event: thinking\ndata: {"content":"The user says hello"}\n\n'
        'data: {"content":"Hello!"}\n\n'
        "data: [DONE]\n\n")


def test_workbench_api_chat_in_band_error(app, fake_upstream):
    fake_upstream.reply(chat(transcript("openai", "midstream_error.sse")))
    body = app.test_client().post("/api/chat", json={
        "model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).get_data(as_text=True)
    assert body.startswith('data: {"content":"Hello"}\n\n')
    assert "event: error" in body and "The server had an error" in body and body.endswith("data: [DONE]\n\n")


def socket_client(app):
    return app.extensions["socketio"].test_client(app)


def test_socketio_streams_text_and_thinking(app, fake_upstream):
    fake_upstream.reply(chat(transcript("openai", "ollama_thinking.sse")), chat(text_stream("Bon", "jour")))
    client = socket_client(app)
    client.emit("chat", {"model": "openai/qwen3:8b", "messages": [{"role": "user", "content": "hello"}]})
    received = [(m["name"], m["args"]) for m in client.get_received()]
    assert received == [
        ("thinking", [{"content": "The user greets"}]),
        ("chunk", [{"content": "Hello!"}]),
        ("complete", []),
    ]
    client.emit("chat", {"id": "c2", "model": "openai/gpt-4o", "messages": [{"role": "user", "content": "bonjour"}]})
    received = [(m["name"], m["args"]) for m in client.get_received()]
    assert received == [
        ("chunk", [{"content": "Bon", "id": "c2"}]),
        ("chunk", [{"content": "jour", "id": "c2"}]),
        ("complete", [{"id": "c2"}]),
    ]
    client.disconnect()


def test_socketio_pre_stream_error(app, fake_upstream):
    fake_upstream.reply(chat(transcript("openai", "text.sse"), key="sk-another-key-000"))
    client = socket_client(app)
    client.emit("chat", {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    (message,) = client.get_received()
    assert message["name"] == "error" and "Incorrect API key" in message["args"][0]["message"]
    client.disconnect()
