"""Every Gemini fault -> the right canonical error: statuses before the first
byte (classified by Google's error body, not only the status), the retry
delay from RetryInfo, stalls, cuts, malformed lines, in-band error objects,
and a body that ends without a finishReason."""
from __future__ import annotations

import time

import pytest

from proxy.errors import (
    AuthenticationFailed,
    BadRequest,
    ModelNotFound,
    PermissionDenied,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from proxy.providers.gemini.decode import ResponseDecoder
from tests.fakes.gemini import error_reply, gemini, transcript_json
from tests.fakes.upstream import Reply, split_events
from tests.gemini_helpers import MODEL, ask, gemini_app, kinds, run, sse

pytestmark = pytest.mark.integration


def _open_error(app, fake_upstream, reply) -> Exception:
    fake_upstream.reply(gemini(reply))
    with pytest.raises(Exception) as caught:
        app.extensions["switchboard"].router.open(ask())
    return caught.value


@pytest.mark.parametrize(
    ("reply", "kind", "status", "retryable"),
    [
        (error_reply(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), BadRequest, 400, False),
        (error_reply(400, "FAILED_PRECONDITION", "User location is not supported."), BadRequest, 400, False),
        (error_reply(403, "PERMISSION_DENIED", "Your API key was reported as leaked."), PermissionDenied, 403, False),
        (error_reply(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta"), ModelNotFound, 404, False),
        (error_reply(500, "INTERNAL", "An internal error has occurred."), UpstreamError, 500, True),
        (error_reply(503, "UNAVAILABLE", "The model is overloaded. Please try again later."), UpstreamError, 503, True),
        (error_reply(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."), UpstreamTimeout, 504, True),
    ],
)
def test_error_statuses_before_the_first_byte(fake_upstream, reply, kind, status, retryable):
    error = _open_error(gemini_app(fake_upstream), fake_upstream, reply)
    assert type(error) is kind
    assert error.upstream_status == status and error.retryable is retryable
    assert error.provider == "gemini"


def test_an_invalid_key_is_an_authentication_error_although_gemini_says_400(fake_upstream):
    app = gemini_app(fake_upstream)
    app.extensions["switchboard"].router.providers["gemini"].credentials.api_key = "AIzaWrongKey123"
    fake_upstream.reply(gemini(Reply.sse(sse("plain_text.sse"))))
    with pytest.raises(AuthenticationFailed) as caught:
        app.extensions["switchboard"].router.open(ask())
    assert caught.value.upstream_status == 400 and "API key not valid" in caught.value.message
    assert "AIzaWrongKey123" not in caught.value.message


def test_429_keeps_the_retry_delay_from_the_body(fake_upstream):
    error = _open_error(gemini_app(fake_upstream), fake_upstream, transcript_json("error_rate_per_minute.json", 429))
    assert type(error) is RateLimited
    assert error.retry_after == 2.5 and error.retryable and error.upstream_status == 429


def test_a_per_day_quota_is_not_worth_retrying(fake_upstream):
    error = _open_error(gemini_app(fake_upstream), fake_upstream, transcript_json("error_quota_per_day.json", 429))
    assert type(error) is RateLimited
    assert error.code == "insufficient_quota" and not error.retryable and error.retry_after == 32


def test_an_error_body_that_is_a_json_list_is_understood(fake_upstream):
    raw = b'[{\n  "error": {\n    "code": 403,\n    "message": "Method doesn\'t allow unregistered callers.",\n    "status": "PERMISSION_DENIED"\n  }\n}\n]'
    error = _open_error(gemini_app(fake_upstream), fake_upstream, Reply.json(None, status=403, raw=raw))
    assert type(error) is PermissionDenied and "unregistered callers" in error.message


def test_a_mid_stream_error_object_becomes_an_in_band_error(fake_upstream):
    fake_upstream.reply(gemini(Reply.sse(sse("midstream_error.sse"))))
    events = run(gemini_app(fake_upstream), ask())
    assert kinds(events) == ["response-metadata", "text-start", "text-delta", "error"]
    error = events[-1].error
    assert type(error) is UpstreamError and error.upstream_status == 503 and "overloaded" in error.message


def test_a_body_that_ends_without_a_finish_reason_is_an_error(fake_upstream):
    first = split_events(sse("plain_text.sse"))[0]
    fake_upstream.reply(gemini(Reply.sse(first)))
    events = run(gemini_app(fake_upstream), ask())
    assert events[-1].type == "error" and events[-1].error.code == "stream_incomplete"
    assert not any(e.type == "finish" for e in events)


def test_a_cut_connection_is_an_upstream_error_never_a_clean_finish(fake_upstream):
    fake_upstream.reply(gemini(Reply.sse(sse("thinking.sse"), cut_after=2)))
    events = run(gemini_app(fake_upstream), ask())
    assert events[-1].type == "error" and isinstance(events[-1].error, UpstreamError)
    assert not any(e.type == "finish" for e in events)


def test_a_malformed_line_is_an_upstream_error(fake_upstream):
    fake_upstream.reply(gemini(Reply.sse(sse("plain_text.sse"), malformed_after=1)))
    events = run(gemini_app(fake_upstream), ask())
    assert events[-1].type == "error" and events[-1].error.code == "malformed_stream"
    assert not any(e.type == "finish" for e in events)


def test_a_stall_longer_than_the_idle_timeout_is_an_idle_timeout_error(fake_upstream):
    fake_upstream.reply(gemini(Reply.sse(sse("thinking.sse"), stall_after=1, stall=5)))
    app = gemini_app(fake_upstream, idle_timeout=0.5)
    started = time.monotonic()
    events = run(app, ask())
    waited = time.monotonic() - started
    assert events[-1].type == "error" and events[-1].error.code == "idle_timeout"
    assert isinstance(events[-1].error, UpstreamTimeout)
    assert waited < 3  # behavioural bound: the 5 s stall was not waited out
    assert fake_upstream.wait_closed(1.0)


def test_a_slow_but_steady_stream_longer_than_the_idle_timeout_completes(fake_upstream):
    fake_upstream.reply(gemini(Reply.sse(sse("thinking.sse"), delay=0.3)))
    events = run(gemini_app(fake_upstream, idle_timeout=0.5), ask())
    assert events[-1].type == "finish" and events[-1].unified == "stop"


def test_a_stall_before_the_non_streaming_body_is_an_idle_timeout_too(fake_upstream):
    body = sse("generate_content.json")
    reply = Reply([body[:100], body[100:]], content_type="application/json; charset=UTF-8", paced=True,
                  stall_after=1, stall=5)
    fake_upstream.reply(gemini(reply))
    events = run(gemini_app(fake_upstream, idle_timeout=0.5), ask(stream=False))
    assert events[-1].type == "error" and events[-1].error.code == "idle_timeout"


def test_a_cut_non_streaming_body_is_an_upstream_error(fake_upstream):
    body = sse("generate_content.json")
    fake_upstream.reply(gemini(Reply([body[:100], body[100:]], content_type="application/json", paced=True, cut_after=1)))
    events = run(gemini_app(fake_upstream), ask(stream=False))
    assert events[-1].type == "error" and isinstance(events[-1].error, UpstreamError)


def test_decoder_rejects_a_chunk_that_is_not_an_object():
    with pytest.raises(UpstreamError):
        ResponseDecoder(MODEL).feed_bytes(b'"just a string"')
