"""The Open Responses codec without a server: decoding every input form,
encoding streams against golden frames, and every event and Response object
validated by the official `openresponses-types` models."""
from __future__ import annotations

import os
import re
from pathlib import Path

import orjson
import pytest

from proxy.canonical import (
    ChatResult,
    Error,
    Finish,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningPart,
    ReasoningStart,
    ResponseMetadata,
    TextDelta,
    TextEnd,
    TextPart,
    TextStart,
    ToolCall,
    ToolCallPart,
    ToolInputDelta,
    ToolInputEnd,
    ToolInputStart,
    ToolResultPart,
    Usage,
)
from proxy.errors import BadRequest, UpstreamError
from proxy.surfaces import responses_codec as codec
from proxy.surfaces.responses_codec import opaque
from tests.responses_support import validate_response, validate_stream

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden" / "responses"
SIGNED = {"anthropic": {"signature": "EqQBCkYIBxgCKkB0c2lnbmF0dXJl"}}

TEXT = [ResponseMetadata("up-1", "mock", 1), TextStart("t1"), TextDelta("t1", "Hello"), TextDelta("t1", " world"),
        TextEnd("t1"), Usage(5, 2), Finish("stop", "stop")]
TOOL = [ToolInputStart("call_1", "get_weather"), ToolInputDelta("call_1", '{"location":'),
        ToolInputDelta("call_1", '"San Francisco, CA"}'), ToolInputEnd("call_1"),
        ToolCall("call_1", "get_weather", '{"location":"San Francisco, CA"}'), Usage(9, 7), Finish("tool-calls")]
REASONING = [ReasoningStart("r1"), ReasoningDelta("r1", "Let me think."), ReasoningEnd("r1", SIGNED),
             TextStart("t1"), TextDelta("t1", "Four."), TextEnd("t1"), Usage(4, 6, reasoning_tokens=3), Finish()]
LENGTH = [TextStart("t1"), TextDelta("t1", "This is cut"), Usage(3, 3), Finish("length", "max_tokens")]
FAILED = [TextStart("t1"), TextDelta("t1", "This starts well"), Error(UpstreamError("the upstream died"))]


def options(**body) -> codec.ResponseOptions:
    return codec.decode_options({"model": "mock", "input": "hi", **body})


def run(events, naming="reasoning", **body) -> tuple[list[bytes], codec.ResponseState]:
    state = codec.ResponseState(options(**body), response_id="resp_1", created_at=1_700_000_000,
                                reasoning_naming=naming)
    return list(codec.encode_stream(events, state)), state


def parse(frames: list[bytes]) -> list[dict]:
    assert frames[-1] == b"data: [DONE]\n\n"
    events = []
    for frame in frames[:-1]:
        # one event per SSE message: an event line equal to its type, one data line
        event_line, data_line, blank, end = frame.decode().split("\n")
        assert (blank, end) == ("", "")
        event = orjson.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {event['type']}"
        events.append(event)
    return events


def normalized(frames: list[bytes]) -> str:
    """Frames with random item ids numbered in order and wall-clock times zeroed."""
    text = b"".join(frames).decode()
    names: dict[str, str] = {}

    def rename(match: re.Match) -> str:
        return names.setdefault(match.group(0), f"{match.group(1)}_{len(names) + 1}")

    text = re.sub(r"\b(msg|fc|rs)_[0-9a-f]{24}\b", rename, text)
    return re.sub(r'"completed_at":\d+', '"completed_at":0', text)


@pytest.mark.parametrize("name, events", [("text", TEXT), ("tool_call", TOOL), ("reasoning", REASONING),
                                          ("length", LENGTH), ("failed", FAILED)])
def test_stream_matches_golden_frames_and_validates(name, events):
    frames, state = run(events)
    parsed = parse(frames)
    validate_stream(parsed)
    golden = GOLDEN / f"{name}.sse"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(normalized(frames))
    assert normalized(frames) == golden.read_text()
    assert parsed[-1]["response"] == state.final


def test_text_stream_sequence_and_final_object():
    events = parse(run(TEXT)[0])
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert events[0]["response"]["output"] == [] and events[0]["response"]["usage"] is None
    assert all(e["logprobs"] == [] for e in events if e["type"].startswith("response.output_text."))
    final = events[-1]["response"]
    assert final["status"] == "completed" and final["completed_at"] is not None
    assert final["output"][0]["content"][0]["text"] == "Hello world"
    assert final["usage"] == {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7,
                              "input_tokens_details": {"cached_tokens": 0},
                              "output_tokens_details": {"reasoning_tokens": 0}}
    assert {e["response"]["id"] for e in events if "response" in e} == {"resp_1"}


def test_reasoning_naming_is_one_or_the_other():
    default = {e["type"] for e in parse(run(REASONING)[0])}
    openai_style = {e["type"] for e in parse(run(REASONING, naming="reasoning_text")[0])}
    assert {"response.reasoning.delta", "response.reasoning.done"} <= default
    assert not any(t.startswith("response.reasoning_text.") for t in default)
    assert {"response.reasoning_text.delta", "response.reasoning_text.done"} <= openai_style
    assert not any(t.startswith("response.reasoning.") for t in openai_style)
    with pytest.raises(ValueError):
        codec.ResponseState(options(), reasoning_naming="both")


