"""The playground in headless Chromium against a live server: the demo
models through each protocol, an image round trip, an unknown model's error,
and a hostile model reply that must stay text. Screenshots: tests/artifacts/."""
from __future__ import annotations

import pytest

from proxy import create_app
from proxy.config import ProviderSettings
from proxy.providers import demo_images
from tests.browser import chromium, screenshot
from tests.fakes.live import LiveServer
from tests.fakes.openai import KEY, chat, text_stream
from tests.fakes.upstream import FakeUpstream, transcript

# e2e: a browser process; the first run may install Chromium
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

HOSTILE = [
    "Look: <img src=x onerror=\"window.pwned='img'\"> and ",
    "<script>window.pwned='script'</script> and ",
    "[click](javascript:window.pwned='link') and ![pic](javascript:window.pwned='image') ",
    "<b onmouseover=\"window.pwned='b'\">bold?</b>",
]
ANSWERS = ".turn.assistant.done, .turn.assistant.failed"


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream(default=chat(text_stream(*HOSTILE))) as fake:
        yield fake


@pytest.fixture(scope="module")
def server(upstream, tmp_path_factory):
    app = create_app({"demo_delay": 0.05, "max_retries": 0,
                      "database_path": str(tmp_path_factory.mktemp("pg") / "switchboard.db"),
                      "providers": {"openai": ProviderSettings(api_key=KEY, base_url=upstream.url + "/v1",
                                                               key_variable="OPENAI_API_KEY")}})
    with LiveServer(app) as live:
        live.app = app
        yield live


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser, server):
    # bypass_csp: the assertions below run JavaScript in the page (the page's own
    # CSP forbids eval); it also proves the renderer is safe without the CSP.
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url + "/")
    page.wait_for_selector("html[data-ready=true]")
    yield page
    context.close()
    assert errors == [], errors


def answers(page) -> int:
    return page.locator(ANSWERS).count()


def send(page, model: str, text: str, protocol: str | None = None, image: str | None = None):
    """Send one message and wait for its answer; returns the answer's locator."""
    before = answers(page)
    if protocol:
        page.select_option("#protocol", protocol)
    page.fill("#model", model)
    if image:
        page.set_input_files("#image", image)
        page.wait_for_selector(".attachment img")
    page.fill("#prompt", text)
    page.click("#send")
    page.wait_for_function(f"document.querySelectorAll('{ANSWERS}').length > {before}", timeout=30_000)
    return page.locator(".turn.assistant").nth(before)


def check_agent_answer(turn, subject: str):
    assert "failed" not in (turn.get_attribute("class") or "")
    plan = turn.locator(".plan li")
    assert plan.count() == 3
    assert plan.all_inner_texts()[0].startswith("✓")  # the todos marked every step completed
    assert all("completed" in (plan.nth(i).get_attribute("class") or "") for i in range(3))
    assert "3/3 done" in turn.locator(".todo h3").inner_text()
    assert f"The user asked about: {subject}" in turn.locator(".reasoning-text").inner_text()
    assert f"Here is my answer about {subject}: every step of the plan is done." in turn.locator(".body").inner_text()
    assert "first token" in turn.locator(".meta").inner_text()


