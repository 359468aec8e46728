"""Gemini provider over a fake upstream speaking the real wire format:
streamed text, thinking, tool calls, image output, usage, finish reasons,
and the non-streaming generateContent call."""
from __future__ import annotations

import pytest

from proxy.canonical import ReasoningPart, TextPart, ToolCallPart, accumulate
from tests.fakes.gemini import gemini
from tests.fakes.upstream import Reply
from tests.gemini_helpers import ask, gemini_app, kinds, run, sse

pytestmark = pytest.mark.integration


def test_plain_text_streams_over_alt_sse_with_the_key_in_a_header(fake_upstream):
    fake_upstream.reply(gemini(Reply.sse(sse("plain_text.sse"))))
    events = run(gemini_app(fake_upstream), ask())
    assert kinds(events) == ["response-metadata", "text-start", "text-delta", "text-delta", "text-end", "usage", "finish"]
    assert "".join(e.delta for e in events if e.type == "text-delta") == "The capital of France is Paris."
    assert events[0].id == "03y7apiQIoOg1MkP4eXTkAg" and events[0].model == "gemini-2.5-flash"
    assert (events[-1].unified, events[-1].raw) == ("stop", "STOP")
    received = fake_upstream.received[0]
    assert received.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert received.query == "alt=sse"  # the key never rides in the URL
    assert received.headers["X-Goog-Api-Key"] == "test-key"


def test_usage_is_the_last_running_total_not_a_sum(fake_upstream):
    fake_upstream.reply(gemini(Reply.sse(sse("plain_text.sse"))))
    usage = [e for e in run(gemini_app(fake_upstream), ask()) if e.type == "usage"]
    assert len(usage) == 1
    assert (usage[0].input_tokens, usage[0].output_tokens) == (8, 7)  # not 16 / 9


def test_thinking_parts_become_reasoning_and_the_signature_is_kept(fake_upstream):
    fake_upstream.reply(gemini(Reply.sse(sse("thinking.sse"))))
    events = run(gemini_app(fake_upstream), ask("27 × 453?", reasoning_effort="low"))
    assert kinds(events) == [
        "response-metadata", "reasoning-start", "reasoning-delta", "reasoning-end", "text-start", "text-delta",
        "text-end", "reasoning-start", "reasoning-end", "usage", "finish",
    ]
    assert events[2].delta.startswith("**Computing the product**")
    # the empty final text part yields no empty text delta, only its signature
    assert all(e.delta for e in events if e.type == "text-delta")
    assert events[8].provider_metadata == {"gemini": {"thoughtSignature": "CiQB0e2Kb3Jq0w2m8y4nPq...", "onText": False}}
    usage = events[-2]
    # thoughts are outside candidatesTokenCount but are output
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (12, 9 + 86, 86)
    result = accumulate(events)
    assert result.text == "27 × 453 = 12,231"
    assert isinstance(result.parts[0], ReasoningPart) and isinstance(result.parts[1], TextPart)
    assert result.parts[2].provider_metadata["gemini"]["thoughtSignature"] == "CiQB0e2Kb3Jq0w2m8y4nPq..."


def test_tool_calls_arrive_whole_with_synthesized_ids_and_finish_as_tool_calls(fake_upstream):
    fake_upstream.reply(gemini(Reply.sse(sse("tool_call.sse"))))
    events = run(gemini_app(fake_upstream), ask("Weather in Paris and Rome?"))
    assert kinds(events)[4:] == [
        "tool-input-start", "tool-input-delta", "tool-input-end", "tool-call",
        "tool-input-start", "tool-input-delta", "tool-input-end", "tool-call", "usage", "finish",
    ]
    calls = [e for e in events if e.type == "tool-call"]
    assert [c.input for c in calls] == ['{"city":"Paris"}', '{"city":"Rome"}']
    assert [c.id for c in calls] == ["call_gemini_r7dLacuHMpe3vr0PyJ2X6Ac_0", "call_gemini_r7dLacuHMpe3vr0PyJ2X6Ac_1"]
    assert calls[0].provider_metadata == {"gemini": {"thoughtSignature": "CtwBAdHtim9..."}}
    assert calls[1].provider_metadata is None
    assert (events[-1].unified, events[-1].raw) == ("tool-calls", "STOP")
    result = accumulate(events)
    assert [type(p) for p in result.parts] == [TextPart, ToolCallPart, ToolCallPart]


