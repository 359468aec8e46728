"""The OpenAI provider over a fake upstream that speaks Chat Completions on a real socket."""
from __future__ import annotations

import json
import time

import pytest
import requests

from proxy import create_app
from proxy.canonical import (
    ChatRequest,
    ImagePart,
    Message,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    accumulate,
)
from proxy.config import ProviderSettings
from proxy.errors import AuthenticationFailed, ModelNotFound, RateLimited, UpstreamError, UpstreamTimeout
from tests.fakes.live import serve
from tests.fakes.openai import KEY, chat, completion, error, text_stream
from tests.fakes.upstream import Reply, transcript

pytestmark = pytest.mark.integration

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def make_app(fake, **settings):
    config = {
        "demo_delay": 0,
        "max_retries": 0,
        "retry_base_delay": 0.01,
        "idle_timeout": 2.0,
        "providers": {"openai": ProviderSettings(api_key=KEY, base_url=fake.url + "/v1", key_variable="OPENAI_API_KEY")},
    }
    config.update(settings)
    return create_app(config)


def router(app):
    return app.extensions["switchboard"].router


def ask(text="hi", model="openai/gpt-4o-mini", **kwargs) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", (TextPart(text),))], **kwargs)


def run(app, request):
    return accumulate(router(app).open(request))


