"""Anthropic request translation: build_payload on its own (pure), and what
the fake Messages API received over a real socket, second turns included."""
from __future__ import annotations

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
from proxy.providers.anthropic.request import build_payload
from proxy.streaming import guard
from tests.fakes.anthropic import AnthropicUpstream, make_app, sse

pytestmark = pytest.mark.integration

WEATHER = Tool("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}})


def user(*parts) -> Message:
    return Message("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))


def payload(*messages, **kwargs) -> dict:
    params = kwargs.pop("params", None)
    return build_payload(ChatRequest(model="anthropic/m", messages=list(messages), **kwargs), "m", params)


@pytest.mark.unit
def test_system_messages_are_lifted_and_joined():
    body = payload(Message("system", (TextPart("You are terse."),)), user("Hi"),
                   Message("system", (TextPart("Answer in French."),)))
    assert body["system"] == "You are terse.\n\nAnswer in French."
    assert [m["role"] for m in body["messages"]] == ["user"]


@pytest.mark.unit
def test_max_tokens_always_set_from_request_route_or_default():
    assert payload(user("Hi"))["max_tokens"] == 4096
    assert payload(user("Hi"), params={"max_tokens": 900})["max_tokens"] == 900
    assert payload(user("Hi"), max_tokens=50, params={"max_tokens": 900})["max_tokens"] == 50


@pytest.mark.unit
def test_sampling_parameters_and_stop_sequences():
    body = payload(user("Hi"), temperature=0.3, top_p=0.9, stop=["END", "###"])
    assert (body["temperature"], body["top_p"], body["stop_sequences"]) == (0.3, 0.9, ["END", "###"])
    # OpenAI allows up to 2; Anthropic rejects anything above 1
    assert payload(user("Hi"), temperature=1.7)["temperature"] == 1.0
    assert payload(user("Hi"), params={"temperature": 0.2})["temperature"] == 0.2


@pytest.mark.unit
def test_images_data_url_becomes_base64_source_and_http_url_a_url_source():
    body = payload(user(ImagePart("data:image/png;base64,iVBORw0KGgo="), ImagePart("https://example.com/cat.jpg"), "What is it?"))
    assert body["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What is it?"},
    ]


@pytest.mark.unit
def test_unusable_image_is_a_bad_request():
    with pytest.raises(BadRequest, match="data URL"):
        payload(user(ImagePart("data:image/png,notbase64")))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"}),
     ({"name": "get_weather"}, {"type": "tool", "name": "get_weather"})],
)
def test_tools_and_tool_choice(choice, expected):
    body = payload(user("Weather?"), tools=[WEATHER], tool_choice=choice)
    assert body["tools"] == [{"name": "get_weather", "description": "Weather for a city",
                              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    assert body["tool_choice"] == expected


@pytest.mark.unit
def test_tool_loop_history_and_merging():
    body = payload(
        user("Weather in Paris and Rome?"),
        Message("assistant", (TextPart("Checking."), ToolCallPart("toolu_1", "get_weather", '{"city": "Paris"}'),
                              ToolCallPart("toolu_2", "get_weather", ""))),
        Message("tool", (ToolResultPart("toolu_1", "18°C"),)),
        Message("tool", (ToolResultPart("toolu_2", "no such city", is_error=True),)),
        user("Also, thanks."),
        user("And be brief."),
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "no such city", "is_error": True},
            {"type": "text", "text": "Also, thanks."},
            {"type": "text", "text": "And be brief."},
        ]},
    ]


@pytest.mark.unit
def test_tool_results_come_first_in_their_user_turn():
    body = payload(user("Q"), Message("assistant", (ToolCallPart("t1", "f", "{}"),)),
                   Message("user", (TextPart("note"), ToolResultPart("t1", "ok"))))
    assert [b["type"] for b in body["messages"][-1]["content"]] == ["tool_result", "text"]


@pytest.mark.unit
def test_bad_tool_call_arguments_are_a_bad_request():
    with pytest.raises(BadRequest, match="not valid JSON"):
        payload(user("Q"), Message("assistant", (ToolCallPart("t1", "f", "{oops"),)))


@pytest.mark.unit
def test_reasoning_effort_requests_thinking_and_drops_temperature():
    body = payload(user("Hi"), reasoning_effort="medium", temperature=0.2, top_p=0.5, max_tokens=1000)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert body["max_tokens"] == 1000 + 4096  # budget_tokens < max_tokens, answer keeps its 1000
    assert "temperature" not in body
    assert body["top_p"] == 0.95


