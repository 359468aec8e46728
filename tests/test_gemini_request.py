"""ChatRequest -> Gemini request body, checked against what the fake
upstream received (the fake also rejects what the real API rejects)."""
from __future__ import annotations

import base64

import pytest

from proxy.canonical import (
    ChatRequest,
    ImagePart,
    Message,
    ReasoningPart,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    accumulate,
)
from proxy.errors import BadRequest
from proxy.providers.gemini.request import build_payload
from proxy.providers.gemini.schema import clean_schema
from tests.fakes.gemini import body_problem, gemini
from tests.fakes.upstream import Reply
from tests.gemini_helpers import MODEL, gemini_app, run, sse

pytestmark = pytest.mark.integration

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
WEATHER = Tool(
    "get_weather",
    "Weather for a city",
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "city": {"type": "string", "examples": ["Paris"]},
            "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
            "where": {"$ref": "#/$defs/Place"},
            "kind": {"const": "current"},
        },
        "required": ["city", "missing"],
        "$defs": {"Place": {"type": "object", "properties": {"lat": {"type": "number"}}, "additionalProperties": False}},
    },
)


def _send(fake, request: ChatRequest, transcript: str = "plain_text.sse", **settings) -> dict:
    fake.reply(gemini(Reply.sse(sse(transcript))))
    events = run(gemini_app(fake, **settings), request)
    assert events[-1].type == "finish", events[-1]  # the fake accepted the body
    return fake.received[-1].json


def test_system_images_and_roles(fake_upstream):
    request = ChatRequest(MODEL, [
        Message("system", (TextPart("You are terse."),)),
        Message("user", (TextPart("What is in this image?"), ImagePart(f"data:image/png;base64,{PNG}"))),
        Message("assistant", (TextPart("A dot."),)),
        Message("user", (TextPart("And this one?"),
                         ImagePart("https://generativelanguage.googleapis.com/v1beta/files/abc", media_type="image/jpeg"))),
        Message("user", (TextPart("Answer briefly."),)),
    ], temperature=0.7, top_p=0.9, max_tokens=2048, stop=["END"])
    body = _send(fake_upstream, request)
    assert body["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]  # same roles merged
    assert body["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    assert body["contents"][2]["parts"][1] == {
        "fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc", "mimeType": "image/jpeg"}}
    assert body["contents"][2]["parts"][2] == {"text": "Answer briefly."}
    assert body["generationConfig"] == {"temperature": 0.7, "topP": 0.9, "maxOutputTokens": 2048, "stopSequences": ["END"]}
    assert "thinkingConfig" not in body["generationConfig"]


def test_web_image_urls_are_downloaded_and_sent_inline(fake_upstream):
    png = base64.b64decode(PNG)
    fake_upstream.reply(Reply([png], content_type="image/png"))
    request = ChatRequest(MODEL, [Message("user", (TextPart("Describe"), ImagePart(f"{fake_upstream.url}/cat.png")))])
    # the fake image host is on loopback, which only this setting allows
    body = _send(fake_upstream, request, fetch_private_urls=True)
    assert fake_upstream.received[0].path == "/cat.png"
    assert body["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}


def test_a_web_url_that_is_not_an_image_is_a_bad_request(fake_upstream):
    fake_upstream.reply(Reply([b"<html></html>"], content_type="text/html"))
    request = ChatRequest(MODEL, [Message("user", (ImagePart(f"{fake_upstream.url}/page"),))])
    with pytest.raises(BadRequest, match="not an image"):
        gemini_app(fake_upstream, fetch_private_urls=True).extensions["switchboard"].router.open(request)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "[::1]"])
def test_image_urls_on_private_addresses_are_refused_by_default(fake_upstream, host):
    request = ChatRequest(MODEL, [Message("user", (ImagePart(f"http://{host}/latest/meta-data/"),))])
    with pytest.raises(BadRequest, match="non-public address"):
        gemini_app(fake_upstream).extensions["switchboard"].router.open(request)
    assert fake_upstream.received == []


