"""Anthropic thinking blocks survive an OpenAI Chat Completions tool loop as LiteLLM's `thinking_blocks`.

    openai SDK -> Switchboard /v1/chat/completions -> Anthropic provider -> fake Anthropic (thinking rules on)
    turn 1: thinking (+ signature) and tool_use -> message.thinking_blocks / delta.thinking_blocks
    turn 2: the SDK's message.model_dump() sent back -> thinking block, signature unchanged, before tool_use

The fake answers 400 like the API when the assistant turn of a thinking tool
loop does not start with its thinking block, or when a signature or its text
changed (tests/fakes/anthropic.py, `require_thinking`).
"""
from __future__ import annotations

import contextlib
import json

import openai
import pytest
from openai import OpenAI

from proxy import create_app
from proxy.canonical import (
    ChatResult,
    Finish,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningPart,
    ReasoningStart,
    ResponseMetadata,
    TextPart,
    ToolCall,
    ToolCallPart,
    ToolInputStart,
    accumulate,
)
from proxy.canonical.opaque import pack
from proxy.config import ProviderSettings
from proxy.errors import BadRequest
from proxy.providers.anthropic.response import decode_response
from proxy.sse import parse
from proxy.surfaces.openai_chat_codec import Completion, EncodeOptions, decode_messages, encode_result, encode_stream

from .fakes import anthropic as anthropic_fake
from .fakes import scripted
from .fakes.anthropic import AnthropicUpstream
from .fakes.live import serve
from .fakes.upstream import Received, Reply, transcript

pytestmark = pytest.mark.integration

MODEL = "anthropic/claude-sonnet-4-5"
THOUGHT = ("The user wants the weather. ", "I should call get_weather.")
STREAM_SIGNATURE = scripted.template("anthropic", "thinking_signature.sse")[5][1]["delta"]["signature"]
MESSAGE_SIGNATURE = scripted.anthropic_message(scripted.Answer(reasoning=THOUGHT))["content"][0]["signature"]
# tests/transcripts/anthropic/redacted_thinking_tool_use.sse
REDACTED_THOUGHT = "I need the time; the clock tool takes no input."
REDACTED_SIGNATURE = "EuYBCkQYAiJAxSig1Demo+sig/2=="
REDACTED_DATA = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "description": "The time now"}}
COMPLETION = Completion("chatcmpl-1", "m", 1)


# ---------------------------------------------------------------- the codec


def anthropic_result() -> ChatResult:
    """What the Anthropic provider makes of thinking, redacted thinking and a tool call."""
    body = scripted.anthropic_message(scripted.Answer(reasoning=THOUGHT, call=("get_weather", {"city": "Oslo"})))
    body["content"].insert(1, {"type": "redacted_thinking", "data": REDACTED_DATA})
    return accumulate(decode_response(json.dumps(body).encode()))


def test_a_whole_message_carries_thinking_blocks_that_decode_to_the_providers_parts():
    result = anthropic_result()
    message = encode_result(result, COMPLETION, EncodeOptions())["choices"][0]["message"]
    assert message["reasoning_content"] == "".join(THOUGHT)
    assert message["thinking_blocks"] == [
        {"type": "thinking", "thinking": "".join(THOUGHT), "signature": pack({"anthropic": {"signature": MESSAGE_SIGNATURE}})},
        {"type": "redacted_thinking", "data": pack({"anthropic": {"redactedData": REDACTED_DATA}})},
    ]
    (decoded,) = decode_messages([message])
    provider_parts = [part for part in result.parts if isinstance(part, ReasoningPart)]
    assert [p for p in decoded.parts if isinstance(p, ReasoningPart)] == provider_parts  # same metadata shape
    assert provider_parts[0].provider_metadata == {"anthropic": {"signature": MESSAGE_SIGNATURE}}
    assert [type(p) for p in decoded.parts] == [ReasoningPart, ReasoningPart, ToolCallPart]  # no duplicate text


def test_the_chunk_closing_a_signed_block_carries_it_whole_and_indexed():
    events = [
        ResponseMetadata("msg_1", "m"),
        ReasoningStart("r1"), ReasoningDelta("r1", "Think "), ReasoningDelta("r1", "hard."),
        ReasoningEnd("r1", {"anthropic": {"signature": "sig-1"}}),
        ReasoningStart("r2", {"anthropic": {"redactedData": "opaque"}}), ReasoningEnd("r2", {"anthropic": {"redactedData": "opaque"}}),
        ReasoningStart("r3"), ReasoningDelta("r3", "unsigned"), ReasoningEnd("r3"),  # nothing to send back
        ToolInputStart("toolu_1", "now"), ToolCall("toolu_1", "now", "{}"), Finish("tool-calls", "tool_use"),
    ]
    chunks = [json.loads(e.data) for e in parse(b"".join(encode_stream(events, COMPLETION, EncodeOptions())))
              if e.data != "[DONE]"]
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    blocks = [delta["thinking_blocks"] for delta in deltas if "thinking_blocks" in delta]
    assert blocks == [[{"index": 0, "type": "thinking", "thinking": "Think hard.",
                        "signature": pack({"anthropic": {"signature": "sig-1"}})}],
                      [{"index": 1, "type": "redacted_thinking", "data": pack({"anthropic": {"redactedData": "opaque"}})}]]
    closing = next(i for i, d in enumerate(deltas) if "thinking_blocks" in d)
    assert [d.get("reasoning_content") for d in deltas[1:closing]] == ["Think ", "hard."]  # after its text
    assert deltas[0] == {"role": "assistant", "content": ""}


