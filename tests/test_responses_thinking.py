"""Anthropic's signed thinking survives an Open Responses tool loop.

    openai SDK -> /v1/responses -> Anthropic provider -> fake Anthropic (thinking rules on, tests/fakes/anthropic.py)
    turn 1: thinking (+ signature), tool_use -> reasoning item (encrypted_content) + function_call item
    turn 2: function_call_output via previous_response_id, or the output items sent back statelessly
            -> the thinking block, signature unchanged, first in the assistant turn; else the fake's 400
"""
from __future__ import annotations

import pytest
from openai import OpenAI

from .fakes.upstream import Reply, transcript
from .test_thinking_blocks import REDACTED_DATA, REDACTED_SIGNATURE, REDACTED_THOUGHT, THOUGHT, live_anthropic

pytestmark = pytest.mark.integration

MODEL = "anthropic/claude-sonnet-4-5"
WEATHER = {"type": "function", "name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}
EFFORT = {"effort": "low"}


def first_turn(client: OpenAI, stream: bool, tool: dict = WEATHER, **options):
    ask = dict(model=MODEL, input="Lisbon", tools=[tool], reasoning=EFFORT, **options)
    if stream:
        with client.responses.stream(**ask) as events:
            return events.get_final_response()
    return client.responses.create(**ask)


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_thinking_tool_loop_via_previous_response_id(stream):
    with live_anthropic() as (chat_client, fake):
        client = OpenAI(base_url=str(chat_client.base_url), api_key="sk-test", max_retries=0, timeout=20)
        first = first_turn(client, stream)
        reasoning, call = first.output
        assert reasoning.type == "reasoning" and reasoning.content[0].text == "".join(THOUGHT)
        assert reasoning.encrypted_content and call.type == "function_call"
        # no tools, no history: the stored turn is rebuilt for Anthropic, signature and all
        second = client.responses.create(model=MODEL, previous_response_id=first.id, reasoning=EFFORT, input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": "22 degrees and sunny"}])
        assert second.output_text == "The tool get_weather returned: 22 degrees and sunny"
        assistant = fake.received[1].json["messages"][1]
        assert [block["type"] for block in assistant["content"]] == ["thinking", "tool_use"]
        assert assistant["content"][0]["thinking"] == "".join(THOUGHT)


def test_redacted_thinking_round_trips_statelessly():
    with live_anthropic() as (chat_client, fake):
        client = OpenAI(base_url=str(chat_client.base_url), api_key="sk-test", max_retries=0, timeout=20)
        fake.reply(Reply.sse(transcript("anthropic", "redacted_thinking_tool_use.sse")))
        first = first_turn(client, stream=True, tool=TIME, store=False)
        assert [item.type for item in first.output] == ["reasoning", "reasoning", "function_call"]
        call = first.output[-1]
        second = client.responses.create(model=MODEL, tools=[TIME], reasoning=EFFORT, input=[
            {"role": "user", "content": "Lisbon"}, *[item.to_dict() for item in first.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": "noon"}])
        assert second.output_text == "The tool get_time returned: noon"
        assert fake.received[1].json["messages"][1]["content"] == [
            {"type": "thinking", "thinking": REDACTED_THOUGHT, "signature": REDACTED_SIGNATURE},
            {"type": "redacted_thinking", "data": REDACTED_DATA},
            {"type": "tool_use", "id": "toolu_01ClockNoArgs", "name": "get_time", "input": {}},
        ]


def test_gemini_thought_signatures_round_trip():
    """Gemini 3 rejects a replayed function call without its thoughtSignature (the fake enforces it)."""
    from proxy import create_app
    from proxy.config import ProviderSettings

    from .fakes import gemini as gemini_fake
    from .fakes import scripted
    from .fakes.live import serve
    from .fakes.upstream import FakeUpstream

    with FakeUpstream(default=gemini_fake.gemini(scripted._gemini_answer, require_signatures=True)) as fake:
        providers = {"gemini": ProviderSettings(api_key=gemini_fake.KEY, base_url=fake.url,
                                                key_variable="GEMINI_API_KEY")}
        app = create_app({"demo_delay": 0, "max_retries": 0, "providers": providers})
        with serve(app) as base_url:
            client = OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0, timeout=20)
            for stream in (False, True):
                ask = dict(model="gemini/tools", input="Lisbon", tools=[
                    {**WEATHER, "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}])
                if stream:
                    with client.responses.stream(**ask) as events:
                        first = events.get_final_response()
                else:
                    first = client.responses.create(**ask)
                (call,) = first.output
                chained = client.responses.create(model="gemini/tools", previous_response_id=first.id, input=[
                    {"type": "function_call_output", "call_id": call.call_id, "output": "22 degrees"}])
                assert chained.output_text == "The tool get_weather returned: 22 degrees"
                model_turn = fake.received[-1].json["contents"][1]
                assert model_turn["parts"][0]["thoughtSignature"] == "CtwBAdHtim9..."
                stateless = client.responses.create(model="gemini/tools", input=[
                    {"role": "user", "content": "Lisbon"}, call.to_dict(),
                    {"type": "function_call_output", "call_id": call.call_id, "output": "23 degrees"}])
                assert stateless.output_text == "The tool get_weather returned: 23 degrees"