@pytest.mark.unit
def test_route_params_can_ask_for_thinking():
    assert payload(user("Hi"), params={"thinking_budget": 2048})["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert payload(user("Hi"), params={"reasoning_effort": "high"})["thinking"]["budget_tokens"] == 16384
    assert "thinking" not in payload(user("Hi"), reasoning_effort="none", params={"reasoning_effort": "high"})


@pytest.mark.unit
def test_thinking_is_dropped_when_a_tool_is_forced():
    body = payload(user("Hi"), reasoning_effort="low", tools=[WEATHER], tool_choice="required")
    assert "thinking" not in body and body["tool_choice"] == {"type": "any"}


@pytest.mark.unit
def test_unknown_reasoning_effort_is_a_bad_request():
    with pytest.raises(BadRequest, match="reasoning_effort"):
        payload(user("Hi"), reasoning_effort="extreme")


@pytest.mark.unit
def test_reasoning_without_a_signature_is_not_sent_back():
    body = payload(user("Q"), Message("assistant", (ReasoningPart("from another provider"), TextPart("A"))), user("Q2"))
    assert body["messages"][1]["content"] == [{"type": "text", "text": "A"}]


# --------------------------------------------------------------------------
# Over the wire
# --------------------------------------------------------------------------


@pytest.fixture
def fake():
    with AnthropicUpstream() as server:
        yield server


def test_system_images_and_tools_as_the_fake_received_them(fake):
    fake.reply(sse("basic_text.sse"))
    request = ChatRequest(
        model="anthropic/claude-sonnet-4-5",
        messages=[Message("system", (TextPart("Be terse."),)),
                  user(ImagePart("data:image/jpeg;base64,/9j/4AAQ"), "Describe.")],
        tools=[WEATHER], tool_choice="auto",
    )
    list(guard(make_app(fake).extensions["switchboard"].router.open(request)))
    body = fake.received[0].json
    assert body["system"] == "Be terse."
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
        {"type": "text", "text": "Describe."}]}]
    assert body["tools"][0]["input_schema"] == WEATHER.parameters
    assert body["tool_choice"] == {"type": "auto"}


def test_thinking_signatures_and_redacted_thinking_go_back_on_the_second_turn(fake):
    fake.reply(sse("redacted_thinking_tool_use.sse"), sse("basic_text.sse"))
    router = make_app(fake).extensions["switchboard"].router
    question = user("What time is it?")
    first = accumulate(guard(router.open(ChatRequest(model="anthropic/claude-sonnet-4-5", messages=[question],
                                                     reasoning_effort="low"))))
    assert first.finish.unified == "tool-calls"
    second = ChatRequest(
        model="anthropic/claude-sonnet-4-5",
        messages=[question, first.message(), Message("tool", (ToolResultPart("toolu_01ClockNoArgs", "12:00"),))],
        reasoning_effort="low",
    )
    events = list(guard(router.open(second)))
    assert events[-1].type == "finish"  # the fake accepted it
    body = fake.received[1].json
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "I need the time; the clock tool takes no input.",
         "signature": "EuYBCkQYAiJAxSig1Demo+sig/2=="},
        {"type": "redacted_thinking",
         "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj"},
        {"type": "tool_use", "id": "toolu_01ClockNoArgs", "name": "get_time", "input": {}},
    ]}
    assert body["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01ClockNoArgs", "content": "12:00"}]}


@pytest.mark.unit
def test_thinking_blocks_are_placed_before_tool_use_even_if_parts_come_out_of_order():
    body = payload(
        user("Q"),
        Message("assistant", (ToolCallPart("t1", "f", "{}"),
                              ReasoningPart("why", {"anthropic": {"signature": "sig=="}}))),
        Message("tool", (ToolResultPart("t1", "ok"),)),
    )
    assert [b["type"] for b in body["messages"][1]["content"]] == ["thinking", "tool_use"]


@pytest.mark.unit
def test_translation_and_decoding_modules_are_pure():
    """request/stream/response/mapping import neither flask, requests nor urllib3
    (the package __init__ is the IO half and is imported with any submodule,
    so the modules' own import statements are checked)."""
    import ast
    from pathlib import Path

    import proxy.providers.anthropic as package

    folder = Path(package.__file__).parent
    for name in ("request.py", "stream.py", "response.py", "mapping.py"):
        tree = ast.parse((folder / name).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.level == 0}
        assert not imported & {"flask", "requests", "urllib3"}, name
        assert imported, name  # the walk found the imports at all