def test_signature_round_trips_through_encrypted_content():
    _, state = run(REASONING)
    reasoning = state.final["output"][0]
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"].startswith("sbm1.")
    messages = codec.build_messages(None, [], [reasoning, state.final["output"][1],
                                               {"type": "message", "role": "user", "content": "next"}])
    assert messages[0].role == "assistant"
    assert messages[0].parts[0] == ReasoningPart("Let me think.", SIGNED)
    assert messages[0].parts[1] == TextPart("Four.")


def test_foreign_encrypted_content_is_kept_verbatim():
    item = {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAB-openai-blob"}
    part = codec.build_messages(None, [], [item])[0].parts[0]
    assert part.provider_metadata == {"responses": {"encrypted_content": "gAAAAB-openai-blob"}}
    assert opaque.encrypted_from_metadata(part.provider_metadata) == "gAAAAB-openai-blob"


def test_length_stop_is_incomplete_and_failure_is_failed():
    events = parse(run(LENGTH)[0])
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-1]["response"]["output"][0]["status"] == "incomplete"
    events = parse(run(FAILED)[0])
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1]["response"]["error"] == {"code": "upstream_error", "message": "the upstream died"}
    state = codec.ResponseState(options())
    ws_events = list(codec.stream_events(FAILED, state, error_event=False))
    assert "error" not in [e["type"] for e in ws_events] and ws_events[-1]["type"] == "response.failed"


