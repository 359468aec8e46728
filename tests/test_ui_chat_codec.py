"""The UI message stream codec without a server: golden frames for each kind
of stream, the request decoding of DefaultChatTransport bodies, and the
server-side assembly of the assistant UIMessage."""
from __future__ import annotations

import json
import pathlib

import pytest

from proxy.canonical import (
    Error,
    File,
    Finish,
    ImagePart,
    PlanStep,
    PlanUpdate,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningPart,
    ReasoningStart,
    ResponseMetadata,
    Source,
    TextDelta,
    TextEnd,
    TextPart,
    TextStart,
    TodoUpdate,
    ToolCall,
    ToolCallPart,
    ToolInputDelta,
    ToolInputEnd,
    ToolInputStart,
    ToolResultPart,
    Usage,
)
from proxy.errors import BadRequest, UpstreamError
from proxy.streaming import guard
from proxy.surfaces import ui_chat_codec as codec

pytestmark = pytest.mark.unit


GOLDEN = pathlib.Path(__file__).parent / "golden" / "ui_chat"


class Context:
    default_model = "mock"
    server_url = "http://testserver"


def frames(events, **kwargs) -> bytes:
    return b"".join(codec.encode_stream(guard(iter(events)), "msg_1", {"model": "mock", "preset": None}, **kwargs))


def golden(name: str, data: bytes) -> None:
    expected = (GOLDEN / f"{name}.sse").read_bytes()
    assert data.decode() == expected.decode()


def test_text_stream_golden():
    golden("text", frames([ResponseMetadata("r", "mock"), TextStart("0"), TextDelta("0", "Hello"),
                           TextDelta("0", " world"), TextEnd("0"), Usage(5, 2), Finish("stop", "stop")]))


def test_reasoning_then_text_golden():
    signature = {"anthropic": {"signature": "sig=="}}
    golden("reasoning", frames([ReasoningStart("0"), ReasoningDelta("0", "Thinking..."), ReasoningEnd("0", signature),
                                TextStart("1"), TextDelta("1", "Done."), TextEnd("1"), Finish("stop")]))


def test_tool_call_golden():
    golden("tool_call", frames([
        TextStart("0"), TextDelta("0", "Let me look."), TextEnd("0"),
        ToolInputStart("call_1", "get_weather"), ToolInputDelta("call_1", '{"city":'), ToolInputDelta("call_1", '"SF"}'),
        ToolInputEnd("call_1"), ToolCall("call_1", "get_weather", '{"city":"SF"}'),
        ToolCall("call_2", "lookup", "", {"gemini": {"thoughtSignature": "abc"}}),
        Usage(10, 7), Finish("tool-calls", "tool_calls")], client_tools=["get_weather"]))


def test_file_and_source_golden():
    golden("file", frames([TextStart("t"), TextDelta("t", "Here:"), TextEnd("t"),
                           File("image/png", "data:image/png;base64,iVBORw0KGgo="),
                           Source("https://example.com/a", "A"), Source("https://example.com/b"),
                           Finish("stop")]))


def test_plan_and_todo_data_parts_golden():
    steps = (PlanStep("s1", "Plan", "running"), PlanStep("s2", "Do", "pending"))
    golden("data_parts", frames([
        PlanUpdate("s1", steps),
        TodoUpdate((PlanStep("s1", "Plan", "completed"),)),
        TodoUpdate((PlanStep("s2", "Do", "running"),)),
        TextDelta("x", "ok"), Finish("stop")]))


def test_error_mid_stream_golden():
    """An open text block is not closed and no finish follows: the client's
    chat ends in status "error" with the partial text kept."""
    golden("error", frames([TextStart("0"), TextDelta("0", "Partial"),
                            Error(UpstreamError("upstream closed the connection", code="upstream_error"))]))


def test_cut_stream_is_an_error_never_a_finish():
    data = frames([TextStart("0"), TextDelta("0", "Partial")])  # no Finish: guard adds an Error
    chunks = [json.loads(line[6:]) for line in data.decode().split("\n\n") if line.startswith("data: {")]
    assert chunks[-1]["type"] == "error" and "ended before it finished" in chunks[-1]["errorText"]
    assert not any(c["type"] == "finish" for c in chunks)
    assert data.endswith(b"data: [DONE]\n\n")


def test_reused_provider_ids_get_fresh_ui_ids():
    chunks = list(codec.chunks(iter([TextStart("0"), TextDelta("0", "a"), TextEnd("0"),
                                     TextStart("0"), TextDelta("0", "b"), TextEnd("0"), Finish()]), "m"))
    ids = [c["id"] for c in chunks if c["type"] == "text-start"]
    assert len(ids) == 2 and ids[0] != ids[1]


