"""The OpenAI Chat Completions codec as pure functions: exact frames, exact objects."""
from __future__ import annotations

import json

import pytest

from proxy import sse
from proxy.canonical import (
    ChatResult,
    Error,
    File,
    Finish,
    ImagePart,
    ReasoningDelta,
    ReasoningPart,
    Source,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallPart,
    ToolInputDelta,
    ToolInputEnd,
    ToolInputStart,
    ToolResultPart,
    Usage,
)
from proxy.errors import BadRequest, RateLimited, UpstreamError
from proxy.surfaces import openai_chat_codec as codec

pytestmark = pytest.mark.unit

COMPLETION = codec.Completion("chatcmpl-1", "m", 1732000000)
HEAD = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1732000000,"model":"m",'


def chunk(delta: str, finish: str = "null", usage: bool = False) -> str:
    tail = ',"usage":null' if usage else ""
    return f'data: {HEAD}"choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]{tail}}}\n\n'


def encode(events, **options) -> str:
    return b"".join(codec.encode_stream(events, COMPLETION, codec.EncodeOptions(**options))).decode()


# ---------------------------------------------------------------- streaming


def test_text_stream_frames_exactly():
    events = [TextDelta("t", "Hello"), TextDelta("t", " world"), Usage(5, 3), Finish("stop", "stop")]
    assert encode(events) == (
        chunk('{"role":"assistant","content":""}')
        + chunk('{"content":"Hello"}')
        + chunk('{"content":" world"}')
        + chunk("{}", '"stop"')
        + "data: [DONE]\n\n"
    )


def test_include_usage_puts_usage_null_on_chunks_and_a_final_usage_chunk():
    events = [TextDelta("t", "Hi"), Usage(5, 3, reasoning_tokens=1, cached_input_tokens=2), Finish("length")]
    assert encode(events, include_usage=True) == (
        chunk('{"role":"assistant","content":""}', usage=True)
        + chunk('{"content":"Hi"}', usage=True)
        + chunk("{}", '"length"', usage=True)
        + f'data: {HEAD}"choices":[],"usage":{{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8,'
        '"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}}\n\n'
        + "data: [DONE]\n\n"
    )


def test_tool_call_stream_frames_exactly():
    events = [
        ToolInputStart("call_1", "get_weather"),
        ToolInputDelta("call_1", '{"city":'),
        ToolInputDelta("call_1", '"SF"}'),
        ToolInputEnd("call_1"),
        ToolCall("call_1", "get_weather", '{"city":"SF"}'),
        ToolCall("call_2", "get_time", "{}"),  # a provider that reports whole calls only
        Finish("tool-calls", "tool_use"),
    ]
    assert encode(events) == (
        chunk('{"role":"assistant","content":null}')
        + chunk('{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}')
        + chunk('{"tool_calls":[{"index":0,"function":{"arguments":"{\\"city\\":"}}]}')
        + chunk('{"tool_calls":[{"index":0,"function":{"arguments":"\\"SF\\"}"}}]}')
        + chunk('{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]}')
        + chunk("{}", '"tool_calls"')
        + "data: [DONE]\n\n"
    )


def test_tool_call_without_argument_fragments_sends_the_arguments_whole():
    events = [ToolInputStart("c", "f"), ToolInputEnd("c"), ToolCall("c", "f", '{"a":1}'), Finish("tool-calls")]
    frames = encode(events)
    assert chunk('{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\":1}"}}]}') in frames


@pytest.mark.parametrize("unified, called_tools, expected", [
    ("stop", False, "stop"), ("length", False, "length"), ("content-filter", False, "content_filter"),
    ("tool-calls", True, "tool_calls"), ("other", False, "stop"), ("stop", True, "tool_calls"),
    ("length", True, "length"),
])
def test_finish_reasons_map_to_openai_words(unified, called_tools, expected):
    assert codec.finish_reason(unified, called_tools) == expected


def test_reasoning_goes_out_as_reasoning_content_by_default():
    frames = encode([ReasoningDelta("r", "Let me think"), TextDelta("t", "42"), Finish()])
    assert chunk('{"reasoning_content":"Let me think"}') in frames
    assert chunk('{"content":"42"}') in frames