def test_tool_call_without_streamed_input_still_gets_argument_events():
    events = parse(run([ToolCall("call_9", "f", '{"a":1}'), Finish("tool-calls")])[0])
    assert [e["type"] for e in events[2:-1]] == [
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done"]
    assert events[-2]["item"]["call_id"] == "call_9" and events[-2]["item"]["arguments"] == '{"a":1}'


def test_terminal_callback_runs_before_the_terminal_event():
    seen = []
    state = codec.ResponseState(options(), on_terminal=lambda response: seen.append(response["status"]))
    for event in codec.stream_events(TEXT, state):
        if event["type"] == "response.completed":
            assert seen == ["completed"]
    assert seen == ["completed"]


def test_encode_result_has_every_key():
    result = ChatResult(parts=[ReasoningPart("hm", SIGNED), TextPart("Hi"), ToolCallPart("call_2", "f", "{}")],
                        usage=Usage(1, 2), finish=Finish("tool-calls"))
    response = codec.encode_result(result, codec.ResponseState(options(instructions="Be brief", metadata={"a": "b"})))
    validate_response(response)
    assert [item["type"] for item in response["output"]] == ["reasoning", "message", "function_call"]
    assert response["instructions"] == "Be brief" and response["metadata"] == {"a": "b"}
    assert response["temperature"] == 1.0 and response["top_p"] == 1.0 and response["tool_choice"] == "auto"


# -- decoding -------------------------------------------------------------------


def test_string_input_and_instructions():
    request = codec.decode_request({"model": "mock", "input": "Hi", "instructions": "Be a pirate",
                                    "max_output_tokens": 50, "temperature": 0.2, "top_p": 0.5,
                                    "reasoning": {"effort": "low", "summary": "auto"}})
    assert [(m.role, m.text) for m in request.messages] == [("system", "Be a pirate"), ("user", "Hi")]
    assert (request.max_tokens, request.temperature, request.top_p, request.reasoning_effort) == (50, 0.2, 0.5, "low")
    assert request.stream is False


def test_every_item_form():
    image = "data:image/png;base64,iVBORw0KGgo="
    pdf = "data:application/pdf;base64,JVBERi0xLjQK"
    request = codec.decode_request({"model": "mock", "tools": [{"type": "function", "name": "get_weather",
                                                                "parameters": {"type": "object"}}], "input": [
        {"role": "developer", "content": "Rules"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Look"}, {"type": "input_image", "image_url": image, "detail": "low"},
            {"type": "input_file", "filename": "a.pdf", "file_data": pdf},
            {"type": "input_file", "filename": "n.txt", "file_data": "data:text/plain;base64,aGVsbG8="}]},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "sum"}]},
        {"type": "message", "role": "assistant", "phase": "commentary", "content": "Checking."},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"location":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": [{"type": "input_text", "text": "sunny"}]},
        {"type": "message", "role": "assistant", "phase": "final_answer",
         "content": [{"type": "output_text", "text": "Sunny.", "annotations": []}]},
        {"type": "message", "role": "user", "content": "Thanks"},
    ]})
    roles = [m.role for m in request.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    user = request.messages[1].parts
    assert user[0] == TextPart("Look") and user[1].url == image and user[1].detail == "low"
    assert "a.pdf" in user[2].text and user[3].text.endswith("hello")
    assistant = request.messages[2].parts
    assert assistant[0] == ReasoningPart("sum", None) and assistant[1] == TextPart("Checking.")
    assert assistant[2] == ToolCallPart("call_1", "get_weather", '{"location":"Paris"}')
    assert request.messages[3].parts == (ToolResultPart("call_1", "sunny", "get_weather"),)


def test_input_items_are_normalized_with_ids():
    items = codec.input_items({"input": [{"role": "user", "content": "Hi"},
                                         {"type": "message", "role": "assistant", "content": "Yo"}]})
    assert items[0]["type"] == "message" and items[0]["content"] == [{"type": "input_text", "text": "Hi"}]
    assert items[1]["content"] == [{"type": "output_text", "text": "Yo", "annotations": []}]
    assert all(item["id"].startswith("msg_") for item in items)


def test_tool_choice_forms():
    tools = [{"type": "function", "name": "a"}, {"type": "function", "name": "b"}]
    request = codec.decode_request({"model": "m", "input": "x", "tools": tools,
                                    "tool_choice": {"type": "function", "name": "b"}})
    assert request.tool_choice == {"name": "b"}
    request = codec.decode_request({"model": "m", "input": "x", "tools": tools, "tool_choice": {
        "type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "b"}]}})
    assert [t.name for t in request.tools] == ["b"] and request.tool_choice == "required"
    assert codec.decode_options({"model": "m", "tools": tools, "tool_choice": "none"}).tool_choice == "none"
    echoed = codec.decode_options({"model": "m", "tools": tools}).tools
    assert echoed[0] == {"type": "function", "name": "a", "description": None, "parameters": None, "strict": None}


@pytest.mark.parametrize("body, param", [
    ({"input": "x", "model": 3}, "model"),
    ({"model": "m"}, "input"),
    ({"model": "m", "input": 5}, "input"),
    ({"model": "m", "input": [{"type": "mystery"}]}, "input[0].type"),
    ({"model": "m", "input": [{"role": "wizard", "content": "x"}]}, "input[0].role"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "call_x", "output": "o"}]},
     "input[0].call_id"),
    ({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"model": "m", "input": "x", "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools[0].name"),
    ({"model": "m", "input": "x", "tool_choice": {"type": "function", "name": "f"}}, "tool_choice"),
    ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": "m", "input": "x", "reasoning": {"effort": "huge"}}, "reasoning.effort"),
    ({"model": "m", "input": "x", "truncation": "sometimes"}, "truncation"),
    ({"model": "m", "input": "x", "store": "yes"}, "store"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
    ({"model": "m", "input": [{"type": "compaction", "encrypted_content": "nope"}]}, "input[0].encrypted_content"),
])
def test_bad_input_names_the_field(body, param):
    with pytest.raises(BadRequest) as caught:
        codec.decode_request(body)
    assert caught.value.param == param
    assert codec.error_body(caught.value)["error"]["param"] == param


def test_tool_output_may_continue_a_previous_response():
    body = {"model": "m", "previous_response_id": "resp_1",
            "input": [{"type": "function_call_output", "call_id": "call_1", "output": "64 degrees"}]}
    assert codec.decode_request(body).messages[0].role == "tool"  # checked later, against the stored chain
    history = [{"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": "{}"}]
    messages = codec.build_messages("Be brief", history, codec.input_items(body))
    assert [m.role for m in messages] == ["system", "assistant", "tool"]
    assert messages[2].parts[0].name == "get_weather"
    with pytest.raises(BadRequest):
        codec.build_messages(None, [], codec.input_items(body))


def test_item_reference_resolves_against_history():
    history = [{"type": "message", "id": "msg_a", "role": "user", "content": "remember papaya"}]
    messages = codec.build_messages(None, history, [{"type": "item_reference", "id": "msg_a"}])
    assert [m.text for m in messages] == ["remember papaya", "remember papaya"]
    with pytest.raises(BadRequest):
        codec.build_messages(None, [], [{"type": "item_reference", "id": "msg_b"}])


def test_compaction_item_becomes_a_summary():
    item = {"type": "compaction", "encrypted_content": opaque.seal_summary("We launch Tuesday.")}
    messages = codec.build_messages(None, [], [item])
    assert messages[0].role == "system" and "We launch Tuesday." in messages[0].text


def test_tool_call_metadata_rides_in_an_extension_field():
    signed = {"gemini": {"thoughtSignature": "not base64 at all"}}
    _, state = run([ToolCall("call_7", "f", "{}", signed), Finish("tool-calls")])
    (item,) = state.final["output"]
    assert item[opaque.CALL_METADATA].startswith("sbm1.")
    (message,) = codec.build_messages(None, [], [item])
    assert message.parts == (ToolCallPart("call_7", "f", "{}", signed),)
    with pytest.raises(BadRequest) as caught:
        codec.build_messages(None, [], [dict(item, **{opaque.CALL_METADATA: "forged"})])
    assert caught.value.param == f"input[0].{opaque.CALL_METADATA}"
