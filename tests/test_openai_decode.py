"""Pure tests of the Chat Completions decoder and payload builder (no sockets)."""
from __future__ import annotations

import json

import pytest

from proxy import sse
from proxy.canonical import ChatRequest, Message, TextPart, ToolCallPart, accumulate
from proxy.errors import UpstreamError
from proxy.providers.openai.decode import StreamDecoder
from proxy.providers.openai.payload import build_payload
from proxy.providers.openai.think import ThinkSplitter

pytestmark = pytest.mark.unit


def decode(*chunks: dict | str) -> list:
    decoder = StreamDecoder()
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk if isinstance(chunk, str) else json.dumps(chunk))
        if events and events[-1].type == "error":
            return events
    return events + list(decoder.finish())


def delta(reason=None, **fields) -> dict:
    return {"id": "c", "choices": [{"index": 0, "delta": fields, "finish_reason": reason}]}


@pytest.mark.parametrize("pieces", [
    ["<think>plan</think>answer"],
    ["<th", "ink>pl", "an</th", "ink>", "answer"],
    ["  <think>", "plan", "</think>\n\nans", "wer"],
])
def test_think_tags_split_anywhere(pieces):
    splitter = ThinkSplitter()
    out = [item for piece in pieces for item in splitter.feed(piece)] + splitter.flush()
    assert "".join(t for k, t in out if k == "reasoning") == "plan"
    assert "".join(t for k, t in out if k == "text") == "answer"


def test_think_tag_only_counts_at_the_start():
    splitter = ThinkSplitter()
    out = splitter.feed("Use <think> tags") + splitter.flush()
    assert out == [("text", "Use <think> tags")]
    splitter = ThinkSplitter()
    assert splitter.feed("<") == [] and splitter.flush() == [("text", "<")]


def test_openrouter_reasoning_details_images_and_refusal():
    events = decode(
        delta(reasoning_details=[{"type": "reasoning.text", "text": "hmm", "format": "x", "index": 0}]),
        delta(reasoning="more", reasoning_details=[{"type": "reasoning.text", "text": "more"}]),
        delta(images=[{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}]),
        delta(refusal="I can't"),
        delta("content_filter"),
        "[DONE]",
    )
    result = accumulate(events)
    assert result.reasoning == "hmmmore"  # `reasoning` wins over its duplicate in reasoning_details
    assert [(f.media_type, f.url) for f in result.files] == [("image/jpeg", "data:image/jpeg;base64,AAAA")]
    assert result.text == "I can't" and result.finish.unified == "content-filter"


@pytest.mark.parametrize("raw, unified", [("stop", "stop"), ("length", "length"), ("tool_calls", "tool-calls"),
                                          ("function_call", "tool-calls"), ("content_filter", "content-filter"),
                                          ("something_new", "other")])
def test_finish_reasons(raw, unified):
    events = decode(delta(content="x"), delta(raw))  # no [DONE]: a finish_reason is an ending too
    assert (events[-1].unified, events[-1].raw) == (unified, raw)


def test_done_without_finish_reason_and_no_usage():
    events = decode(delta(content="x"), "[DONE]")
    assert events[-1].type == "finish" and not any(e.type == "usage" for e in events)


def test_whole_call_with_object_arguments_and_text_before():
    events = decode(
        delta(content="Checking."),
        delta(tool_calls=[{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]),
        delta("tool_calls"), "[DONE]")
    kinds = [e.type for e in events]
    assert kinds.index("text-end") < kinds.index("tool-input-start")
    call = next(e for e in events if e.type == "tool-call")
    assert (call.id, call.name, json.loads(call.input)) == ("call_1", "f", {"a": 1})


def test_tool_call_without_arguments_gets_empty_object():
    events = decode(delta(tool_calls=[{"index": 0, "id": "c1", "function": {"name": "now", "arguments": ""}}]),
                    delta("tool_calls"))
    assert next(e for e in events if e.type == "tool-call").input == "{}"


def test_usage_last_value_wins_not_summed():
    running = [dict(delta(content="a"), usage={"prompt_tokens": 5, "completion_tokens": 1}),
               dict(delta(content="b"), usage={"prompt_tokens": 5, "completion_tokens": 2}),
               dict(delta("stop"), usage={"prompt_tokens": 5, "completion_tokens": 3})]
    usage = [e for e in decode(*running) if e.type == "usage"]
    assert len(usage) == 1 and (usage[0].input_tokens, usage[0].output_tokens) == (5, 3)


def test_truncated_and_malformed_streams_raise():
    with pytest.raises(UpstreamError, match="truncated"):
        decode(delta(content="x"))
    with pytest.raises(UpstreamError, match="malformed"):
        decode(delta(content="x"), '{"choices": [')


def test_crlf_and_done_without_blank_line_parse():
    raw = (b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\r\n\r\n'
           b'data: {"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"timings":{}}\r\n\r\n'
           b"data: [DONE]")
    decoder = StreamDecoder()
    events = [e for event in sse.parse(raw) for e in decoder.feed(event.data)] + list(decoder.finish())
    assert accumulate(events).text == "hi"


def test_assistant_tool_only_turn_has_null_content_and_reasoning_is_stripped():
    from proxy.canonical import ReasoningPart

    request = ChatRequest("m", [Message("assistant", (ReasoningPart("secret thoughts"),
                                                      ToolCallPart("call_1", "f", ""))),
                                Message("user", (TextPart("go on"),))], extra={"seed": 7})
    body = build_payload(request, "deepseek-reasoner", official=False, stream=True)
    assert body["messages"][0] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    assert "secret" not in json.dumps(body) and body["seed"] == 7