def test_plain_text_stream_and_request_shape(fake_upstream):
    fake_upstream.reply(chat(transcript("openai", "text.sse")))
    app = make_app(fake_upstream)
    request = ChatRequest(
        model="openai/gpt-4o-mini",
        messages=[Message("system", (TextPart("You are terse."),)), Message("user", (TextPart("hi"),))],
        temperature=0.3, max_tokens=50,
    )
    result = run(app, request)
    assert result.text == "Hello there!"
    assert result.finish.unified == "stop" and result.finish.raw == "stop"
    assert result.id == "chatcmpl-C3jmyBQgTgsLd421Wg8fBhM0xkOiK"
    # usage comes from the separate choices:[] chunk, once
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.reasoning_tokens) == (9, 3, 0)
    sent = fake_upstream.received[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    body = sent.json
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hi"}]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.3
    # a compatible base URL (not api.openai.com) gets max_tokens, the field those servers read
    assert body["max_tokens"] == 50 and "max_completion_tokens" not in body


def test_official_base_url_gets_max_completion_tokens():
    from proxy.providers.openai import completions_url, is_official
    from proxy.providers.openai.payload import build_payload

    assert completions_url(None) == "https://api.openai.com/v1/chat/completions"
    assert completions_url("https://api.openai.com/v1/") == "https://api.openai.com/v1/chat/completions"
    assert completions_url("http://localhost:11434/v1") == "http://localhost:11434/v1/chat/completions"
    assert completions_url("https://api.perplexity.ai") == "https://api.perplexity.ai/chat/completions"
    assert completions_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"
    assert is_official(None) and not is_official("http://localhost:11434/v1")
    body = build_payload(ask(max_tokens=10, temperature=0.5), "o3-mini", official=True, stream=False)
    assert body["max_completion_tokens"] == 10 and "temperature" not in body and "stream_options" not in body
    body = build_payload(ask(max_tokens=10, temperature=0.5), "gpt-4o", official=True, stream=True)
    assert body["max_completion_tokens"] == 10 and body["temperature"] == 0.5


def test_images_tools_and_multi_turn_tool_use_translation(fake_upstream):
    fake_upstream.reply(chat(transcript("openai", "text.sse")))
    app = make_app(fake_upstream)
    request = ChatRequest(
        model="openai/gpt-4o",
        messages=[
            Message("user", (TextPart("Weather where this photo was taken?"), ImagePart(PNG),
                             ImagePart("https://example.org/a.jpg", detail="low"))),
            Message("assistant", (TextPart("Let me check."),
                                  ToolCallPart("call_1", "get_weather", '{"city":"Paris"}'),
                                  ToolCallPart("call_2", "get_weather", '{"city":"Rome"}'))),
            Message("tool", (ToolResultPart("call_1", "18°C"), ToolResultPart("call_2", "25°C"))),
        ],
        tools=[Tool("get_weather", "Weather for a city",
                    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})],
        tool_choice={"name": "get_weather"},
    )
    run(app, request)
    body = fake_upstream.received[0].json
    assert body["messages"] == [
        {"role": "user", "content": [
            {"type": "text", "text": "Weather where this photo was taken?"},
            {"type": "image_url", "image_url": {"url": PNG}},
            {"type": "image_url", "image_url": {"url": "https://example.org/a.jpg", "detail": "low"}},
        ]},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "25°C"},
    ]
    assert body["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_parallel_tool_calls_streamed_in_fragments(fake_upstream):
    fake_upstream.reply(chat(transcript("openai", "tool_calls_parallel.sse")))
    events = list(router(make_app(fake_upstream)).open(ask("weather?")))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response-metadata", "tool-input-start"]
    deltas = [e.delta for e in events if e.type == "tool-input-delta"]
    assert deltas == ['{"', 'city":"Paris"}', '{"city":"Rome"}']
    calls = [e for e in events if e.type == "tool-call"]
    assert [(c.id, c.name, json.loads(c.input)) for c in calls] == [
        ("call_2Uzw0AEZQeOex2CP2TKjcLKc", "get_weather", {"city": "Paris"}),
        ("call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_weather", {"city": "Rome"}),
    ]
    # each call's end comes before its complete ToolCall; Finish last
    assert kinds.index("tool-input-end") < kinds.index("tool-call")
    assert events[-1].unified == "tool-calls"


def test_ollama_whole_tool_call_without_key(fake_upstream):
    """A keyless compatible server: no Authorization header, whole call in one chunk."""
    fake_upstream.reply(chat(transcript("openai", "ollama_tool_call.sse"), key=None))
    app = make_app(fake_upstream, providers={"openai": ProviderSettings(base_url=fake_upstream.url + "/v1",
                                                                        key_variable="OPENAI_API_KEY")})
    result = run(app, ask("weather?", model="openai/qwen3:8b"))
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_weather", '{"city":"Paris"}')]
    assert result.finish.unified == "tool-calls"
    assert result.usage.input_tokens == 41 and result.usage.output_tokens == 17
    assert "Authorization" not in fake_upstream.received[0].headers


@pytest.mark.parametrize("name, reasoning, text", [
    ("deepseek_reasoning.sse", "The user says hello", "Hello!"),
    ("ollama_thinking.sse", "The user greets", "Hello!"),
    ("perplexity_reasoning.sse", "Search for haiku", "Silent web unfolds [1][2]"),
])
def test_reasoning_field_zoo(fake_upstream, name, reasoning, text):
    fake_upstream.reply(chat(transcript("openai", name)))
    result = run(make_app(fake_upstream), ask())
    assert result.reasoning == reasoning
    assert result.text == text  # reasoning is never echoed into the text
    assert result.complete


def test_deepseek_usage_on_finish_chunk_counted_once(fake_upstream):
    fake_upstream.reply(chat(transcript("openai", "deepseek_reasoning.sse")))
    events = list(router(make_app(fake_upstream)).open(ask()))
    usages = [e for e in events if e.type == "usage"]
    assert len(usages) == 1
    assert (usages[0].input_tokens, usages[0].output_tokens, usages[0].reasoning_tokens) == (14, 9, 4)
    assert [e.type for e in events][-2:] == ["usage", "finish"]


def test_openrouter_processing_comments_and_usage(fake_upstream):
    fake_upstream.reply(chat(transcript("openai", "openrouter_text.sse")))
    result = run(make_app(fake_upstream), ask())
    assert result.text == "Bonjour"
    assert result.usage.total_tokens == 15


def test_perplexity_citations_become_sources(fake_upstream):
    fake_upstream.reply(chat(transcript("openai", "perplexity_reasoning.sse")))
    result = run(make_app(fake_upstream), ask())
    assert [(s.url, s.title) for s in result.sources] == [
        ("https://example.org/haiku", "Haiku basics"), ("https://example.org/poetry", None)]


def test_non_streaming_endpoint(fake_upstream):
    fake_upstream.reply(completion(transcript("openai", "nonstream_text.json")))
    result = run(make_app(fake_upstream), ask(stream=False))
    assert result.text == "Hello! How can I help you today?"
    assert result.usage.input_tokens == 20 and result.finish.unified == "stop"
    body = fake_upstream.received[0].json
    assert body["stream"] is False and "stream_options" not in body


def test_non_streaming_tool_call_and_leading_blank_lines(fake_upstream):
    body = {"id": "b55e", "object": "chat.completion", "created": 1, "model": "deepseek-chat", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": None, "reasoning_content": "Need weather",
                                 "tool_calls": [{"id": "call_x", "type": "function",
                                                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
         "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}
    fake_upstream.reply(completion(b"\n\n\n" + json.dumps(body, indent=2).encode() + b"\n"))
    result = run(make_app(fake_upstream), ask(stream=False))
    assert result.reasoning == "Need weather"
    assert [(c.id, c.arguments) for c in result.tool_calls] == [("call_x", '{"city":"Oslo"}')]
    assert result.finish.unified == "tool-calls"


def test_non_streaming_error_inside_200_body(fake_upstream):
    fake_upstream.reply(Reply.json({"error": {"message": "context too long", "type": "invalid_request_error",
                                              "code": 400}}))
    with pytest.raises(Exception) as caught:
        run(make_app(fake_upstream), ask(stream=False))
    assert caught.value.status == 400 and "context too long" in caught.value.message


# -- faults before the first byte ---------------------------------------------------

def test_wrong_key_is_401_with_upstream_status(fake_upstream):
    fake_upstream.reply(chat(transcript("openai", "text.sse"), key="sk-the-right-one-000"))
    with pytest.raises(AuthenticationFailed) as caught:
        router(make_app(fake_upstream)).open(ask())
    assert caught.value.upstream_status == 401
    assert "Incorrect API key provided" in caught.value.message


def test_statuses_map_to_the_error_tree(fake_upstream):
    app = make_app(fake_upstream)
    fake_upstream.reply(error(404, "The model `gpt-9` does not exist", "invalid_request_error", "model_not_found"))
    with pytest.raises(ModelNotFound) as caught:
        router(app).open(ask(model="openai/gpt-9"))
    assert caught.value.upstream_status == 404
    fake_upstream.reply(error(429, "Rate limit reached for gpt-4o. Please try again in 2s.", "tokens",
                              "rate_limit_exceeded", **{"retry-after": "2"}))
    with pytest.raises(RateLimited) as caught:
        router(app).open(ask())
    assert caught.value.retry_after == 2.0 and caught.value.upstream_status == 429
    fake_upstream.reply(error(429, "You exceeded your current quota", "insufficient_quota", "insufficient_quota"))
    with pytest.raises(RateLimited) as caught:
        router(app).open(ask())
    assert caught.value.retryable is False and caught.value.code == "insufficient_quota"
    fake_upstream.reply(error(503, "The server is overloaded"))
    with pytest.raises(UpstreamError) as caught:
        router(app).open(ask())
    assert caught.value.upstream_status == 503 and caught.value.retryable


def test_429_reaches_the_client_with_retry_after(fake_upstream):
    fake_upstream.reply(error(429, "Rate limit reached", "requests", "rate_limit_exceeded", **{"retry-after": "7"}))
    response = make_app(fake_upstream).test_client().post(
        "/api/chat", json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert "Rate limit reached" in response.get_json()["error"]["message"]


def test_upstream_key_echoed_in_an_error_is_redacted(fake_upstream, caplog):
    fake_upstream.reply(error(400, f"Bad request made with key {KEY} here", "invalid_request_error"),
                        error(502, f"gateway saw {KEY}"), error(502, f"gateway saw {KEY} again"))
    app = make_app(fake_upstream, max_retries=1)
    client = app.test_client()
    payload = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    first = client.post("/api/chat", json=payload)
    second = client.post("/api/chat", json=payload)  # retried: the retry is logged
    assert first.status_code == 400 and second.status_code == 502
    for response in (first, second):
        assert KEY not in response.get_data(as_text=True)
        assert "[redacted]" in response.get_data(as_text=True)
    assert "retry 1" in caplog.text and KEY not in caplog.text


def test_connection_refused_is_an_upstream_error():
    app = create_app({"demo_delay": 0, "max_retries": 0, "providers": {
        "openai": ProviderSettings(api_key=KEY, base_url="http://127.0.0.1:9/v1")}})
    with pytest.raises(UpstreamError) as caught:
        router(app).open(ask())
    assert caught.value.code == "connection_error"


# -- faults after the first byte ----------------------------------------------------

def stream_events(app, request):
    from proxy.streaming import guard

    return list(guard(router(app).open(request)))


def test_midstream_error_event_is_in_band(fake_upstream):
    fake_upstream.reply(chat(transcript("openai", "midstream_error.sse")))
    events = stream_events(make_app(fake_upstream), ask())
    assert [e.type for e in events][-2:] == ["text-delta", "error"]
    assert "The server had an error" in events[-1].error.message


def test_openrouter_finish_reason_error_is_in_band(fake_upstream):
    fake_upstream.reply(chat(transcript("openai", "openrouter_midstream_error.sse")))
    events = stream_events(make_app(fake_upstream), ask())
    assert events[-1].type == "error"
    assert "Provider disconnected unexpectedly" in events[-1].error.message
    assert not any(e.type == "finish" for e in events)


def test_cut_connection_is_an_error_never_a_clean_finish(fake_upstream):
    fake_upstream.reply(chat(text_stream("Hello", " there", " friend"), cut_after=3))
    events = stream_events(make_app(fake_upstream), ask())
    assert [e.delta for e in events if e.type == "text-delta"] == ["Hello", " there"]
    assert events[-1].type == "error" and isinstance(events[-1].error, UpstreamError)
    assert not any(e.type == "finish" for e in events)


def test_stream_without_done_or_finish_reason_is_truncated(fake_upstream):
    fake_upstream.reply(chat(text_stream("Hello", " there", finish=None)))
    from proxy.streaming import guard

    events = list(guard(router(make_app(fake_upstream)).open(ask())))
    assert events[-1].type == "error" and events[-1].error.code == "stream_incomplete"


def test_malformed_line_is_an_upstream_error(fake_upstream):
    fake_upstream.reply(chat(text_stream("Hello", " there"), malformed_after=2))
    from proxy.streaming import guard

    events = list(guard(router(make_app(fake_upstream)).open(ask())))
    assert events[-1].type == "error" and events[-1].error.code == "malformed_stream"


def test_stall_hits_the_idle_timeout(fake_upstream):
    fake_upstream.reply(chat(text_stream("Hello", " there"), stall_after=2, stall=5.0))
    from proxy.streaming import guard

    started = time.monotonic()
    events = list(guard(router(make_app(fake_upstream, idle_timeout=0.5)).open(ask())))
    elapsed = time.monotonic() - started
    assert events[-1].type == "error" and isinstance(events[-1].error, UpstreamTimeout)
    assert events[-1].error.code == "idle_timeout"
    assert elapsed < 3.0  # behavioural bound: well before the 5 s stall ended
    assert fake_upstream.wait_closed(1.0)


def test_slow_but_steady_stream_longer_than_idle_timeout_completes(fake_upstream):
    fake_upstream.reply(chat(text_stream(*"abcdefg"), delay=0.2))  # 10 events, 0.2 s apart: ~1.8 s in all
    result = run(make_app(fake_upstream, idle_timeout=0.5), ask())
    assert result.text == "abcdefg" and result.complete


# -- a client that leaves stops the upstream ----------------------------------------

def test_client_disconnect_closes_upstream_test_client(fake_upstream):
    fake_upstream.reply(chat(text_stream(*["word "] * 200), delay=0.05))
    app = make_app(fake_upstream, heartbeat_seconds=0.1)
    response = app.test_client().post(
        "/api/chat", json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        buffered=False)
    chunks = response.response
    first = next(iter(chunks))
    assert first
    response.close()
    assert fake_upstream.wait_closed(1.0)
    assert fake_upstream.completed == 0


def test_client_disconnect_closes_upstream_real_socket(fake_upstream):
    fake_upstream.reply(chat(text_stream(*["word "] * 200), delay=0.05))
    app = make_app(fake_upstream, heartbeat_seconds=0.1)
    with serve(app) as base:
        response = requests.post(base + "/api/chat", stream=True, timeout=5, json={
            "model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
        assert next(response.iter_content(None))
        response.close()
        assert fake_upstream.wait_closed(1.0)
    assert fake_upstream.disconnects and fake_upstream.completed == 0
