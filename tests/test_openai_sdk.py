"""The official OpenAI SDKs against a live Switchboard: /v1/chat/completions and /v1/models.

Each test runs once per answering target. A Target is a set of models and the
setup that makes them answer: the built-in demo models, and the OpenAI,
Anthropic and Gemini providers, each over its fake upstream (real sockets, the
vendor's wire format; tests/fakes/scripted.py answers like the demo models, so
the same conversation gives the same SDK results whoever answers). All
provider-specific setup lives in the Target and the `live` fixture; the
per-provider tests at the end drive each fake's own error statuses.
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager

import openai
import pytest
from openai import OpenAI

from proxy import create_app
from proxy.config import ProviderSettings
from proxy.errors import RateLimited
from proxy.providers.base import ModelRoute, Provider

from .fakes import anthropic as anthropic_fake
from .fakes import gemini as gemini_fake
from .fakes import openai as openai_fake
from .fakes import scripted
from .fakes.anthropic import AnthropicUpstream
from .fakes.live import serve
from .fakes.upstream import FakeUpstream, Received, Reply, transcript

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@dataclass
class Target:
    """Models to test and how to make them answer."""

    id: str
    text_model: str  # answers with expected_text(prompt)
    tool_model: str  # calls get_weather({"city": prompt}); given a tool result, quotes it
    reasoning_model: str  # reasons expected_reasoning, then answers
    failing_model: str  # sends failing_text, then fails in-band with failing_message in its error
    expected_text: Callable[[str], str] = scripted.mock_text
    expected_reasoning: str = "".join(scripted.REASONING)
    # starts whatever the target needs (a fake upstream, given the key the app
    # should send it) and yields (create_app settings, the fake or None)
    start: Callable[[str | None], ContextManager[tuple[dict, FakeUpstream | None]]] = (
        lambda key: contextlib.nullcontext(({}, None)))
    streams_arguments: bool = True  # Gemini sends a function call whole, not in fragments
    # what the fake must have received on the second turn of a tool round trip
    check_tool_result: Callable[[Received, str, str], None] | None = None
    # the vendor's own 429 (retry after the given seconds) and 400 answers
    rate_limited: Callable[[int], Reply] | None = None
    bad_request: Callable[[], Reply] | None = None
    unknown_upstream_model: str = ""  # a model id the upstream answers with its 404
    failing_text: str = "This answer starts well, and then the upstream fails."
    failing_message: str = "the upstream failed in the middle of the answer"


DEMO = Target(
    id="demo",
    text_model="mock",
    tool_model="tool-demo",
    reasoning_model="reflection-and-thinking",
    failing_model="error-demo",
)


def vendor_start(vendor: str, make_fake: Callable[[], FakeUpstream], key: str, variable: str):
    """The fake of `vendor` and an app whose `<vendor>-<name>` models reach it."""

    @contextlib.contextmanager
    def start(wrong_key: str | None):
        with make_fake() as fake:
            provider = ProviderSettings(api_key=wrong_key or key, base_url=fake.url, key_variable=variable)
            models = [{"id": f"{vendor}-{name}", "provider": vendor, "model": name}
                      for name in ("chat", "tools", "think", "broken")]
            yield {"providers": {vendor: provider}, "models": models}, fake

    return start


def vendor_target(vendor: str, **fields) -> Target:
    return Target(
        id=vendor, text_model=f"{vendor}-chat", tool_model=f"{vendor}-tools", reasoning_model=f"{vendor}-think",
        failing_model=f"{vendor}-broken", unknown_upstream_model=f"{vendor}/no-such-model", **fields,
    )


def openai_tool_result(received: Received, call_id: str, result: str) -> None:
    assistant, tool = received.json["messages"][-2:]
    assert assistant["role"] == "assistant"
    assert [(c["id"], c["function"]["name"]) for c in assistant["tool_calls"]] == [(call_id, "get_weather")]
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Lisbon"}
    assert tool == {"role": "tool", "tool_call_id": call_id, "content": result}


def anthropic_tool_result(received: Received, call_id: str, result: str) -> None:
    assistant, answer = received.json["messages"][-2:]
    assert assistant["role"] == "assistant" and answer["role"] == "user"
    (use,) = [block for block in assistant["content"] if block["type"] == "tool_use"]
    assert (use["id"], use["name"], use["input"]) == (call_id, "get_weather", {"city": "Lisbon"})
    first = answer["content"][0]  # the API wants tool_result blocks first in their user turn
    assert first["type"] == "tool_result" and first["tool_use_id"] == call_id
    content = first["content"]
    assert (content if isinstance(content, str) else "".join(b["text"] for b in content)) == result


def gemini_tool_result(received: Received, call_id: str, result: str) -> None:
    model, answer = received.json["contents"][-2:]
    assert model["role"] == "model" and answer["role"] == "user"
    (call,) = [part["functionCall"] for part in model["parts"] if "functionCall" in part]
    assert (call["name"], call["args"]) == ("get_weather", {"city": "Lisbon"})
    (response,) = [part["functionResponse"] for part in answer["parts"] if "functionResponse" in part]
    assert response["name"] == call["name"]  # Gemini matches results to calls by name
    assert response["response"] == {"result": result}


OPENAI = vendor_target(
    "openai",
    start=vendor_start("openai", lambda: FakeUpstream(default=scripted.openai_responder),
                       openai_fake.KEY, "OPENAI_API_KEY"),
    check_tool_result=openai_tool_result,
    failing_text="Hello",  # tests/transcripts/openai/midstream_error.sse
    failing_message="The server had an error while processing your request.",
    rate_limited=lambda seconds: openai_fake.error(
        429, "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3, Requested 1.",
        "requests", "rate_limit_exceeded", **{"retry-after": str(seconds)}),
    bad_request=lambda: openai_fake.error(
        400, "This model's maximum context length is 128000 tokens.", "invalid_request_error",
        "context_length_exceeded"),
)
ANTHROPIC = vendor_target(
    "anthropic",
    start=vendor_start("anthropic", lambda: AnthropicUpstream(default=scripted.anthropic_responder),
                       anthropic_fake.KEY, "ANTHROPIC_API_KEY"),
    check_tool_result=anthropic_tool_result,
    failing_text="Hello there",  # tests/transcripts/anthropic/overloaded_midstream.sse
    failing_message="Overloaded",
    rate_limited=lambda seconds: anthropic_fake.error_reply(
        429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit",
        headers={"retry-after": str(seconds)}),
    bad_request=lambda: anthropic_fake.error_reply(
        400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
)
GEMINI = vendor_target(
    "gemini",
    start=vendor_start("gemini", lambda: FakeUpstream(default=scripted.gemini_responder),
                       gemini_fake.KEY, "GEMINI_API_KEY"),
    streams_arguments=False,
    check_tool_result=gemini_tool_result,
    failing_text="The capital",  # tests/transcripts/gemini/midstream_error.sse
    failing_message="The model is overloaded.",
    rate_limited=lambda seconds: Reply.json(None, status=429, raw=transcript("gemini", "error_rate_per_minute.json")
                                            .replace(b'"2.500s"', f'"{seconds}s"'.encode())),
    bad_request=lambda: gemini_fake.error_reply(
        400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens allowed."),
)
PROVIDERS = [OPENAI, ANTHROPIC, GEMINI]
TARGETS = [DEMO, *PROVIDERS]


@dataclass
class Live:
    target: Target
    base_url: str
    app: object
    fake: FakeUpstream | None

    def client(self, **options) -> OpenAI:
        options.setdefault("api_key", "sk-test")
        options.setdefault("max_retries", 0)
        options.setdefault("timeout", 20)
        return OpenAI(base_url=f"{self.base_url}/v1", **options)


def start_live(target: Target, wrong_key: str | None = None, **settings) -> ContextManager[Live]:
    @contextlib.contextmanager
    def run():
        with target.start(wrong_key) as (target_settings, fake):
            app = create_app({"demo_delay": 0, **target_settings, **settings})
            with serve(app) as base_url:
                yield Live(target, base_url, app, fake)

    return run()


@pytest.fixture(params=TARGETS, ids=lambda target: target.id)
def live(request):
    with start_live(request.param) as running:
        yield running


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------- non-streaming


def test_create_returns_a_text_completion(live):
    completion = live.client().chat.completions.create(model=live.target.text_model, messages=user("hello there"))
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == live.target.text_model
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == live.target.expected_text("hello there")
    assert choice.message.tool_calls is None
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_create_returns_a_tool_call(live):
    completion = live.client().chat.completions.create(
        model=live.target.tool_model, messages=user("Paris"), tools=[WEATHER_TOOL]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_create_accepts_content_parts_and_every_role(live):
    image = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
    completion = live.client().chat.completions.create(
        model=live.target.text_model,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Really brief."}]},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                         {"type": "image_url", "image_url": {"url": image, "detail": "low"}}]},
        ],
        temperature=0.2, top_p=0.9, max_completion_tokens=50, stop=["\n\n"], user="u-1", seed=7,
        response_format={"type": "text"}, reasoning_effort="low",
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content


# ---------------------------------------------------------------- streaming


def test_stream_helper_assembles_a_tool_call_and_usage(live):
    client = live.client()
    argument_deltas = 0
    with client.chat.completions.stream(
        model=live.target.tool_model, messages=user("Paris"), tools=[WEATHER_TOOL],
        stream_options={"include_usage": True},
    ) as stream:
        for event in stream:
            if event.type == "tool_calls.function.arguments.delta":
                argument_deltas += 1
        completion = stream.get_final_completion()
    assert argument_deltas >= (2 if live.target.streams_arguments else 1)  # fragments where the upstream streams them
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_stream_chunks_carry_role_content_and_finish(live):
    stream = live.client().chat.completions.create(
        model=live.target.text_model, messages=user("stream me"), stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert {chunk.id for chunk in chunks} == {chunks[0].id}
    assert {chunk.created for chunk in chunks} == {chunks[0].created}
    assert all(chunk.object == "chat.completion.chunk" and chunk.model == live.target.text_model for chunk in chunks)
    assert [c.choices[0].finish_reason for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == live.target.expected_text("stream me")
    assert all(chunk.usage is None for chunk in chunks)


def test_stream_usage_chunk_comes_last_with_no_choices(live):
    chunks = list(live.client().chat.completions.create(
        model=live.target.text_model, messages=user("count"), stream=True, stream_options={"include_usage": True}
    ))
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_stream_reasoning_arrives_as_reasoning_content(live):
    chunks = list(live.client().chat.completions.create(
        model=live.target.reasoning_model, messages=user("why"), stream=True
    ))
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    reasoning = "".join((delta.model_extra or {}).get("reasoning_content") or "" for delta in deltas)
    content = "".join(delta.content or "" for delta in deltas)
    assert reasoning == live.target.expected_reasoning
    assert live.target.expected_reasoning.strip() not in content
    assert content
    assert not any("type" in (delta.model_extra or {}) for delta in deltas)


def test_stream_workbench_thinking_variant_on_request(live):
    chunks = list(live.client().chat.completions.create(
        model=live.target.reasoning_model, messages=user("why"), stream=True,
        extra_headers={"X-Switchboard-Thinking": "workbench"},
    ))
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    thinking = "".join(d.content for d in deltas if (d.model_extra or {}).get("type") == "thinking")
    answer = "".join(d.content or "" for d in deltas if (d.model_extra or {}).get("type") != "thinking")
    assert thinking == live.target.expected_reasoning
    assert answer and live.target.expected_reasoning.strip() not in answer
    assert not any("reasoning_content" in (d.model_extra or {}) for d in deltas)


def test_multi_turn_tool_use_completes(live):
    client = live.client()
    messages = user("Lisbon")
    first = client.chat.completions.create(model=live.target.tool_model, messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "22 degrees and sunny"})
    chunks = list(client.chat.completions.create(
        model=live.target.tool_model, messages=messages, tools=[WEATHER_TOOL], stream=True
    ))
    answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert answer == "The tool get_weather returned: 22 degrees and sunny"
    assert chunks[-1].choices[0].finish_reason == "stop"
    if live.target.check_tool_result:  # the upstream got the round trip in its own format
        first_request, second_request = live.fake.received
        live.target.check_tool_result(second_request, call.id, "22 degrees and sunny")


def conversation(live: Live) -> list[tuple]:
    """One conversation through the SDK, reduced to what must not depend on the provider."""
    client = live.client()

    def summary(completion) -> tuple:
        choice = completion.choices[0]
        calls = [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls or ()]
        usage = completion.usage
        return (choice.message.content, calls, choice.finish_reason,
                usage is not None and usage.total_tokens > 0 and usage.completion_tokens > 0)

    results = [summary(client.chat.completions.create(model=live.target.text_model, messages=user("hello")))]
    messages = user("Oslo")
    with client.chat.completions.stream(model=live.target.tool_model, messages=messages, tools=[WEATHER_TOOL],
                                        stream_options={"include_usage": True}) as stream:
        first = stream.get_final_completion()
    results.append(summary(first))
    call = first.choices[0].message.tool_calls[0]
    messages += [first.choices[0].message.model_dump(exclude_none=True, exclude={"parsed"}),
                 {"role": "tool", "tool_call_id": call.id, "content": "-3 degrees"}]
    results.append(summary(client.chat.completions.create(model=live.target.tool_model, messages=messages,
                                                           tools=[WEATHER_TOOL])))
    with client.chat.completions.stream(model=live.target.reasoning_model, messages=user("why"),
                                        stream_options={"include_usage": True}) as stream:
        thought = stream.get_final_completion()
    results.append(summary(thought) + ((thought.choices[0].message.model_extra or {}).get("reasoning_content"),))
    thought = client.chat.completions.create(model=live.target.reasoning_model, messages=user("why"))
    results.append(summary(thought) + ((thought.choices[0].message.model_extra or {}).get("reasoning_content"),))
    return results


def test_the_same_conversation_gives_the_same_sdk_results_on_every_provider():
    with start_live(DEMO) as demo:
        expected = conversation(demo)
    assert expected[1][1] == [("get_weather", {"city": "Oslo"})]  # the reference itself is what it should be
    assert expected[2][0] == "The tool get_weather returned: -3 degrees"
    assert expected[3][-1] == expected[4][-1] == DEMO.expected_reasoning
    for target in PROVIDERS:
        with start_live(target) as live:
            assert conversation(live) == expected, target.id
            assert len(live.fake.received) == 5  # every answer came from the vendor's fake


# ---------------------------------------------------------------- errors


def test_unknown_model_raises_not_found(live):
    with pytest.raises(openai.NotFoundError) as caught:
        live.client().chat.completions.create(model="no-such-model", messages=user("hi"))
    assert caught.value.status_code == 404
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"
    assert caught.value.type == "not_found_error"


def test_n_above_one_is_a_bad_request_naming_n(live):
    with pytest.raises(openai.BadRequestError) as caught:
        live.client().chat.completions.create(model=live.target.text_model, messages=user("hi"), n=2)
    assert caught.value.param == "n"
    assert caught.value.type == "invalid_request_error"
    assert "'n' must be 1" in caught.value.message


@pytest.mark.parametrize("messages, param", [
    ([], "messages"),
    ([{"role": "wizard", "content": "hi"}], "messages[0].role"),
    ([{"role": "tool", "content": "42"}], "messages[0].tool_call_id"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": ""}}]}], "messages[0].content[0].image_url"),
])
def test_bad_input_is_a_bad_request_naming_the_field(live, messages, param):
    with pytest.raises(openai.BadRequestError) as caught:
        live.client().chat.completions.create(model=live.target.text_model, messages=messages)
    assert caught.value.param == param


def test_failure_mid_stream_raises_api_error_while_iterating(live):
    stream = live.client().chat.completions.create(
        model=live.target.failing_model, messages=user("go"), stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert not isinstance(caught.value, openai.APIStatusError)  # in-band, after the 200
    assert "".join(received) == live.target.failing_text  # the content before the failure arrived
    assert live.target.failing_message in caught.value.message
    assert caught.value.body["type"] == "api_error"
    assert caught.value.body["code"]


def test_rate_limit_raises_rate_limit_error_with_retry_after():
    # The provider is injected, so one target is enough; router retries off (they
    # would wait out the 7 s twice). Each provider's real 429 is tested below.
    class Throttled(Provider):
        name = "throttled"

        @property
        def configured(self) -> bool:
            return True

        def open(self, request, route):
            raise RateLimited("slow down: too many requests upstream", retry_after=7)

    with start_live(DEMO, max_retries=0) as live:
        router = live.app.extensions["switchboard"].router
        router.providers["throttled"] = Throttled(None, router.settings)
        router.routes["throttled-model"] = ModelRoute("throttled-model", "throttled", "x", "test")
        with pytest.raises(openai.RateLimitError) as caught:
            live.client().chat.completions.create(model="throttled-model", messages=user("hi"), stream=True)
        assert caught.value.status_code == 429
        assert caught.value.response.headers["retry-after"] == "7"
        assert caught.value.type == "rate_limit_error"


# ---------------------------------------------------------------- upstream errors, per provider


@pytest.fixture(params=PROVIDERS, ids=lambda target: target.id)
def single_attempt(request):
    """A provider target whose router sends exactly one upstream request per call."""
    with start_live(request.param, max_retries=0) as running:
        yield running


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_upstream_429_raises_rate_limit_error_with_its_retry_after(single_attempt, stream):
    single_attempt.fake.reply(single_attempt.target.rate_limited(7))
    with pytest.raises(openai.RateLimitError) as caught:
        single_attempt.client().chat.completions.create(
            model=single_attempt.target.text_model, messages=user("hi"), stream=stream)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert len(single_attempt.fake.received) == 1


def test_upstream_404_for_an_unknown_model_raises_not_found(single_attempt):
    with pytest.raises(openai.NotFoundError) as caught:
        single_attempt.client().chat.completions.create(
            model=single_attempt.target.unknown_upstream_model, messages=user("hi"))
    assert caught.value.status_code == 404
    assert len(single_attempt.fake.received) == 1  # the upstream itself said 404


def test_upstream_400_raises_bad_request(single_attempt):
    single_attempt.fake.reply(single_attempt.target.bad_request())
    with pytest.raises(openai.BadRequestError) as caught:
        single_attempt.client().chat.completions.create(
            model=single_attempt.target.text_model, messages=user("hi"), stream=True)
    assert caught.value.status_code == 400
    assert caught.value.type == "invalid_request_error"


@pytest.mark.parametrize("target", PROVIDERS, ids=lambda target: target.id)
def test_upstream_rejecting_the_key_raises_authentication_error(target):
    # The fake checks the key like the vendor (Gemini answers 400 API_KEY_INVALID).
    with start_live(target, wrong_key="wrong-key") as live:
        with pytest.raises(openai.AuthenticationError) as caught:
            live.client().chat.completions.create(model=target.text_model, messages=user("hi"))
        assert caught.value.status_code == 401
        assert len(live.fake.received) == 1  # a rejected key is not retried
        assert "wrong-key" not in caught.value.message


@pytest.mark.parametrize("target", PROVIDERS, ids=lambda target: target.id)
def test_rate_limit_after_the_routers_retries_is_still_a_rate_limit_error(target):
    with start_live(target, max_retries=2, retry_base_delay=0.01) as live:
        live.fake.reply(*(target.rate_limited(0) for _ in range(3)))
        with pytest.raises(openai.RateLimitError) as caught:
            live.client().chat.completions.create(model=target.text_model, messages=user("hi"), stream=True)
        assert caught.value.response.headers["retry-after"] == "0"
        assert len(live.fake.received) == 3  # the first attempt and two retries


@pytest.mark.parametrize("target", PROVIDERS, ids=lambda target: target.id)
def test_a_retried_rate_limit_then_an_answer_streams_the_answer(target):
    with start_live(target, max_retries=2, retry_base_delay=0.01) as live:
        live.fake.reply(target.rate_limited(0))
        chunks = list(live.client().chat.completions.create(model=target.text_model, messages=user("hi"), stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == target.expected_text("hi")
        assert len(live.fake.received) == 2


# ---------------------------------------------------------------- models


def test_models_list_and_retrieve(live):
    client = live.client()
    ids = [model.id for model in client.models.list()]
    for model_id in (live.target.text_model, live.target.tool_model, live.target.failing_model):
        assert model_id in ids
    model = client.models.retrieve(live.target.text_model)
    assert model.id == live.target.text_model and model.object == "model"
    assert isinstance(model.created, int) and model.owned_by
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


# ---------------------------------------------------------------- API keys


@pytest.fixture
def keyed(live):
    with start_live(live.target, api_keys=["sk-right", "sk-other"]) as running:
        yield running


def test_wrong_api_key_raises_authentication_error(keyed):
    for call in (
        lambda client: client.chat.completions.create(model=keyed.target.text_model, messages=user("hi")),
        lambda client: client.models.list(),
    ):
        with pytest.raises(openai.AuthenticationError) as caught:
            call(keyed.client(api_key="sk-wrong"))
        assert caught.value.type == "authentication_error"
        assert caught.value.code == "invalid_api_key"


def test_right_api_key_is_let_in(keyed):
    completion = keyed.client(api_key="sk-other").chat.completions.create(
        model=keyed.target.text_model, messages=user("hi")
    )
    assert completion.choices[0].message.content == keyed.target.expected_text("hi")


def test_missing_api_key_is_401_in_openai_shape(keyed):
    request = urllib.request.Request(
        f"{keyed.base_url}/v1/chat/completions", method="POST",
        data=json.dumps({"model": keyed.target.text_model, "messages": user("hi")}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 401
    error = json.loads(caught.value.read())["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "Authorization: Bearer" in error["message"]


# ---------------------------------------------------------------- Node SDK


@pytest.mark.e2e
def test_node_openai_sdk_streams_a_completion(live):
    result = subprocess.run(
        ["node", str(ROOT / "tests" / "js" / "openai_stream.mjs"), f"{live.base_url}/v1", live.target.text_model,
         "hello from node"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["text"] == live.target.expected_text("hello from node")
    assert report["finish_reason"] == "stop"
    assert report["chunks"] >= 3
