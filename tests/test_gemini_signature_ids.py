"""Gemini thought signatures survive an OpenAI Chat Completions tool loop, inside the tool call id.

    openai SDK -> Switchboard /v1/chat/completions -> Gemini provider -> fake Gemini (requires signatures)
    turn 1: a functionCall with a thoughtSignature -> tool call id `<id>__thought__<url-safe signature>`
    turn 2: the SDK sends back only the id -> the functionCall goes back with its original signature

The fake answers 400 like Gemini 3 when the signature is missing (tests/fakes/gemini.py,
`require_signatures`), so a lost signature fails these tests the way it fails in production.
"""
from __future__ import annotations

import base64
import contextlib
import json
import re

import openai
import pytest
from openai import OpenAI

from proxy import create_app
from proxy.canonical import ChatRequest, Message, TextPart, ToolCallPart, ToolResultPart
from proxy.config import ProviderSettings
from proxy.providers.gemini.call_ids import SIGNATURE_MARKER, split_call_id, with_signature
from proxy.providers.gemini.decode import ResponseDecoder
from proxy.providers.gemini.request import build_payload

from .fakes import gemini as gemini_fake
from .fakes.live import serve
from .fakes.scripted import filled, quote_text, sse, template
from .fakes.upstream import FakeUpstream, Received, Reply

pytestmark = pytest.mark.integration

# A signature with every character URL-safe base64 changes: `+`, `/` and `=` padding.
SIGNATURE = base64.b64encode(b"\xfb\xff\xbe thought signature \xfe\xfd\xfc?").decode()
MODEL = "gemini/gemini-3-pro-preview"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


# ---------------------------------------------------------------- the id codec


def test_signature_rides_in_the_id_url_safe_and_comes_back_byte_for_byte():
    assert set("+/=") <= set(SIGNATURE)
    call_id = with_signature("call_gemini_r7d_0", SIGNATURE)
    assert call_id.startswith("call_gemini_r7d_0" + SIGNATURE_MARKER)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", call_id)  # Anthropic's tool_use id alphabet, and URL-safe
    assert split_call_id(call_id) == ("call_gemini_r7d_0", SIGNATURE)
    for signature in ("QQ==", "QUI=", "QUJD", "Ab+/"):  # every padding length
        assert split_call_id(with_signature("fc-1", signature)) == ("fc-1", signature)


def test_ids_without_a_usable_signature_are_left_alone():
    assert with_signature("fc-1", None) == "fc-1"
    assert with_signature("fc-1", "CtwBAdHtim9...") == "fc-1"  # not canonical base64: would not map back
    assert with_signature("fc-1", "QUI") == "fc-1"  # unpadded: re-padding would change it
    assert split_call_id("call_abc") == ("call_abc", None)
    assert split_call_id("x__thought__") == ("x__thought__", None)
    assert split_call_id("x__thought__a.b") == ("x__thought__a.b", None)


def test_the_decoder_puts_the_signature_in_the_id_and_keeps_the_metadata():
    decoder = ResponseDecoder("gemini-3-pro-preview")
    events = decoder.feed({"responseId": "r1", "candidates": [{"index": 0, "finishReason": "STOP", "content": {
        "role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "fc-9"},
             "thoughtSignature": SIGNATURE},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}]}}]})
    calls = [event for event in events if event.type == "tool-call"]
    assert [call.id for call in calls] == [with_signature("fc-9", SIGNATURE), "call_gemini_r1_1"]
    assert calls[0].provider_metadata == {"gemini": {"thoughtSignature": SIGNATURE}}
    starts = [event.id for event in events if event.type == "tool-input-start"]
    assert starts == [call.id for call in calls]  # one id from start to end


@pytest.mark.parametrize("gemini_id", ["fc-9", None], ids=["gemini-id", "synthetic-id"])
def test_the_request_builder_recovers_the_signature_from_the_id(gemini_id):
    base = gemini_id or "call_gemini_r1_0"
    call_id = with_signature(base, SIGNATURE)
    messages = [
        Message("user", (TextPart("Paris?"),)),
        Message("assistant", (ToolCallPart(call_id, "get_weather", '{"city": "Paris"}'),)),  # no provider_metadata
        Message("tool", (ToolResultPart(call_id, "sunny"),)),
    ]
    body = build_payload(ChatRequest(MODEL, messages), "gemini-3-pro-preview")
    call = {"name": "get_weather", "args": {"city": "Paris"}}
    response = {"name": "get_weather", "response": {"result": "sunny"}}
    if gemini_id:  # Gemini's own id goes back without the signature, on the call and on its result
        call["id"] = response["id"] = gemini_id
    assert body["contents"][1] == {"role": "model", "parts": [{"functionCall": call, "thoughtSignature": SIGNATURE}]}
    assert body["contents"][2] == {"role": "user", "parts": [{"functionResponse": response}]}
    assert gemini_fake.signature_problem(body) is None