def test_reasoning_field_can_be_named_reasoning():
    frames = encode([ReasoningDelta("r", "hmm"), Finish()], thinking="reasoning")
    assert chunk('{"reasoning":"hmm"}') in frames


def test_workbench_thinking_variant():
    frames = encode([ReasoningDelta("r", "hmm"), TextDelta("t", "ok"), Finish()], thinking="workbench")
    assert chunk('{"content":"hmm","type":"thinking"}') in frames
    assert chunk('{"content":"ok"}') in frames


def test_files_become_markdown_and_sources_become_citations():
    events = [TextDelta("t", "Look:\n"), File("image/png", "https://x/i.png"), File("application/pdf", "https://x/a.pdf"),
              Source("https://a.example", "A"), Finish()]
    frames = encode(events)
    assert chunk('{"content":"![Generated image](https://x/i.png)"}') in frames
    assert chunk('{"content":"[Download file](https://x/a.pdf)"}') in frames
    assert (f'data: {HEAD}"choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"stop"}}],'
            '"citations":["https://a.example"]}\n\n') in frames


def test_error_mid_stream_is_an_error_event_and_the_end():
    error = UpstreamError("the upstream hung up", code="upstream_error")
    frames = encode([TextDelta("t", "Hel"), Error(error), TextDelta("t", "never")], include_usage=True)
    assert frames == (
        chunk('{"role":"assistant","content":""}', usage=True)
        + chunk('{"content":"Hel"}', usage=True)
        + 'data: {"error":{"message":"the upstream hung up","type":"api_error","param":null,"code":"upstream_error"}}\n\n'
    )
    assert "[DONE]" not in frames


def test_every_chunk_parses_and_carries_the_required_fields():
    events = [ReasoningDelta("r", "a"), TextDelta("t", "b"), ToolInputStart("c", "f"), ToolInputDelta("c", "{}"),
              Usage(1, 1), Finish("tool-calls")]
    for event in sse.parse(b"".join(codec.encode_stream(events, COMPLETION, codec.EncodeOptions(True)))):
        if event.data == "[DONE]":
            continue
        body = json.loads(event.data)
        assert (body["id"], body["object"], body["created"], body["model"]) == (
            "chatcmpl-1", "chat.completion.chunk", 1732000000, "m")
        assert all(choice["index"] == 0 for choice in body["choices"])


# ---------------------------------------------------------------- non-streaming


def test_encode_result_text_with_reasoning_and_usage():
    result = ChatResult(parts=[ReasoningPart("thought"), TextPart("Hello")], usage=Usage(5, 3), finish=Finish("stop"))
    assert codec.encode_result(result, COMPLETION, codec.EncodeOptions()) == {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1732000000, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello", "refusal": None,
                                             "annotations": [], "reasoning_content": "thought"},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def test_encode_result_tool_calls():
    result = ChatResult(parts=[ToolCallPart("call_1", "get_weather", '{"city":"SF"}')], finish=Finish("tool-calls"))
    body = codec.encode_result(result, COMPLETION, codec.EncodeOptions())
    assert body["choices"][0]["message"]["content"] is None
    assert body["choices"][0]["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"SF"}'}}]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert "usage" not in body  # unknown usage is left out, not made up


def test_encode_result_files_and_sources():
    result = ChatResult(parts=[TextPart("Here:\n")], files=[File("image/png", "data:image/png;base64,AA")],
                        sources=[Source("https://s.example")], finish=Finish())
    body = codec.encode_result(result, COMPLETION, codec.EncodeOptions())
    assert body["choices"][0]["message"]["content"] == "Here:\n![Generated image](data:image/png;base64,AA)"
    assert body["citations"] == ["https://s.example"]


def test_error_body_has_all_four_keys():
    assert codec.error_body(RateLimited("slow down", retry_after=3)) == {
        "error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"}}


# ---------------------------------------------------------------- decoding


def decode(**body):
    body.setdefault("model", "m")
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return codec.decode_request(body, "default-model", "http://server")