def test_image_url_redirects_are_not_followed(fake_upstream):
    fake_upstream.reply(Reply([b""], status=302, headers={"Location": "http://169.254.169.254/"}, content_type="text/plain"))
    request = ChatRequest(MODEL, [Message("user", (ImagePart(f"{fake_upstream.url}/cat.png"),))])
    with pytest.raises(BadRequest, match="redirects"):
        gemini_app(fake_upstream, fetch_private_urls=True).extensions["switchboard"].router.open(request)


def test_tools_schemas_are_cleaned_and_tool_choice_maps(fake_upstream):
    request = ChatRequest(MODEL, [Message("user", (TextPart("Weather?"),))],
                          tools=[WEATHER, Tool("now", "The time")], tool_choice={"name": "get_weather"})
    body = _send(fake_upstream, request)
    declarations = body["tools"][0]["functionDeclarations"]
    assert declarations[0]["parameters"] == {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "nullable": True, "enum": ["c", "f"]},
            "where": {"type": "object", "properties": {"lat": {"type": "number"}}},
            "kind": {"type": "string", "enum": ["current"]},
        },
        "required": ["city"],
    }
    assert declarations[1] == {"name": "now", "description": "The time"}  # zero-argument: no parameters
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}


@pytest.mark.unit
@pytest.mark.parametrize(("choice", "mode"), [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")])
def test_tool_choice_words(choice, mode):
    request = ChatRequest(MODEL, [Message("user", (TextPart("hi"),))], tools=[WEATHER], tool_choice=choice)
    assert build_payload(request, "gemini-2.5-flash")["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


@pytest.mark.unit
def test_the_fake_rejects_what_gemini_rejects():
    # guards the guard: the fake would catch an adapter that forgot to clean
    assert "additionalProperties" in body_problem({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                                                   "tools": [{"functionDeclarations": [{"name": "f", "parameters": {
                                                       "type": "object", "additionalProperties": False,
                                                       "properties": {"a": {"type": "string"}}}}]}]})
    assert body_problem({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}) == "Please use a valid role: user, model."
    assert clean_schema({"type": "object", "properties": {}}) == {"type": "object"}


def test_thinking_from_reasoning_effort_and_from_route_params(fake_upstream):
    request = ChatRequest(MODEL, [Message("user", (TextPart("27 × 453?"),))], reasoning_effort="medium")
    body = _send(fake_upstream, request, "thinking.sse")
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 8192, "includeThoughts": True}
    gemini3 = build_payload(ChatRequest("gemini/gemini-3-pro-preview", request.messages, reasoning_effort="high"),
                            "gemini-3-pro-preview")
    assert gemini3["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "HIGH", "includeThoughts": True}
    from_params = build_payload(ChatRequest(MODEL, request.messages), "gemini-2.5-flash",
                                {"include_thoughts": True, "thinking_budget": -1})
    assert from_params["generationConfig"]["thinkingConfig"] == {"thinkingBudget": -1, "includeThoughts": True}
    assert "thinkingConfig" not in build_payload(ChatRequest(MODEL, request.messages), "gemini-2.5-flash").get(
        "generationConfig", {})


@pytest.mark.unit
def test_response_format_maps_to_response_mime_type_and_schema():
    messages = [Message("user", (TextPart("JSON please"),))]
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}
    body = build_payload(ChatRequest(MODEL, messages, response_format={
        "type": "json_schema", "json_schema": {"name": "x", "schema": schema}}), "gemini-2.5-flash")
    assert body["generationConfig"] == {"responseMimeType": "application/json",
                                        "responseSchema": {"type": "object", "properties": {"a": {"type": "integer"}}}}
    body = build_payload(ChatRequest(MODEL, messages, response_format={"type": "json_object"}), "gemini-2.5-flash")
    assert body["generationConfig"] == {"responseMimeType": "application/json"}


def test_second_turn_sends_calls_results_and_thought_signatures_back(fake_upstream):
    """Turn 1 streams two calls (one signed, no ids); turn 2 replays them."""
    first = ChatRequest(MODEL, [Message("user", (TextPart("Weather in Paris and Rome?"),))], tools=[WEATHER])
    fake_upstream.reply(gemini(Reply.sse(sse("tool_call.sse"))))
    answer = accumulate(run(gemini_app(fake_upstream), first))
    calls = answer.tool_calls
    second = ChatRequest(MODEL, first.messages + [
        answer.message(),
        Message("tool", (ToolResultPart(calls[0].id, '{"temp": 21}'),)),
        Message("tool", (ToolResultPart(calls[1].id, "sunny, 25 C"),)),
    ], tools=[WEATHER])
    body = _send(fake_upstream, second)
    model_turn, results = body["contents"][1], body["contents"][2]
    assert model_turn == {"role": "model", "parts": [
        {"text": "Let me look that up."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CtwBAdHtim9..."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},  # synthesized ids stay ours
    ]}
    assert results == {"role": "user", "parts": [  # matched by name, objects only
        {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
        {"functionResponse": {"name": "get_weather", "response": {"result": "sunny, 25 C"}}},
    ]}


def test_second_turn_after_thinking_replays_the_text_signature(fake_upstream):
    first = ChatRequest(MODEL, [Message("user", (TextPart("27 × 453?"),))], reasoning_effort="low")
    fake_upstream.reply(gemini(Reply.sse(sse("thinking.sse"))))
    answer = accumulate(run(gemini_app(fake_upstream), first))
    second = ChatRequest(MODEL, first.messages + [answer.message(), Message("user", (TextPart("And × 2?"),))])
    body = _send(fake_upstream, second)
    # the thought summary is not sent back as text; the signature rides where it came
    assert body["contents"][1] == {"role": "model", "parts": [
        {"text": "27 × 453 = 12,231"}, {"text": "", "thoughtSignature": "CiQB0e2Kb3Jq0w2m8y4nPq..."}]}


@pytest.mark.unit
def test_gemini_call_ids_are_echoed_and_signed_reasoning_replayed():
    messages = [
        Message("user", (TextPart("hi"),)),
        Message("assistant", (
            ReasoningPart("thinking...", {"gemini": {"thoughtSignature": "sig-a"}}),
            TextPart("Hello"),
            ReasoningPart("", {"gemini": {"thoughtSignature": "sig-b", "onText": True}}),
            ToolCallPart("fc-7", "now", ""),
        )),
        Message("tool", (ToolResultPart("fc-7", "12:00", name="now", is_error=True),)),
    ]
    body = build_payload(ChatRequest(MODEL, messages), "gemini-2.5-flash")
    assert body["contents"][1]["parts"] == [
        {"text": "thinking...", "thought": True, "thoughtSignature": "sig-a"},
        {"text": "Hello", "thoughtSignature": "sig-b"},
        {"functionCall": {"name": "now", "args": {}, "id": "fc-7"}},
    ]
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "now", "response": {"error": "12:00"}, "id": "fc-7"}}]


@pytest.mark.unit
def test_bad_input_is_a_bad_request_saying_what_to_fix():
    with pytest.raises(BadRequest, match="matches no earlier tool call"):
        build_payload(ChatRequest(MODEL, [Message("tool", (ToolResultPart("nope", "x"),))]), "gemini-2.5-flash")
    with pytest.raises(BadRequest, match="at least one user"):
        build_payload(ChatRequest(MODEL, [Message("system", (TextPart("x"),))]), "gemini-2.5-flash")
    with pytest.raises(BadRequest, match="reasoning_effort"):
        build_payload(ChatRequest(MODEL, [Message("user", (TextPart("x"),))], reasoning_effort="max"), "gemini-2.5-flash")


@pytest.mark.unit
def test_the_translation_modules_are_pure():
    """request, decode, errors, schema and call_ids import neither flask nor requests."""
    import ast
    from pathlib import Path

    import proxy.providers.gemini as package

    folder = Path(package.__file__).parent
    for name in ("request.py", "decode.py", "errors.py", "schema.py", "call_ids.py"):
        tree = ast.parse((folder / name).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
        assert not imported & {"flask", "requests", "urllib3"}, name
