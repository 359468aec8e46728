"""Anthropic provider, streaming: spec transcripts replayed by a fake
Messages API over real sockets, decoded into canonical events."""
from __future__ import annotations

import pytest

from proxy.canonical import (
    ChatRequest,
    Message,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    accumulate,
)
from proxy.streaming import guard
from tests.fakes.anthropic import KEY, AnthropicUpstream, make_app, sse

pytestmark = pytest.mark.integration


@pytest.fixture
def fake():
    with AnthropicUpstream() as server:
        yield server


def chat(text: str = "Hi", model: str = "anthropic/claude-sonnet-4-5", **kwargs) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", (TextPart(text),))], **kwargs)


def run(fake, request: ChatRequest, **settings):
    router = make_app(fake, **settings).extensions["switchboard"].router
    return list(guard(router.open(request)))


def test_plain_text_streams_in_order(fake):
    fake.reply(sse("basic_text.sse"))
    events = run(fake, chat())
    kinds = [event.type for event in events]
    assert kinds == [
        "response-metadata", "text-start", "text-delta", "text-delta", "text-delta", "text-end", "usage", "finish",
    ]
    assert [e.delta for e in events if e.type == "text-delta"] == ["Hello", " there", "!"]
    assert events[0].id == "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK"
    assert events[0].model == "claude-3-opus-latest"
    assert (events[-1].unified, events[-1].raw) == ("stop", "end_turn")


def test_request_reaches_messages_endpoint_with_vendor_headers(fake):
    fake.reply(sse("basic_text.sse"))
    run(fake, chat())
    received = fake.received[0]
    headers = {k.lower(): v for k, v in received.headers.items()}
    assert (received.method, received.path) == ("POST", "/v1/messages")
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    body = received.json
    assert body["model"] == "claude-sonnet-4-5"
    assert body["stream"] is True
    assert body["max_tokens"] == 4096
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]


def test_usage_is_the_final_running_total_never_summed(fake):
    fake.reply(sse("basic_text.sse"))
    usage = [e for e in run(fake, chat()) if e.type == "usage"]
    # message_start says output_tokens 1 (provisional), message_delta 6 (cumulative): 6, not 7.
    assert len(usage) == 1
    assert (usage[0].input_tokens, usage[0].output_tokens) == (11, 6)


def test_usage_counts_cache_reads_and_writes_as_input(fake):
    fake.reply(sse("redacted_thinking_tool_use.sse"))
    (usage,) = [e for e in run(fake, chat()) if e.type == "usage"]
    # input 120 + cache writes 30 + cache reads 2000, repeated in message_delta: still once.
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens) == (2150, 2000, 91)


def test_thinking_with_signature_becomes_reasoning_part_with_metadata(fake):
    fake.reply(sse("thinking_signature.sse"))
    events = run(fake, chat("27 * 453?"))
    kinds = [e.type for e in events]
    assert kinds.index("reasoning-start") < kinds.index("reasoning-end") < kinds.index("text-start")
    end = next(e for e in events if e.type == "reasoning-end")
    signature = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds3QB6jmkuBTh1v6N3QwCmnZ3RMs4t85YJnVBb4T1NC2ssg=="
    assert end.provider_metadata == {"anthropic": {"signature": signature}}
    result = accumulate(events)
    assert result.parts == [
        ReasoningPart("The user asks for 27 * 453. 27*400=10800, 27*53=1431, total 12231.", {"anthropic": {"signature": signature}}),
        TextPart("27 × 453 = 12,231"),
    ]
    assert result.usage.output_tokens == 87