def test_a_redacted_block_first_still_opens_with_the_role_chunk():
    events = [ReasoningStart("r", {"anthropic": {"redactedData": "x"}}), ReasoningEnd("r", {"anthropic": {"redactedData": "x"}}),
              Finish("stop", "end_turn")]
    frames = [json.loads(e.data) for e in parse(b"".join(encode_stream(events, COMPLETION, EncodeOptions())))
              if e.data != "[DONE]"]
    assert frames[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert frames[1]["choices"][0]["delta"] == {"thinking_blocks": [{"index": 0, "type": "redacted_thinking",
                                                                            "data": pack({"anthropic": {"redactedData": "x"}})}]}


def test_reasoning_without_metadata_adds_no_thinking_blocks():
    result = ChatResult(parts=[ReasoningPart("plain thought"), TextPart("hi")], finish=Finish("stop", "STOP"))
    message = encode_result(result, COMPLETION, EncodeOptions())["choices"][0]["message"]
    assert "thinking_blocks" not in message and message["reasoning_content"] == "plain thought"


def test_any_providers_metadata_rides_opaque_and_comes_back_unchanged():
    """The surface reads no provider's namespace: Gemini's (or any) metadata round-trips as it is."""
    metadata = {"gemini": {"thoughtSignature": "c2ln", "onText": True}}
    result = ChatResult(parts=[ReasoningPart("gemini thought", metadata), ReasoningPart("", {"x": {"y": 1}}),
                               TextPart("hi")], finish=Finish("stop", "STOP"))
    message = encode_result(result, COMPLETION, EncodeOptions())["choices"][0]["message"]
    assert message["reasoning_content"] == "gemini thought"
    (decoded,) = decode_messages([message])
    assert [p for p in decoded.parts if isinstance(p, ReasoningPart)] == result.parts[:2]


@pytest.mark.parametrize("field, value", [("signature", "EqQBraw-anthropic-signature=="), ("signature", "sbm1.!!"),
                                          ("data", "sbm1." + "WyJ4Il0")])
def test_a_slot_this_server_did_not_fill_is_a_bad_request_naming_it(field, value):
    kind = "thinking" if field == "signature" else "redacted_thinking"
    block = {"type": kind, "thinking": "t", field: value}
    with pytest.raises(BadRequest) as caught:
        decode_messages([{"role": "assistant", "content": "x", "thinking_blocks": [block]}])
    assert caught.value.param == f"messages[0].thinking_blocks[0].{field}"


def test_decoding_keeps_unsigned_blocks_as_plain_reasoning_and_falls_back_to_reasoning_content():
    (message,) = decode_messages([{"role": "assistant", "content": "x", "reasoning_content": "r",
                                   "thinking_blocks": [{"index": 0, "type": "thinking", "thinking": "t"}]}])
    assert message.parts[0] == ReasoningPart("t")
    (message,) = decode_messages([{"role": "assistant", "content": "x", "reasoning_content": "r", "thinking_blocks": []}])
    assert message.parts[0] == ReasoningPart("r")


@pytest.mark.parametrize("blocks, param", [
    ({"type": "thinking"}, "messages[0].thinking_blocks"),
    ([{"type": "thinking", "thinking": 3, "signature": "s"}], "messages[0].thinking_blocks[0].thinking"),
    ([{"type": "thinking", "thinking": "t", "signature": 5}], "messages[0].thinking_blocks[0].signature"),
    ([{"type": "redacted_thinking"}], "messages[0].thinking_blocks[0].data"),
    ([{"type": "musing", "text": "t"}], "messages[0].thinking_blocks[0].type"),
])
def test_malformed_thinking_blocks_are_a_bad_request_naming_the_field(blocks, param):
    with pytest.raises(BadRequest) as caught:
        decode_messages([{"role": "assistant", "content": "x", "thinking_blocks": blocks}])
    assert caught.value.param == param


# ---------------------------------------------------------------- the SDK tool loop


def responder(received: Received) -> Reply:
    """Turn 1: think, then call get_weather; turn 2 (a tool result is back): quote it."""
    turn = scripted.anthropic_turn(received)
    if turn.tool_result:
        answer = scripted.Answer(scripted.quote_text(*turn.tool_result))
    else:
        answer = scripted.Answer(reasoning=THOUGHT, call=("get_weather", {"city": turn.prompt}))
    if turn.stream:
        return Reply.sse(scripted.anthropic_stream(answer))
    return Reply.json(scripted.anthropic_message(answer))


@contextlib.contextmanager
def live_anthropic():
    fake = AnthropicUpstream(
        default=responder, require_thinking=True,
        signatures={STREAM_SIGNATURE: "".join(THOUGHT), MESSAGE_SIGNATURE: "".join(THOUGHT),
                    REDACTED_SIGNATURE: REDACTED_THOUGHT},
        redacted={REDACTED_DATA},
    )
    with fake:
        providers = {"anthropic": ProviderSettings(api_key=anthropic_fake.KEY, base_url=fake.url,
                                                   key_variable="ANTHROPIC_API_KEY")}
        app = create_app({"demo_delay": 0, "max_retries": 0, "providers": providers})
        with serve(app) as base_url:
            yield OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0, timeout=20), fake


