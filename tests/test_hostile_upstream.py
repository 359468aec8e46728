"""No provider key leaves Switchboard, whatever the upstream does.

    requests -> live Switchboard (/v1/chat/completions streamed and not, /api/chat)
             -> openai / anthropic / gemini provider -> HostileUpstream (tests/fakes/hostile.py)
                                                     -> Bystander (another origin, on a redirect)

For every vendor, behaviour (redirects 301/302/307/308 to another origin,
errors echoing the key as a status body, an HTML page, the vendor's in-band
error event before and after content, a non-JSON line, a JSON error in a 200,
200 bodies and streams that hold no answer) and client surface: the bystander
receives nothing, the key (as is, URL-quoted, JSON-escaped) is in no response
body or header, Socket.IO payload or log line at DEBUG, and the client gets an
error, never an empty success. Retries are on, so the retry log line is covered.
"""
from __future__ import annotations

import json
import logging
import time

import pytest
import requests

from proxy import create_app
from proxy.config import ProviderSettings

from .fakes import hostile
from .fakes.live import serve
from .fakes.upstream import Reply

pytestmark = pytest.mark.integration

VENDORS = ("openai", "anthropic", "gemini")
MODELS = {"openai": "openai/gpt-hostile", "anthropic": "anthropic/claude-hostile", "gemini": "gemini/gemini-hostile"}
SURFACES = ("v1-stream", "v1-whole", "api-chat")


@pytest.fixture(scope="module", params=VENDORS)
def live(request):
    vendor = request.param
    fake = hostile.start(vendor)
    base_url = fake.upstream.url + ("/v1" if vendor == "openai" else "")
    providers = {vendor: ProviderSettings(api_key=fake.key, base_url=base_url,
                                          key_variable=f"{vendor.upper()}_API_KEY")}
    app = create_app({"demo_delay": 0, "max_retries": 1, "retry_base_delay": 0.01, "idle_timeout": 5.0,
                      "providers": providers})
    try:
        with serve(app) as url:
            yield fake, url, app
    finally:
        fake.close()


def ask(url: str, vendor: str, surface: str) -> requests.Response:
    messages = [{"role": "user", "content": "hi"}]
    if surface == "api-chat":
        return requests.post(f"{url}/api/chat", json={"model": MODELS[vendor], "messages": messages}, timeout=30)
    body = {"model": MODELS[vendor], "messages": messages, "stream": surface == "v1-stream"}
    return requests.post(f"{url}/v1/chat/completions", json=body, timeout=30,
                         headers={"Authorization": "Bearer anything"})


def is_error(response: requests.Response) -> bool:
    body = response.content
    return response.status_code >= 400 or b"event: error" in body or b'data: {"error"' in body


def assert_no_leak(fake: hostile.Hostile, response: requests.Response, caplog) -> None:
    seen = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for form in hostile.forms(fake.key):
        assert form not in seen, f"the key reached the client as {form!r}"
        assert form not in logged, f"the key reached a log line as {form!r}"
    assert fake.bystander.received == [], "a request reached another origin"


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("behaviour", hostile.BEHAVIOURS, ids=lambda b: b.__name__)
def test_no_key_leaves_and_every_hostile_answer_is_an_error(live, behaviour, surface, caplog):
    fake, url, _ = live
    caplog.set_level(logging.DEBUG)
    fake.upstream.received.clear()
    fake.bystander.received.clear()
    fake.play(behaviour)
    response = ask(url, fake.vendor, surface)
    # the upstream was really asked, with the key it then echoed (else the test proves nothing)
    assert fake.upstream.received, response.text
    assert all(hostile.sent_key(fake.vendor, r) == fake.key for r in fake.upstream.received)
    assert_no_leak(fake, response, caplog)
    assert is_error(response), f"{behaviour.__name__} on {surface} looked like a success: {response.text[:300]}"
    if behaviour.__name__.startswith("redirect"):
        assert "redirect" in response.text
        assert len(fake.upstream.received) == 1  # a redirect is not retried
    if behaviour is hostile.error_status_json:
        assert len(fake.upstream.received) == 2  # retried once: the retry log line was written and checked


def test_a_redirect_is_not_followed_even_to_the_same_origin(live, caplog):
    """Not following is simpler and safer than judging origins: the base URL should be the final one."""
    fake, url, _ = live
    fake.upstream.received.clear()
    same = fake.upstream.url

    def to_self(vendor, received, elsewhere):
        return Reply.json(None, status=307, raw=b"", headers={"Location": f"{same}/elsewhere"})

    fake.play(to_self)
    response = ask(url, fake.vendor, "v1-whole")
    assert response.status_code == 502 and "redirect" in response.json()["error"]["message"]
    assert [r.path for r in fake.upstream.received] == [fake.upstream.received[0].path]
    assert "/elsewhere" not in response.text


@pytest.mark.parametrize("behaviour", hostile.BEHAVIOURS, ids=lambda b: b.__name__)
def test_socket_io_chats_end_in_an_error_without_the_key(live, behaviour, caplog):
    fake, _, app = live
    caplog.set_level(logging.DEBUG)
    fake.upstream.received.clear()
    fake.bystander.received.clear()
    fake.play(behaviour)
    client = app.extensions["socketio"].test_client(app)
    client.emit("chat", {"id": "c1", "model": MODELS[fake.vendor], "messages": [{"role": "user", "content": "hi"}]})
    packets: list = []
    for _ in range(200):  # the chat runs in a background task: collect until it ends
        packets += client.get_received()
        if any(p["name"] in ("complete", "error") for p in packets):
            break
        time.sleep(0.02)
    client.disconnect()
    names = [p["name"] for p in packets]
    assert names.count("error") == 1 and "complete" not in names, names
    assert fake.upstream.received
    payloads = json.dumps([p["args"] for p in packets])
    logged = caplog.text
    for form in hostile.forms(fake.key):
        assert form not in payloads and form not in logged
    assert fake.bystander.received == []
