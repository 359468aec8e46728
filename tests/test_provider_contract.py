"""The provider contract: classes declare their key variables and settings, the
registry loads them lazily, providers get the store, and `open_upstream` is the
one way to call an upstream (cancel, finished_at, closing, redaction).

    Settings.load -> provider_environment() (each class's declarations) -> ProviderSettings
    Router(settings, store=...) -> cls(credentials, settings, store)
    provider.open -> open_upstream(client, url, body, headers, decoder) -> fake upstream (real socket)
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from proxy import providers as registry
from proxy.canonical import ChatRequest, Message, TextPart, accumulate
from proxy.config import ProviderSettings, Settings
from proxy.errors import UpstreamError
from proxy.providers.base import Decoder, ModelRoute, Provider
from proxy.router import Router

from .fakes.upstream import FakeUpstream, Reply

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-contract-secret-0123456789"


class LineDecoder(Decoder):
    """A toy wire format: each SSE data line is `{"text": ...}` or `{"end": true}`."""

    def __init__(self) -> None:
        self.open = False

    def feed(self, event):
        from proxy.canonical import TextDelta, TextStart

        payload = json.loads(event.data)
        if payload.get("end"):
            self.done = True
            return
        if not self.open:
            self.open = True
            yield TextStart("t")
        yield TextDelta("t", payload["text"])

    def end(self):
        from proxy.canonical import Finish, TextEnd

        if not self.done:
            raise UpstreamError(f"cut short (key {KEY})", code="stream_incomplete")
        return [TextEnd("t"), Finish("stop", "end")]

    def whole(self, body: bytes):
        from proxy.canonical import Finish, TextDelta, TextEnd, TextStart

        text = json.loads(body)["text"]
        return [TextStart("t"), TextDelta("t", text), TextEnd("t"), Finish("stop", "end")]


class ToyProvider(Provider):
    name = "toy"
    key_variables = ("TOY_API_KEY", "TOY_ALT_KEY")
    base_url_variable = "TOY_BASE_URL"
    settings_read = {"bot_id": "TOY_BOT_ID", "workflow_id": "TOY_WORKFLOW_ID"}

    def open(self, request, route):
        from proxy.providers.http import UpstreamClient, open_upstream

        credentials = route.credentials or self.credentials
        client = UpstreamClient(self.name, self.settings)
        return open_upstream(client, credentials.base_url + "/chat", {"q": 1}, {"x-key": credentials.api_key},
                             LineDecoder(), stream=request.stream, secrets=(credentials.api_key,))


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setitem(registry.REGISTRY, "toy", f"{__name__}:ToyProvider")
    yield


def test_the_registry_names_classes_and_imports_none_of_them():
    script = ("import sys, proxy.providers as r\n"
              "print(all(isinstance(v, str) for v in r.REGISTRY.values()), 'requests' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["True", "False"], result.stderr


def test_a_provider_class_declares_its_key_and_settings_without_a_central_table(toy_registered):
    environ = {"TOY_ALT_KEY": "k-alt-123456", "TOY_BASE_URL": "http://toy.example", "TOY_BOT_ID": "bot-7"}
    settings = Settings.load(environ=environ)
    toy = settings.providers["toy"]
    assert (toy.api_key, toy.base_url, toy.key_variable) == ("k-alt-123456", "http://toy.example", "TOY_ALT_KEY")
    assert toy.options == {"bot_id": "bot-7"}
    # none set: errors name the first variable
    assert Settings.load(environ={}).providers["toy"].key_variable == "TOY_API_KEY"


def test_yaml_overrides_the_environment_for_declared_settings(toy_registered, tmp_path):
    config = tmp_path / "switchboard.yaml"
    config.write_text("providers:\n  toy:\n    workflow_id: wf-9\n    bot_id: bot-yaml\n")
    settings = Settings.load(environ={"SWITCHBOARD_CONFIG": str(config), "TOY_BOT_ID": "bot-env"})
    assert settings.providers["toy"].options == {"bot_id": "bot-yaml", "workflow_id": "wf-9"}


def test_the_router_builds_every_provider_with_the_store(toy_registered):
    store = object()
    router = Router(Settings.load(environ={}), environ={}, store=store)
    assert set(router.providers) >= {"demo", "openai", "anthropic", "gemini", "toy"}
    assert all(provider.store is store for provider in router.providers.values())
    assert isinstance(router.providers["toy"], ToyProvider)
    assert not router.providers["toy"].configured and router.providers["demo"].configured


def test_a_registry_line_naming_the_wrong_class_is_an_error(monkeypatch):
    monkeypatch.setitem(registry.REGISTRY, "toy2", f"{__name__}:ToyProvider")
    with pytest.raises(ValueError, match="toy2"):
        registry.provider_class("toy2")


def toy(fake: FakeUpstream) -> tuple[ToyProvider, ModelRoute]:
    provider = ToyProvider(ProviderSettings(KEY, fake.url), Settings(idle_timeout=2.0))
    return provider, ModelRoute("toy-m", "toy", "m", "toy")


def request(stream: bool) -> ChatRequest:
    return ChatRequest("toy-m", [Message("user", (TextPart("hi"),))], stream=stream)


def sse(*payloads: dict) -> bytes:
    return b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads)


def test_open_upstream_streams_releases_the_upstream_before_the_finish(fake_upstream):
    fake_upstream.reply(Reply.sse(sse({"text": "he"}, {"text": "llo"}, {"end": True})))
    provider, route = toy(fake_upstream)
    stream = provider.open(request(True), route)
    events = []
    for event in stream:
        if event.type == "finish":
            assert stream.finished_at is not None  # released before the terminal event is handed over
        events.append(event)
    assert accumulate(events).text == "hello"
    assert fake_upstream.wait_closed()


def test_open_upstream_reads_a_whole_body(fake_upstream):
    fake_upstream.reply(Reply.json({"text": "whole"}))
    provider, route = toy(fake_upstream)
    stream = provider.open(request(False), route)
    assert stream.finished_at is None  # read inside the iteration, not in open()
    assert accumulate(stream).text == "whole"
    assert stream.finished_at is not None


def test_open_upstream_cancel_stops_a_stalled_stream_and_sets_finished_at(fake_upstream):
    fake_upstream.reply(Reply.sse(sse({"text": "a"}, {"text": "b"}), stall_after=1, stall=10))
    provider, route = toy(fake_upstream)
    stream = provider.open(request(True), route)
    assert next(stream).type == "text-start"
    next(stream)
    started = time.monotonic()
    threading.Timer(0.2, stream.cancel).start()
    assert list(stream) == []  # a cancelled stream ends quietly
    assert time.monotonic() - started < 2
    assert stream.finished_at is not None
    assert fake_upstream.wait_closed()


def test_open_upstream_redacts_the_key_from_errors_the_decoder_raises(fake_upstream):
    fake_upstream.reply(Reply.sse(sse({"text": "a"})))  # no end: the decoder raises with the key in it
    provider, route = toy(fake_upstream)
    with pytest.raises(UpstreamError) as caught:
        list(provider.open(request(True), route))
    assert KEY not in caught.value.message and KEY not in str(caught.value)
    assert "[redacted]" in caught.value.message


def test_a_whole_body_past_the_limit_is_an_upstream_error(fake_upstream, monkeypatch):
    from proxy.providers import http

    monkeypatch.setattr(http, "MAX_WHOLE_BODY", 1000)
    fake_upstream.reply(Reply.json({"text": "x" * 5000}))
    provider, route = toy(fake_upstream)
    stream = provider.open(request(False), route)
    with pytest.raises(UpstreamError, match="larger than"):
        list(stream)
    assert stream.finished_at is not None


def test_on_response_sees_the_upstream_headers_before_any_event(fake_upstream):
    from proxy.providers.http import UpstreamClient, open_upstream

    fake_upstream.reply(Reply.sse(sse({"text": "a"}, {"end": True}), headers={"x-conversation-id": "conv-7"}))

    def on_response(headers, upstream):
        upstream.response_headers["x-conversation-id"] = headers["x-conversation-id"]

    client = UpstreamClient("toy", Settings(idle_timeout=2.0))
    stream = open_upstream(client, fake_upstream.url + "/chat", {}, {}, LineDecoder(), stream=True,
                           on_response=on_response)
    assert stream.response_headers == {"x-conversation-id": "conv-7"}
    assert accumulate(stream).text == "a"


def test_a_streamed_event_past_the_limit_is_an_upstream_error(fake_upstream, monkeypatch):
    from proxy.providers import http

    monkeypatch.setattr(http, "MAX_EVENT_BYTES", 100_000)
    endless = b"data: " + b"x" * 300_000  # no newline: one event that never ends
    fake_upstream.reply(Reply(chunks=[*sse({"text": "a"}).split(b"\n\n")[:1], b"\n\n", endless]))
    provider, route = toy(fake_upstream)
    stream = provider.open(request(True), route)
    with pytest.raises(UpstreamError, match="without ending a stream event"):
        list(stream)
    assert stream.finished_at is not None