def test_tool_call_arguments_are_the_streamed_fragments(fake):
    fake.reply(sse("tool_use_input_json_delta.sse"))
    events = run(fake, chat("Weather in Paris?", tools=[]))
    deltas = [e.delta for e in events if e.type == "tool-input-delta"]
    assert deltas == ['{"locati', 'on": "P', "ar", 'is"}']  # the leading "" is dropped
    start = next(e for e in events if e.type == "tool-input-start")
    assert (start.id, start.name) == ("toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather")
    kinds = [e.type for e in events]
    # the call is complete at content_block_stop, before message_delta's finish
    assert kinds[-5:] == ["tool-input-delta", "tool-input-end", "tool-call", "usage", "finish"]
    call = next(e for e in events if e.type == "tool-call")
    assert call.input == '{"location": "Paris"}'
    assert (events[-1].unified, events[-1].raw) == ("tool-calls", "tool_use")
    result = accumulate(events)
    assert result.text == "I'll check the current weather in Paris for you."
    assert result.tool_calls == [ToolCallPart("toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather", '{"location": "Paris"}')]


def test_redacted_thinking_unknown_blocks_and_zero_argument_tool(fake):
    fake.reply(sse("redacted_thinking_tool_use.sse"))
    events = run(fake, chat("What time is it?"))
    result = accumulate(events)
    redacted = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj"
    assert result.parts == [
        ReasoningPart("I need the time; the clock tool takes no input.", {"anthropic": {"signature": "EuYBCkQYAiJAxSig1Demo+sig/2=="}}),
        ReasoningPart("", {"anthropic": {"redactedData": redacted}}),
        ToolCallPart("toolu_01ClockNoArgs", "get_time", "{}"),
    ]
    # the server_tool_use block and the unknown event type produced nothing
    assert not any(getattr(e, "name", None) == "web_search" for e in events)
    assert not any("srvtoolu" in str(getattr(e, "id", "")) for e in events)
    # redacted thinking is never shown
    assert all(redacted not in getattr(e, "delta", "") for e in events)


def test_non_streaming_response_decodes_to_the_same_events(fake):
    from tests.fakes.upstream import Reply, transcript

    fake.reply(Reply.json(None, raw=transcript("anthropic", "message.json")))
    events = run(fake, chat(stream=False))
    assert "stream" not in fake.received[0].json
    result = accumulate(events)
    assert result.id == "msg_01QgNtCXZKCJgpWHW3NEwmdP"
    assert result.text == "Hello! How can I assist you today? Is there anything specific you'd like to know or discuss?"
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.cached_input_tokens) == (16, 24, 0)
    assert (result.finish.unified, result.finish.raw) == ("stop", "end_turn")


def test_non_streaming_thinking_and_tool_use(fake):
    from tests.fakes.upstream import Reply

    body = {
        "id": "msg_01NonStream", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "Need weather.", "signature": "Eo0DSig=="},
            {"type": "redacted_thinking", "data": "EmwRedacted"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01X", "name": "get_weather", "input": {"city": "Paris"}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 50, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10, "output_tokens": 40},
    }
    fake.reply(Reply.json(body))
    result = accumulate(run(fake, chat(stream=False)))
    assert result.parts == [
        ReasoningPart("Need weather.", {"anthropic": {"signature": "Eo0DSig=="}}),
        ReasoningPart("", {"anthropic": {"redactedData": "EmwRedacted"}}),
        TextPart("Let me check."),
        ToolCallPart("toolu_01X", "get_weather", '{"city":"Paris"}'),
    ]
    assert (result.usage.input_tokens, result.usage.cached_input_tokens) == (60, 10)
    assert result.finish.unified == "tool-calls"


@pytest.mark.parametrize(
    ("raw", "unified"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool-calls"),
     ("refusal", "content-filter"), ("pause_turn", "other"), ("model_context_window_exceeded", "length")],
)
def test_stop_reasons_map_to_unified_finish(fake, raw, unified):
    body = transcript_with_stop_reason(raw)
    from tests.fakes.upstream import Reply

    fake.reply(Reply.sse(body))
    finish = run(fake, chat())[-1]
    assert (finish.type, finish.unified, finish.raw) == ("finish", unified, raw)


def transcript_with_stop_reason(raw: str) -> bytes:
    from tests.fakes.upstream import transcript

    body = transcript("anthropic", "basic_text.sse")
    assert b'"stop_reason":"end_turn"' in body
    return body.replace(b'"stop_reason":"end_turn"', f'"stop_reason":"{raw}"'.encode())