def test_decode_full_request():
    request = decode(
        model="gpt-x", stream=True, temperature=0.5, top_p=1, max_tokens=100, max_completion_tokens=200,
        stop="END", response_format={"type": "json_object"}, user="u1", n=1, reasoning_effort="high",
        tools=[{"type": "function", "function": {"name": "f", "description": "d",
                                                 "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}],
        tool_choice={"type": "function", "function": {"name": "f"}}, seed=3, parallel_tool_calls=False,
        some_vendor_extension={"ignored": True},
    )
    assert (request.model, request.stream, request.temperature, request.top_p) == ("gpt-x", True, 0.5, 1.0)
    assert request.max_tokens == 200  # max_completion_tokens wins
    assert request.stop == ["END"]
    assert request.response_format == {"type": "json_object"}
    assert (request.user, request.reasoning_effort) == ("u1", "high")
    assert request.tools[0].name == "f" and request.tools[0].description == "d"
    assert request.tool_choice == {"name": "f"}
    assert request.extra == {"seed": 3, "parallel_tool_calls": False}
    assert request.server_url == "http://server"


def test_decode_defaults():
    request = codec.decode_request({"messages": [{"role": "user", "content": "hi"}]}, "mock")
    assert (request.model, request.stream, request.tools, request.tool_choice, request.stop) == ("mock", False, [], None, [])


def test_decode_messages_of_every_role():
    messages = codec.decode_messages([
        {"role": "system", "content": "sys"},
        {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": "https://x/i.png", "detail": "high"}}]},
        {"role": "assistant", "content": None, "reasoning_content": "thinking",
         "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "result"}]},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
    ])
    assert [m.role for m in messages] == ["system", "system", "user", "assistant", "tool", "assistant"]
    assert messages[1].text == "dev"
    assert messages[2].parts == (TextPart("look"), ImagePart("https://x/i.png", None, "high"))
    assert messages[3].parts == (ReasoningPart("thinking"), ToolCallPart("call_1", "f", '{"a":1}'))
    assert messages[4].parts == (ToolResultPart("call_1", "result", "f"),)
    assert messages[5].parts == (TextPart("no"),)


@pytest.mark.parametrize("body, param", [
    ({"n": 2}, "n"),
    ({"messages": []}, "messages"),
    ({"messages": "hi"}, "messages"),
    ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {}}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": "https://x"}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "messages[0].content[0].type"),
    ({"tools": {"name": "f"}}, "tools"),
    ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
    ({"tool_choice": {"type": "function", "function": {"name": "missing"}}}, "tool_choice"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": True}, "temperature"),
    ({"max_tokens": 1.5}, "max_tokens"),
    ({"max_completion_tokens": 0}, "max_tokens"),
    ({"stop": [1, 2]}, "stop"),
    ({"response_format": {"type": "yaml"}}, "response_format"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"stream": "yes"}, "stream"),
    ({"user": 5}, "user"),
    ({"model": 5}, "model"),
])
def test_decode_rejects_bad_fields_naming_them(body, param):
    with pytest.raises(BadRequest) as caught:
        decode(**body)
    assert caught.value.param == param
    assert caught.value.status == 400


def test_decode_rejects_a_non_object_body():
    with pytest.raises(BadRequest):
        codec.decode_request(["messages"], "mock")


def test_decode_options():
    assert codec.decode_options({"stream": True, "stream_options": {"include_usage": True}}, {}) == codec.EncodeOptions(True)
    assert codec.decode_options({}, {"X-Switchboard-Thinking": "workbench"}).thinking == "workbench"
    assert codec.decode_options({}, {}, "reasoning").thinking == "reasoning"
    with pytest.raises(BadRequest) as caught:
        codec.decode_options({"stream_options": {"include_usage": True}}, {})
    assert caught.value.param == "stream_options"
    with pytest.raises(BadRequest, match="X-Switchboard-Thinking"):
        codec.decode_options({}, {"X-Switchboard-Thinking": "loud"})


@pytest.mark.parametrize("path", [
    "proxy/surfaces/openai_chat_codec/__init__.py", "proxy/surfaces/openai_chat_codec/decode.py",
    "proxy/surfaces/openai_chat_codec/encode.py", "proxy/auth.py",
])
def test_codec_modules_are_pure(path):
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parent.parent / path).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert not imported & {"flask", "werkzeug", "requests"}