def first_turn(client: OpenAI, stream: bool, tool: dict = WEATHER_TOOL) -> tuple[list, dict, object]:
    messages = [{"role": "user", "content": "Lisbon"}]
    ask = dict(model=MODEL, messages=messages, tools=[tool], reasoning_effort="low")
    if stream:
        with client.chat.completions.stream(**ask) as events:
            completion = events.get_final_completion()
        message = completion.choices[0].message.model_dump(exclude_none=True, exclude={"parsed"})
    else:
        completion = client.chat.completions.create(**ask)
        message = completion.choices[0].message.model_dump(exclude_none=True)
    assert completion.choices[0].finish_reason == "tool_calls"
    return messages, message, completion.choices[0].message.tool_calls[0]


def second_turn(client: OpenAI, messages: list, message: dict, call, stream: bool, tool: dict = WEATHER_TOOL) -> str:
    messages += [message, {"role": "tool", "tool_call_id": call.id, "content": "22 degrees and sunny"}]
    ask = dict(model=MODEL, messages=messages, tools=[tool], reasoning_effort="low")
    if stream:
        return "".join(c.choices[0].delta.content or ""
                       for c in client.chat.completions.create(**ask, stream=True) if c.choices)
    return client.chat.completions.create(**ask).choices[0].message.content


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_sdk_thinking_tool_loop_sends_the_signed_thinking_back_before_the_tool_use(stream):
    with live_anthropic() as (client, fake):
        messages, message, call = first_turn(client, stream)
        signature = STREAM_SIGNATURE if stream else MESSAGE_SIGNATURE
        (block,) = message["thinking_blocks"]
        assert {k: v for k, v in block.items() if k != "index"} == {
            "type": "thinking", "thinking": "".join(THOUGHT), "signature": pack({"anthropic": {"signature": signature}})}
        answer = second_turn(client, messages, message, call, stream=not stream)
        assert answer == "The tool get_weather returned: 22 degrees and sunny"
        assistant = fake.received[1].json["messages"][1]
        assert assistant["role"] == "assistant"
        assert assistant["content"] == [
            {"type": "thinking", "thinking": "".join(THOUGHT), "signature": signature},
            {"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Lisbon"}},
        ]


def test_sdk_stream_keeps_redacted_thinking_and_several_blocks_in_order():
    with live_anthropic() as (client, fake):
        fake.reply(Reply.sse(transcript("anthropic", "redacted_thinking_tool_use.sse")))
        messages, message, call = first_turn(client, stream=True, tool=TIME_TOOL)
        assert [block["index"] for block in message["thinking_blocks"]] == [0, 1]
        answer = second_turn(client, messages, message, call, stream=False, tool=TIME_TOOL)
        assert answer == "The tool get_time returned: 22 degrees and sunny"
        assert fake.received[1].json["messages"][1]["content"] == [
            {"type": "thinking", "thinking": REDACTED_THOUGHT, "signature": REDACTED_SIGNATURE},
            {"type": "redacted_thinking", "data": REDACTED_DATA},
            {"type": "tool_use", "id": "toolu_01ClockNoArgs", "name": "get_time", "input": {}},
        ]


def test_a_client_that_drops_thinking_blocks_gets_the_apis_400():
    """The control: reasoning_content alone (no signature) is what the API rejects."""
    with live_anthropic() as (client, fake):
        messages, message, call = first_turn(client, stream=False)
        message.pop("thinking_blocks")
        assert message["reasoning_content"]
        with pytest.raises(openai.BadRequestError) as caught:
            second_turn(client, messages, message, call, stream=False)
        assert "must start with a thinking block" in caught.value.message
        assert [b["type"] for b in fake.received[1].json["messages"][1]["content"]] == ["tool_use"]


def test_a_changed_signature_gets_the_apis_400():
    with live_anthropic() as (client, _):
        messages, message, call = first_turn(client, stream=True)
        message["thinking_blocks"][0]["signature"] = pack({"anthropic": {"signature": "EqQBforged=="}})
        with pytest.raises(openai.BadRequestError) as caught:
            second_turn(client, messages, message, call, stream=False)
        assert "Invalid `signature`" in caught.value.message