def test_headers_and_error_body():
    assert codec.HEADERS["x-vercel-ai-ui-message-stream"] == "v1"
    assert codec.HEADERS["Cache-Control"] == "no-cache" and codec.HEADERS["X-Accel-Buffering"] == "no"
    body = codec.error_body(BadRequest("'messages' is required", param="messages"))
    assert body["error"]["message"] == "'messages' is required" and body["error"]["param"] == "messages"


def test_text_protocol():
    text = b"".join(codec.encode_text(guard(iter([ReasoningDelta("r", "hidden"), TextDelta("0", "Hel"),
                                                   TextDelta("0", "lo"), Finish()]))))
    assert text == b"Hello"
    failed = b"".join(codec.encode_text(guard(iter([TextDelta("0", "Hel"), Error(UpstreamError("boom"))]))))
    assert failed.startswith(b"Hel") and b"[Error: boom" in failed


# -- requests -----------------------------------------------------------------

def test_decode_default_chat_transport_body():
    body = {"id": "chat-1", "trigger": "submit-message", "messages": [
        {"id": "s", "role": "system", "parts": [{"type": "text", "text": "Be brief."}]},
        {"id": "u1", "role": "user", "parts": [
            {"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,iVBORw0KGgo="},
            {"type": "file", "mediaType": "text/plain", "filename": "a.txt", "url": "data:text/plain;base64,aGk="},
            {"type": "text", "text": "Describe"}]},
        {"id": "a1", "role": "assistant", "parts": [
            {"type": "step-start"},
            {"type": "reasoning", "text": "hm", "state": "done", "providerMetadata": {"anthropic": {"signature": "s"}}},
            {"type": "text", "text": "Calling", "state": "done"},
            {"type": "tool-get_weather", "toolCallId": "c1", "state": "output-available", "input": {"city": "SF"},
             "output": {"t": 20}},
            {"type": "dynamic-tool", "toolName": "lookup", "toolCallId": "c2", "state": "output-error",
             "input": {}, "errorText": "no network", "callProviderMetadata": {"gemini": {"thoughtSignature": "x"}}},
            {"type": "step-start"},
            {"type": "text", "text": "It is 20.", "state": "done"},
            {"type": "data-plan", "id": "plan", "data": {}},
            {"type": "tool-pending", "toolCallId": "c3", "state": "input-available", "input": {}}]},
        {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "Thanks"}]}]}
    request = codec.decode_request(body, {}, Context())
    assert request.model == "mock" and request.stream and request.server_url == "http://testserver"
    roles = [m.role for m in request.messages]
    assert roles == ["system", "user", "assistant", "tool", "tool", "assistant", "user"]
    user = request.messages[1]
    assert isinstance(user.parts[0], ImagePart) and user.parts[0].media_type == "image/png"
    assert user.parts[1] == TextPart("[a.txt]\nhi") and user.parts[2] == TextPart("Describe")
    first = request.messages[2].parts
    assert first[0] == ReasoningPart("hm", {"anthropic": {"signature": "s"}})
    assert first[1] == TextPart("Calling")
    assert first[2] == ToolCallPart("c1", "get_weather", '{"city": "SF"}')
    assert first[3] == ToolCallPart("c2", "lookup", "{}", {"gemini": {"thoughtSignature": "x"}})
    assert request.messages[3].parts == (ToolResultPart("c1", '{"t": 20}', "get_weather"),)
    assert request.messages[4].parts == (ToolResultPart("c2", "no network", "lookup", is_error=True),)
    assert request.messages[5].parts == (TextPart("It is 20."),)


def test_decode_overrides_in_order():
    headers = {"X-AI-Model": "from-header", "X-AI-Temperature": "0.3", "X-AI-Max-Tokens": "99"}
    assert codec.decode_overrides({}, headers) == codec.Overrides("from-header", 0.3, 99, None)
    body = {"model": "top", "temperature": 0.5, "options": {"maxTokens": 12, "system": "S"}}
    assert codec.decode_overrides(body, headers) == codec.Overrides("top", 0.5, 12, "S")
    body["options"]["model"] = "opt"
    assert codec.decode_overrides(body, {}).model == "opt"
    request = codec.decode_request({**body, "messages": [{"id": "u", "role": "user", "parts": [{"type": "text", "text": "x"}]}]},
                                   {}, Context())
    assert (request.model, request.temperature, request.max_tokens) == ("opt", 0.5, 12)
    assert request.messages[0].role == "system" and request.messages[0].text == "S"


