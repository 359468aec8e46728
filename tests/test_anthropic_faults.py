"""Anthropic provider faults over real sockets: every status of the spec's
table before the first byte, and stalls, cuts, malformed lines and the
in-band `event: error` after it."""
from __future__ import annotations

import time

import pytest

from proxy.canonical import ChatRequest, Message, TextPart
from proxy.config import ProviderSettings
from proxy.errors import (
    AuthenticationFailed,
    BadRequest,
    ModelNotFound,
    PayloadTooLarge,
    PermissionDenied,
    ProxyError,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from proxy.streaming import guard
from tests.fakes.anthropic import AnthropicUpstream, error_reply, make_app, sse
from tests.fakes.upstream import Reply, transcript

pytestmark = pytest.mark.integration


@pytest.fixture
def fake():
    with AnthropicUpstream() as server:
        yield server


def chat() -> ChatRequest:
    return ChatRequest(model="anthropic/claude-sonnet-4-5", messages=[Message("user", (TextPart("Hi"),))])


def router_for(fake, **settings):
    return make_app(fake, **settings).extensions["switchboard"].router


@pytest.mark.parametrize(
    ("status", "kind", "error_class", "retryable"),
    [
        (400, "invalid_request_error", BadRequest, False),
        (402, "billing_error", UpstreamError, False),
        (403, "permission_error", PermissionDenied, False),
        (404, "not_found_error", ModelNotFound, False),
        (413, "request_too_large", PayloadTooLarge, False),
        (429, "rate_limit_error", RateLimited, True),
        (500, "api_error", UpstreamError, True),
        (504, "timeout_error", UpstreamError, True),
        (529, "overloaded_error", UpstreamError, True),
    ],
)
def test_status_before_first_byte_maps_to_error_class(fake, status, kind, error_class, retryable):
    fake.reply(error_reply(status, kind, "Overloaded" if status == 529 else f"{kind} happened"))
    with pytest.raises(ProxyError) as caught:
        router_for(fake).open(chat())
    error = caught.value
    assert type(error) is error_class
    assert error.upstream_status == status
    assert error.retryable is retryable
    assert f"anthropic returned {status}" in error.message


def test_wrong_key_is_401_authentication_error_without_leaking_the_key(fake):
    settings = ProviderSettings(api_key="sk-ant-wrong-key-999", base_url=fake.url, key_variable="ANTHROPIC_API_KEY")
    from proxy import create_app

    app = create_app({"demo_delay": 0, "max_retries": 0, "providers": {"anthropic": settings}})
    with pytest.raises(AuthenticationFailed) as caught:
        app.extensions["switchboard"].router.open(chat())
    assert caught.value.upstream_status == 401
    assert "sk-ant-wrong-key-999" not in caught.value.message
    assert fake.received[0].headers.get("X-Api-Key") == "sk-ant-wrong-key-999"


def test_fake_answers_like_the_api_without_version_header(fake):
    import requests

    response = requests.post(f"{fake.url}/v1/messages", json={"max_tokens": 5}, headers={"x-api-key": fake.key}, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["request-id"].startswith("req_")


def test_429_keeps_retry_after(fake):
    fake.reply(error_reply(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit",
                           headers={"retry-after": "7"}))
    with pytest.raises(RateLimited) as caught:
        router_for(fake).open(chat())
    assert caught.value.retry_after == 7
    assert caught.value.retryable


def test_529_keeps_retry_after_and_is_retryable(fake):
    fake.reply(error_reply(529, "overloaded_error", "Overloaded", headers={"retry-after": "3"}))
    with pytest.raises(UpstreamError) as caught:
        router_for(fake).open(chat())
    assert (caught.value.upstream_status, caught.value.retry_after, caught.value.retryable) == (529, 3, True)


def test_workbench_answers_429_with_retry_after_header(fake):
    fake.reply(error_reply(429, "rate_limit_error", "slow down", headers={"retry-after": "7"}))
    client = make_app(fake).test_client()
    response = client.post("/api/chat", json={"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.get_json()["error"]["type"] == "rate_limit_error"


def test_midstream_overloaded_error_is_an_in_band_retryable_error(fake):
    fake.reply(sse("overloaded_midstream.sse"))
    events = list(guard(router_for(fake).open(chat())))
    assert [e.delta for e in events if e.type == "text-delta"] == ["Hello", " there"]
    assert not any(e.type == "finish" for e in events)
    error = events[-1].error
    assert events[-1].type == "error"
    assert isinstance(error, UpstreamError) and error.retryable
    assert (error.upstream_status, error.code) == (529, "overloaded_error")
    assert "req_011CYeT1GYt7Kg27RdtV9zeo" in error.message
    # the provisional usage of message_start is still reported before the error
    usage = [e for e in events if e.type == "usage"]
    assert [(u.input_tokens, u.output_tokens) for u in usage] == [(11, 1)]


def test_midstream_invalid_request_error_keeps_its_class(fake):
    raw = transcript("anthropic", "overloaded_midstream.sse").replace(
        b'"type":"overloaded_error","message":"Overloaded"', b'"type":"invalid_request_error","message":"bad"'
    )
    fake.reply(Reply.sse(raw))
    error = list(guard(router_for(fake).open(chat())))[-1].error
    assert type(error) is BadRequest and not error.retryable


def test_stall_becomes_idle_timeout_within_the_idle_timeout(fake):
    fake.reply(sse("basic_text.sse", stall_after=4, stall=10))
    started = time.monotonic()
    events = list(guard(router_for(fake, idle_timeout=0.5).open(chat())))
    elapsed = time.monotonic() - started
    error = events[-1].error
    assert isinstance(error, UpstreamTimeout) and error.code == "idle_timeout"
    assert [e.delta for e in events if e.type == "text-delta"] == ["Hello"]
    assert elapsed < 3  # behavioural bound: 0.5 s idle, far below the 10 s stall
    assert fake.wait_closed(2.0)


def test_slow_steady_stream_longer_than_idle_timeout_completes(fake):
    # 9 events 0.2 s apart: 1.6 s in total, never 0.5 s silent
    fake.reply(sse("basic_text.sse", delay=0.2))
    started = time.monotonic()
    events = list(guard(router_for(fake, idle_timeout=0.5).open(chat())))
    assert time.monotonic() - started > 0.5
    assert events[-1].type == "finish"
    assert "".join(e.delta for e in events if e.type == "text-delta") == "Hello there!"


def test_cut_connection_is_an_upstream_error_never_a_clean_finish(fake):
    fake.reply(sse("basic_text.sse", cut_after=5))
    events = list(guard(router_for(fake).open(chat())))
    assert not any(e.type == "finish" for e in events)
    assert events[-1].type == "error" and isinstance(events[-1].error, UpstreamError)
    assert events[-1].error.code in ("connection_cut", "stream_incomplete")


def test_stream_closed_cleanly_without_message_stop_is_an_error(fake):
    raw = transcript("anthropic", "basic_text.sse")
    raw = raw[: raw.index(b"event: message_stop")]
    fake.reply(Reply.sse(raw))
    events = list(guard(router_for(fake).open(chat())))
    assert not any(e.type == "finish" for e in events)
    assert events[-1].error.code == "stream_incomplete"


def test_malformed_line_is_an_upstream_error(fake):
    fake.reply(sse("basic_text.sse", malformed_after=4,
                   malformed=b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"te\n\n'))
    events = list(guard(router_for(fake).open(chat())))
    assert [e.delta for e in events if e.type == "text-delta"] == ["Hello"]
    error = events[-1].error
    assert isinstance(error, UpstreamError) and error.code == "malformed_event"
