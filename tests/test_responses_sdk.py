"""The official OpenAI SDKs against a live Switchboard's /v1/responses.

Every test runs through the demo models and through the OpenAI, Anthropic
and Gemini providers over their fake upstreams (the Targets of
test_openai_sdk.py: the same conversation gives the same results whoever
answers). Events and Response objects are also validated against the
official `openresponses-types` models.
"""
from __future__ import annotations

import json
import subprocess
import urllib.request

import openai
import pytest

from .fakes import scripted
from .responses_support import validate_response, validate_stream
from .test_openai_sdk import ROOT, TARGETS, start_live

pytestmark = pytest.mark.integration

WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture(params=TARGETS, ids=lambda target: target.id)
def live(request):
    with start_live(request.param) as running:
        yield running


def raw_json(live, path: str) -> dict:
    request = urllib.request.Request(f"{live.base_url}{path}", headers={"Authorization": "Bearer sk-test"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_create_retrieve_list_and_delete(live):
    client = live.client()
    response = client.responses.create(model=live.target.text_model, input="hello there")
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == live.target.expected_text("hello there")
    assert response.usage.output_tokens > 0 and response.completed_at is not None
    stored = raw_json(live, f"/v1/responses/{response.id}")
    validate_response(stored)
    assert client.responses.retrieve(response.id).output_text == response.output_text
    items = client.responses.input_items.list(response.id)
    assert [item.content[0].text for item in items.data] == ["hello there"]
    deleted = client.responses.delete(response.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_stream_helper_gives_the_final_response(live):
    client = live.client()
    with client.responses.stream(model=live.target.text_model, input="stream me") as stream:
        types = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.output_text == live.target.expected_text("stream me") and final.status == "completed"
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.output_text.delta" in types
    assert client.responses.retrieve(final.id).output_text == final.output_text


def test_create_stream_true_events_validate(live):
    events = list(live.client().responses.create(model=live.target.text_model, input="count", stream=True))
    validate_stream([event.to_dict() for event in events])
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == live.target.expected_text("count")


def test_function_call_round_trip_via_previous_response_id(live):
    client = live.client()
    first = client.responses.create(model=live.target.tool_model, input="Lisbon", tools=[WEATHER])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Lisbon"}
    # the continuation has only the tool's output: no tools, no history
    with client.responses.stream(model=live.target.tool_model, previous_response_id=first.id, input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": "22 degrees and sunny"}]) as stream:
        second = stream.get_final_response()
    assert second.output_text == scripted.quote_text("get_weather", "22 degrees and sunny")
    assert second.previous_response_id == first.id
    if live.target.check_tool_result:  # the upstream got the rebuilt round trip in its own format
        live.target.check_tool_result(live.fake.received[-1], call.call_id, "22 degrees and sunny")


def test_stateless_round_trip_with_the_output_items_sent_back(live):
    client = live.client()
    first = client.responses.create(model=live.target.tool_model, input="Lisbon", tools=[WEATHER], store=False)
    (call,) = [item for item in first.output if item.type == "function_call"]
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)  # store: false stored nothing
    second = client.responses.create(model=live.target.tool_model, tools=[WEATHER], input=[
        {"role": "user", "content": "Lisbon"}, *[item.to_dict() for item in first.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": "18 degrees"}])
    assert second.output_text == scripted.quote_text("get_weather", "18 degrees")


def test_reasoning_items_stream_and_round_trip(live):
    client = live.client()
    events = list(client.responses.create(model=live.target.reasoning_model, input="Why?", stream=True))
    validate_stream([event.to_dict() for event in events])
    reasoning = "".join(event.delta for event in events if event.type == "response.reasoning.delta")
    assert reasoning == live.target.expected_reasoning
    final = events[-1].response
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].content[0].text == live.target.expected_reasoning
    follow = client.responses.create(model=live.target.reasoning_model, input="And then?",
                                     previous_response_id=final.id)
    assert follow.status == "completed"
    if live.target.id == "anthropic":
        # the thinking block went back with its signature, unchanged
        assistant = live.fake.received[-1].json["messages"][1]
        assert assistant["content"][0]["type"] == "thinking" and assistant["content"][0]["signature"]
        assert final.output[0].encrypted_content


def test_failure_mid_stream_ends_in_response_failed(live):
    # on the wire: the text so far, an `error` event, then `response.failed` carrying the error, then [DONE]
    request = urllib.request.Request(f"{live.base_url}/v1/responses", method="POST", data=json.dumps(
        {"model": live.target.failing_model, "input": "go", "stream": True}).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer sk-test"})
    with urllib.request.urlopen(request, timeout=20) as response:
        body = response.read().decode()
    frames = [frame for frame in body.split("\n\n") if frame and not frame.startswith(":")]
    assert frames[-1] == "data: [DONE]"
    events = [json.loads(frame.split("\n")[1].removeprefix("data: ")) for frame in frames[:-1]]
    validate_stream(events)
    assert [event["type"] for event in events[-2:]] == ["error", "response.failed"]
    assert live.target.failing_message in events[-1]["response"]["error"]["message"]
    text = "".join(event["delta"] for event in events if event["type"] == "response.output_text.delta")
    assert text == live.target.failing_text
    # the Python SDK raises the in-band error while iterating, never a clean end
    with pytest.raises(openai.APIError, match=live.target.failing_message):
        list(live.client().responses.create(model=live.target.failing_model, input="go", stream=True))


def test_unknown_previous_response_is_400_previous_response_not_found(live):
    with pytest.raises(openai.BadRequestError) as caught:
        live.client().responses.create(model=live.target.text_model, input="x", previous_response_id="resp_missing")
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"


def test_node_openai_sdk_streams_a_response(live):
    result = subprocess.run(
        ["node", str(ROOT / "tests" / "js" / "openai_responses_stream.mjs"), f"{live.base_url}/v1",
         live.target.text_model, "hello from node"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["text"] == live.target.expected_text("hello from node") and report["status"] == "completed"
    assert report["types"][0] == "response.created" and report["types"][-1] == "response.completed"