@pytest.mark.parametrize("body, param", [
    ([], None),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "parts": []}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "parts": [{"type": "file", "mediaType": "application/zip", "url": "data:x"}]}]},
     "messages[0].parts[0].mediaType"),
    ({"trigger": "bogus", "messages": [{"role": "user", "parts": [{"type": "text", "text": "x"}]}]}, "trigger"),
    ({"temperature": "hot", "messages": [{"role": "user", "parts": [{"type": "text", "text": "x"}]}]}, "temperature"),
    ({"tools": [{"type": "function", "function": {}}], "messages": [{"role": "user", "parts": [{"type": "text", "text": "x"}]}]},
     "tools[0].name"),
])
def test_bad_requests_name_the_field(body, param):
    with pytest.raises(BadRequest) as caught:
        codec.decode_request(body, {}, Context())
    assert caught.value.param == param


def test_tools_in_every_shape():
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    for tools in ([{"type": "function", "function": {"name": "w", "description": "d", "parameters": schema}}],
                  [{"name": "w", "description": "d", "inputSchema": schema}],
                  {"w": {"description": "d", "inputSchema": {"jsonSchema": schema}}}):
        request = codec.decode_request({"tools": tools, "messages": [{"role": "user", "parts": [{"type": "text", "text": "x"}]}]},
                                       {}, Context())
        assert [(t.name, t.description, dict(t.parameters)) for t in request.tools] == [("w", "d", schema)]


def test_is_ui_request():
    assert codec.is_ui_request({"trigger": "submit-message", "messages": []})
    assert codec.is_ui_request({"messages": [{"role": "user", "parts": []}]})
    assert not codec.is_ui_request({"messages": [{"role": "user", "content": "hi"}]})
    assert not codec.is_ui_request({"messages": [{"role": "user", "content": "hi", "parts": []}]})


# -- the assistant message the server stores -------------------------------------

def test_builder_assembles_what_the_client_assembles():
    events = [ReasoningStart("r"), ReasoningDelta("r", "hm"), ReasoningEnd("r", {"anthropic": {"signature": "s"}}),
              TextDelta("0", "Hi"), TextEnd("0"), ToolInputStart("c1", "w"), ToolInputDelta("c1", "{}"),
              ToolCall("c1", "w", "{}"), PlanUpdate("a", (PlanStep("a", "A", "running"),)),
              PlanUpdate("a", (PlanStep("a", "A", "completed"),)), File("image/png", "https://x/y.png"),
              Usage(1, 2), Finish("tool-calls")]
    builder = codec.MessageBuilder("m1")
    for chunk in codec.chunks(iter(events), "m1", {"model": "mock", "preset": None}):
        builder.add(chunk)
    message = builder.message()
    assert message == {"id": "m1", "role": "assistant", "metadata": {
        "model": "mock", "preset": None, "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}},
        "parts": [{"type": "step-start"},
                  {"type": "reasoning", "id": "r0", "text": "hm", "state": "done",
                   "providerMetadata": {"anthropic": {"signature": "s"}}},
                  {"type": "text", "text": "Hi", "state": "done"},
                  {"type": "dynamic-tool", "toolName": "w", "toolCallId": "c1", "state": "input-available", "input": {}},
                  {"type": "data-plan", "id": "plan", "data": {"currentTaskId": "a",
                                                               "steps": [{"id": "a", "title": "A", "status": "completed"}]}},
                  {"type": "file", "url": "https://x/y.png", "mediaType": "image/png"}]}
    assert builder.finish_reason == "tool-calls"


def test_builder_marks_a_failed_turn():
    builder = codec.MessageBuilder("m2")
    for chunk in codec.chunks(guard(iter([TextDelta("0", "Par"), Error(UpstreamError("boom", code="upstream_error"))])), "m2"):
        builder.add(chunk)
    message = builder.message("failed")
    assert message["metadata"] == {"status": "failed", "errorText": "boom (upstream_error)"}
    assert message["parts"][1] == {"type": "text", "text": "Par", "state": "streaming"}


def test_codec_is_pure():
    import subprocess
    import sys
    code = ("import sys, proxy.surfaces.ui_chat_codec; "
            "print(sorted(m for m in ('flask', 'requests') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=pathlib.Path(__file__).parent.parent, check=True).stdout.strip()
    assert out == "[]"


def test_regenerate_drops_a_trailing_reply():
    messages = [{"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]},
                {"id": "a", "role": "assistant", "parts": [{"type": "text", "text": "old"}]}]
    request = codec.decode_request({"trigger": "regenerate-message", "messageId": "a", "messages": messages}, {}, Context())
    assert [m.role for m in request.messages] == ["user"]
    request = codec.decode_request({"trigger": "submit-message", "messages": messages}, {}, Context())
    assert [m.role for m in request.messages] == ["user", "assistant"]