def test_page_is_served_to_browsers_and_json_to_clients(server):
    import requests

    html = requests.get(server.url + "/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert html.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in html.headers["Content-Security-Policy"]
    assert requests.get(server.url + "/").json()["status"] == "ok"
    assert requests.head(server.url + "/", headers={"Accept": "text/html"}).headers["Content-Type"] == "application/json"
    assert requests.get(server.url + "/", headers={"Accept": "application/json"}).json()["name"] == "switchboard"


def test_agent_demo_over_sse_then_socket_io(page):
    badges = page.locator("#badges")
    page.fill("#model", "agent-demo")
    assert "thinking" in badges.inner_text()
    check_agent_answer(send(page, "agent-demo", "tides", protocol="workbench"), "tides")
    assert page.locator(".frame.kind-sse").count() > 5
    screenshot(page, "playground-agent-demo-sse")

    turn = send(page, "agent-demo", "moons", protocol="socketio")
    check_agent_answer(turn, "moons")
    assert "Socket.IO" in turn.locator(".who").inner_text()
    assert page.locator(".frame.kind-socketio").filter(has_text='["todo_update"').count() >= 1
    screenshot(page, "playground-agent-demo-socketio")


def test_openai_protocol_shows_reasoning_and_usage(page):
    turn = send(page, "reflection-and-thinking", "owls", protocol="openai-chat")
    assert "Analyzing the request" in turn.locator(".reasoning-text").inner_text()
    assert "owls is indeed interesting" in turn.locator(".body").inner_text()
    meta = turn.locator(".meta").inner_text()
    assert "tokens in" in meta and "total" in meta and "finish stop" in meta


def test_an_image_goes_out_and_an_image_comes_back(page, tmp_path):
    picture = tmp_path / "mosaic.png"
    picture.write_bytes(demo_images.render("mosaic"))
    turn = send(page, "text-img-in-text-img-out", "what do you see?", protocol="workbench", image=str(picture))
    assert page.locator(".turn.user img.sent").count() == 1
    image = turn.locator("img.md-image")
    assert image.count() == 1
    page.wait_for_function("[...document.querySelectorAll('.turn.assistant img.md-image')].every(i => i.complete && i.naturalWidth > 0)")
    screenshot(page, "playground-image")


def test_multi_turn_until_cleared(page):
    send(page, "mock", "first", protocol="workbench")
    send(page, "mock", "second")
    requests = page.locator(".frame.kind-request").all_inner_texts()
    assert "1 message(s)" in requests[0] and "3 message(s)" in requests[1]
    page.click("#clear")
    assert page.locator(".turn").count() == 0
    send(page, "mock", "again")
    assert "1 message(s)" in page.locator(".frame.kind-request").all_inner_texts()[-1]


@pytest.mark.parametrize("protocol", ["workbench", "socketio", "openai-chat"])
def test_an_unknown_model_shows_its_error(page, protocol):
    turn = send(page, "no-such-model", "hello", protocol=protocol)
    assert "failed" in turn.get_attribute("class")
    error = turn.locator(".error").inner_text()
    assert "no-such-model" in error
    if protocol != "socketio":
        assert "HTTP 404" in error
    screenshot(page, f"playground-unknown-model-{protocol}")


@pytest.mark.parametrize("protocol", ["workbench", "openai-chat"])
def test_hostile_model_output_stays_text(page, protocol):
    turn = send(page, "openai/gpt-4o", "say something nasty", protocol=protocol)
    body = turn.locator(".body")
    text = body.inner_text()
    assert "<img src=x onerror=" in text and "<script>window.pwned='script'</script>" in text
    assert "<b onmouseover=" in text
    page.wait_for_timeout(300)  # give a planted handler (img onerror) time to fire
    assert page.evaluate("window.pwned") is None
    assert page.evaluate("document.querySelectorAll('.conversation script, .conversation img:not(.sent), .conversation b').length") == 0
    assert page.evaluate("[...document.querySelectorAll('.conversation a')].every(a => a.protocol === 'https:' || a.protocol === 'http:')")
    screenshot(page, f"playground-hostile-{protocol}")


def test_the_playground_inside_a_host_app_under_a_prefix(browser, tmp_path):
    from tests.host_app import create_host_app

    host = create_host_app(SWITCHBOARD_DEMO_DELAY="0.02", SWITCHBOARD_DATABASE=str(tmp_path / "sb.db"))
    with LiveServer(host) as live:
        context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(live.url + "/llm/")
        page.wait_for_selector("html[data-ready=true]")
        check_agent_answer(send(page, "agent-demo", "rivers", protocol="socketio"), "rivers")
        check_agent_answer(send(page, "agent-demo", "lakes", protocol="workbench"), "lakes")
        screenshot(page, "playground-mounted-under-llm")
        context.close()


def test_tool_calls_sources_and_a_midstream_error_over_openai_chat(page, upstream):
    upstream.reply(chat(transcript("openai", "tool_calls_parallel.sse")),
                   chat(transcript("openai", "perplexity_reasoning.sse")),
                   chat(transcript("openai", "midstream_error.sse")))
    tools = send(page, "openai/gpt-4o", "weather?", protocol="openai-chat").locator(".tool")
    assert tools.count() == 2
    assert "get_weather" in tools.nth(0).locator("summary").inner_text()
    assert tools.nth(0).locator(".arguments").inner_text() == '{"city":"Paris"}'
    assert "finish tool_calls" in page.locator(".turn.assistant .meta").nth(0).inner_text()

    sources = send(page, "openai/gpt-4o", "haiku?").locator(".sources a")
    assert [sources.nth(i).get_attribute("href") for i in range(sources.count())] == [
        "https://example.org/haiku", "https://example.org/poetry"]

    failed = send(page, "openai/gpt-4o", "hello?")
    assert "failed" in failed.get_attribute("class")
    assert failed.locator(".body").inner_text() == "Hello"  # what came before the error stays
    assert "The server had an error while processing your request" in failed.locator(".error").inner_text()
    screenshot(page, "playground-tools-sources-error")


def test_api_key_field_when_keys_are_configured(browser, tmp_path):
    app = create_app({"demo_delay": 0, "api_keys": ["sk-play"], "database_path": str(tmp_path / "sb.db")})
    with LiveServer(app) as live:
        context = browser.new_context(bypass_csp=True)
        page = context.new_page()
        page.goto(live.url + "/")
        page.wait_for_selector("html[data-ready=true]")
        assert page.is_visible("#api-key")
        assert "HTTP 401" in page.inner_text("#status")
        page.fill("#api-key", "sk-play")
        page.dispatch_event("#api-key", "change")
        page.wait_for_function("document.querySelectorAll('#model-list option').length > 3")
        turn = send(page, "mock", "with a key", protocol="openai-chat")
        assert "I received your message: with a key" in turn.locator(".body").inner_text()
        assert page.evaluate("sessionStorage.getItem('switchboard.key')") == "sk-play"
        assert page.evaluate("localStorage.length") == 0
        context.close()


def test_presets_are_marked_and_answer(browser, tmp_path):
    config = tmp_path / "switchboard.yaml"
    config.write_text("presets:\n  thoughtful:\n    model: reflection-and-thinking\n    temperature: 0.2\n")
    app = create_app({"demo_delay": 0, "config_file": str(config), "database_path": str(tmp_path / "sb.db")})
    with LiveServer(app) as live:
        context = browser.new_context(bypass_csp=True)
        page = context.new_page()
        page.goto(live.url + "/")
        page.wait_for_selector("html[data-ready=true]")
        assert page.locator("#model-list option[value=thoughtful]").get_attribute("label") is None
        assert page.locator("#model-list option[value=thoughtful]").inner_text() == "preset"
        page.fill("#model", "thoughtful")
        badges = page.locator("#badges").inner_text()
        assert "preset" in badges and "thinking" in badges  # the preset's model's capabilities
        turn = send(page, "thoughtful", "presets", protocol="workbench")
        assert "presets is indeed interesting" in turn.locator(".body").inner_text()
        context.close()


# Adapters of surfaces that land separately: offered (and tested) once the
# app registers their endpoint.
LATER = {"responses": "/v1/responses", "ui-stream": "/api/ai/chat/{block_id}"}


def needs(server, protocol: str) -> None:
    from proxy.surfaces.api_docs import routes

    if LATER[protocol] not in routes(server.app):
        pytest.skip(f"{LATER[protocol]} is not a route of this app yet: the {protocol} adapter is offered once it is")


@pytest.mark.parametrize("protocol", sorted(LATER))
def test_later_protocols_stream_reasoning_text_and_usage(page, server, protocol):
    needs(server, protocol)
    turn = send(page, "reflection-and-thinking", "owls", protocol=protocol)
    assert "failed" not in turn.get_attribute("class"), turn.locator(".error").inner_text()
    assert "Analyzing the request" in turn.locator(".reasoning-text").inner_text()
    assert "owls is indeed interesting" in turn.locator(".body").inner_text()
    assert "tokens in" in turn.locator(".meta").inner_text()
    again = send(page, "mock", "second turn", protocol=protocol)
    assert "I received your message: second turn" in again.locator(".body").inner_text()
    assert "3 message(s)" in page.locator(".frame.kind-request").all_inner_texts()[-1]
    screenshot(page, f"playground-{protocol}")


def test_ui_stream_shows_plan_and_todo(page, server):
    needs(server, "ui-stream")
    check_agent_answer(send(page, "agent-demo", "tides", protocol="ui-stream"), "tides")


@pytest.mark.parametrize("protocol", sorted(LATER))
def test_later_protocols_keep_hostile_output_as_text(page, server, protocol):
    needs(server, protocol)
    turn = send(page, "openai/gpt-4o", "say something nasty", protocol=protocol)
    assert "<script>window.pwned='script'</script>" in turn.locator(".body").inner_text()
    page.wait_for_timeout(300)
    assert page.evaluate("window.pwned") is None
    assert page.evaluate("document.querySelectorAll('.conversation script, .conversation img:not(.sent)').length") == 0


@pytest.mark.parametrize("protocol", sorted(LATER))
def test_later_protocols_show_an_unknown_model_error(page, server, protocol):
    needs(server, protocol)
    turn = send(page, "no-such-model", "hello", protocol=protocol)
    assert "failed" in turn.get_attribute("class")
    assert "no-such-model" in turn.locator(".error").inner_text()