def test_the_fake_rejects_a_current_turn_call_without_its_signature():
    body = {"contents": [
        {"role": "user", "parts": [{"text": "Paris?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {}}}]}]}
    assert "missing a thought_signature" in gemini_fake.signature_problem(body)
    body["contents"].append({"role": "user", "parts": [{"text": "and now?"}]})  # an earlier turn: not checked
    assert gemini_fake.signature_problem(body) is None


# ---------------------------------------------------------------- the SDK tool loop


def answer_parts(received: Received, gemini_id: str | None) -> list[dict]:
    """Turn 1: a signed call; turn 2 (the result is back): quote it."""
    last = received.json["contents"][-1]["parts"]
    result = next((part["functionResponse"] for part in last if "functionResponse" in part), None)
    if result is None:
        call = {"name": "get_weather", "args": {"city": "Lisbon"}}
        if gemini_id:
            call["id"] = gemini_id
        return [{"functionCall": call, "thoughtSignature": SIGNATURE}]
    return [{"text": quote_text(result["name"], result["response"]["result"])}]


def gemini_reply(gemini_id: str | None):
    def answer(received: Received) -> Reply:
        ((_, last),) = template("gemini", "plain_text.sse")[-1:]
        data = filled(last)
        data["candidates"][0]["content"]["parts"] = answer_parts(received, gemini_id)
        if received.path.endswith(":streamGenerateContent"):
            return Reply.sse(sse([(None, data)]))
        return Reply.json(data)

    return gemini_fake.gemini(answer, require_signatures=True)


@contextlib.contextmanager
def live_gemini(gemini_id: str | None):
    with FakeUpstream(default=gemini_reply(gemini_id)) as fake:
        providers = {"gemini": ProviderSettings(api_key=gemini_fake.KEY, base_url=fake.url, key_variable="GEMINI_API_KEY")}
        app = create_app({"demo_delay": 0, "max_retries": 0, "providers": providers})
        with serve(app) as base_url:
            yield OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0, timeout=20), fake


def first_turn(client: OpenAI, stream: bool):
    messages = [{"role": "user", "content": "Lisbon"}]
    if stream:
        with client.chat.completions.stream(model=MODEL, messages=messages, tools=[WEATHER_TOOL]) as events:
            completion = events.get_final_completion()
        message = completion.choices[0].message.model_dump(exclude_none=True, exclude={"parsed"})
    else:
        completion = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
        message = completion.choices[0].message.model_dump(exclude_none=True)
    assert completion.choices[0].finish_reason == "tool_calls"
    return messages, message, completion.choices[0].message.tool_calls[0]


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("gemini_id", ["fc-lisbon-1", None], ids=["gemini-id", "synthetic-id"])
def test_sdk_tool_loop_sends_the_signature_back_on_the_function_call(stream, gemini_id):
    with live_gemini(gemini_id) as (client, fake):
        messages, message, call = first_turn(client, stream)
        assert call.id == with_signature(gemini_id or call.id.partition(SIGNATURE_MARKER)[0], SIGNATURE)
        messages += [message, {"role": "tool", "tool_call_id": call.id, "content": "22 degrees and sunny"}]
        second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
        assert second.choices[0].message.content == "The tool get_weather returned: 22 degrees and sunny"
        model_turn, results = fake.received[1].json["contents"][-2:]
        (part,) = model_turn["parts"]
        assert part["thoughtSignature"] == SIGNATURE  # byte for byte what Gemini sent
        (response,) = [p["functionResponse"] for p in results["parts"]]
        assert part["functionCall"].get("id") == response.get("id") == gemini_id  # results still match their call
        assert response["name"] == part["functionCall"]["name"] == "get_weather"


def test_sdk_tool_loop_without_the_signature_is_rejected_like_gemini_3():
    """The control: the same loop with the signature cut off the id gets Gemini 3's 400."""
    with live_gemini("fc-lisbon-1") as (client, fake):
        messages, message, call = first_turn(client, stream=False)
        bare = call.id.partition(SIGNATURE_MARKER)[0]
        message["tool_calls"][0]["id"] = bare
        messages += [message, {"role": "tool", "tool_call_id": bare, "content": "22 degrees and sunny"}]
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
        assert "thought_signature" in caught.value.message
        assert "thoughtSignature" not in json.dumps(fake.received[1].json["contents"][1])