def test_image_output_becomes_a_file_event_with_a_data_url(fake_upstream):
    fake_upstream.reply(gemini(Reply.sse(sse("image_output.sse"))))
    events = run(gemini_app(fake_upstream), ask("Draw a red dot", model="gemini/gemini-2.5-flash-image"))
    files = [e for e in events if e.type == "file"]
    assert len(files) == 1 and files[0].media_type == "image/png"
    assert files[0].url.startswith("data:image/png;base64,iVBORw0KGgo")
    assert events[-1].unified == "stop"


def test_a_blocked_prompt_finishes_as_content_filter(fake_upstream):
    fake_upstream.reply(gemini(Reply.sse(sse("prompt_blocked.sse"))))
    events = run(gemini_app(fake_upstream), ask())
    assert kinds(events) == ["response-metadata", "usage", "finish"]
    assert (events[-1].unified, events[-1].raw) == ("content-filter", "PROHIBITED_CONTENT")


def _chunk(finish: str, parts: str = "") -> bytes:
    content = f'"content": {{"parts": [{parts}],"role": "model"}},' if parts else ""
    return (
        f'data: {{"candidates": [{{{content}"finishReason": "{finish}","index": 0}}],'
        f'"usageMetadata": {{"promptTokenCount": 3,"candidatesTokenCount": 1,"totalTokenCount": 4}},'
        f'"modelVersion": "gemini-2.5-flash","responseId": "x"}}\r\n\r\n'
    ).encode()


def test_finish_reasons_map_to_the_unified_vocabulary(fake_upstream):
    app = gemini_app(fake_upstream)
    cases = {
        "MAX_TOKENS": "length", "SAFETY": "content-filter", "RECITATION": "content-filter",
        "BLOCKLIST": "content-filter", "PROHIBITED_CONTENT": "content-filter", "SPII": "content-filter",
        "MALFORMED_FUNCTION_CALL": "error", "LANGUAGE": "other", "OTHER": "other",
    }
    for raw, unified in cases.items():
        fake_upstream.reply(gemini(Reply.sse(_chunk(raw))))
        finish = run(app, ask())[-1]
        assert (finish.type, finish.unified, finish.raw) == ("finish", unified, raw)


def test_a_zero_argument_call_without_args_has_empty_object_input(fake_upstream):
    fake_upstream.reply(gemini(Reply.sse(_chunk("STOP", '{"functionCall": {"name": "now","id": "fc-1"}}'))))
    calls = [e for e in run(gemini_app(fake_upstream), ask()) if e.type == "tool-call"]
    assert [(c.id, c.name, c.input) for c in calls] == [("fc-1", "now", "{}")]


def test_non_streaming_requests_use_generate_content(fake_upstream):
    body = (sse("generate_content.json"))
    fake_upstream.reply(gemini(Reply.json(None, raw=body)))
    events = run(gemini_app(fake_upstream), ask(stream=False))
    received = fake_upstream.received[0]
    assert received.path == "/v1beta/models/gemini-2.5-flash:generateContent" and received.query == ""
    result = accumulate(events)
    assert result.text == "The capital of France is Paris."
    assert (result.usage.input_tokens, result.usage.output_tokens) == (212, 89)
    assert result.finish.unified == "stop" and result.id == "aFRLab34GrOwvr0PjMGb0Qk"


def test_lf_framing_is_read_as_well_as_crlf(fake_upstream):
    fake_upstream.reply(gemini(Reply.sse(sse("plain_text.sse").replace(b"\r\n", b"\n"))))
    events = run(gemini_app(fake_upstream), ask())
    assert "".join(e.delta for e in events if e.type == "text-delta") == "The capital of France is Paris."


def test_a_several_megabyte_image_line_arrives_whole(fake_upstream):
    import base64

    data = base64.b64encode(bytes(range(256)) * 12 * 1024).decode()  # 3 MB of image, 4 MB of base64
    raw = sse("image_output.sse")
    start = raw.index(b'"data": "') + len(b'"data": "')
    end = raw.index(b'"', start)
    fake_upstream.reply(gemini(Reply.sse(raw[:start] + data.encode() + raw[end:])))
    files = [e for e in run(gemini_app(fake_upstream), ask()) if e.type == "file"]
    assert len(files) == 1 and files[0].url == "data:image/png;base64," + data
