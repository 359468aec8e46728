"""The demo `mock` model's tool behaviour, on the Chat Completions surface:
with function tools it calls the named or first one with arguments that fit
its schema, and given the result it answers with it; `max_tokens` cuts a
demo answer short with a length finish."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}, "days": {"type": "integer"},
                                     "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["location"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


def ask(client, **body):
    response = client.post("/v1/chat/completions", json={"model": "mock", **body})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["choices"][0]


def test_mock_calls_the_first_tool_with_schema_valid_arguments(client):
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    choice = ask(client, messages=messages, tools=[WEATHER, TIME])
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    arguments = json.loads(call["function"]["arguments"])
    assert call["function"]["name"] == "get_weather"
    assert isinstance(arguments["location"], str) and isinstance(arguments["days"], int) and arguments["unit"] == "c"
    # deterministic: the same request, the same arguments
    again = ask(client, messages=messages, tools=[WEATHER, TIME])["message"]["tool_calls"][0]
    assert again["function"]["arguments"] == call["function"]["arguments"]


def test_mock_calls_the_named_tool_and_none_means_text(client):
    messages = [{"role": "user", "content": "What time is it?"}]
    named = ask(client, messages=messages, tools=[WEATHER, TIME],
                tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert named["message"]["tool_calls"][0]["function"]["name"] == "get_time"
    plain = ask(client, messages=messages, tools=[WEATHER, TIME], tool_choice="none")
    assert plain["finish_reason"] == "stop" and "What time is it?" in plain["message"]["content"]


def test_mock_answers_with_the_tool_result(client):
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "64 degrees and clear"},
    ]
    choice = ask(client, messages=messages, tools=[WEATHER])
    assert choice["finish_reason"] == "stop"
    assert "64 degrees and clear" in choice["message"]["content"]


def test_max_tokens_cuts_a_demo_answer_with_length(client):
    choice = ask(client, messages=[{"role": "user", "content": "Tell me everything"}], max_tokens=1)
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] and "Tell me everything" not in choice["message"]["content"]


def test_mock_accepts_any_schema_a_client_sends(client):
    from .test_fuzz import BAD_SCHEMAS

    for schema in [*BAD_SCHEMAS, {"enum": 5}, {"type": "object", "properties": {"a": {"enum": []}}},
                   {"type": "object", "properties": {"a": {"type": "array", "items": [1]}}}, {"properties": {"x": 1}}]:
        tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
        response = client.post("/v1/chat/completions", json={
            "model": "mock", "messages": [{"role": "user", "content": "x"}], "tools": [tool]})
        assert response.status_code in (200, 400), (schema, response.get_data(as_text=True))
