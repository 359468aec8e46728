"""Running Switchboard for a team, in one process: per-key models on every
surface, limits answered in each surface's own shape, usage rows for every
way a request ends, /v1/usage, /metrics and log redaction.

Real sockets wherever a provider is involved (fake upstreams of tests/fakes);
the multi-worker guarantees (Redis, gunicorn) are in test_team_gunicorn.py.
"""
from __future__ import annotations

import io
import json
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from proxy import create_app, logs
from proxy.config import ProviderSettings
from proxy.keys import digest
from tests.fakes import anthropic as anthropic_fake
from tests.fakes import openai as openai_fake
from tests.fakes.gemini import KEY as GEMINI_KEY
from tests.fakes.gemini import gemini
from tests.fakes.live import serve
from tests.fakes.upstream import FakeUpstream, Reply, transcript

pytestmark = pytest.mark.integration

TEAM = "sk-team-a-RECOGNIZABLE-0001"
ADMIN = "sk-admin-RECOGNIZABLE-0002"
LIMITED = "sk-limited-RECOGNIZABLE-0003"
OPEN = "sk-env-RECOGNIZABLE-0004"
PROVIDER_KEYS = (openai_fake.KEY, anthropic_fake.KEY, GEMINI_KEY)

KEYS = [
    {"name": "team-a", "key": "sha256:" + digest(TEAM), "models": ["mock", "error-demo", "openai/*", "gemini/*"]},
    {"name": "ops", "key": "sha256:" + digest(ADMIN), "admin": True},
    {"name": "limited", "key": "sha256:" + digest(LIMITED), "rpm": 2},
]


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def upstreams():
    with FakeUpstream() as openai, anthropic_fake.AnthropicUpstream() as anthropic, FakeUpstream() as google:
        yield {"openai": openai, "anthropic": anthropic, "gemini": google}


def make_app(tmp_path, upstreams=None, **settings):
    providers = {}
    if upstreams:
        providers = {
            "openai": ProviderSettings(openai_fake.KEY, upstreams["openai"].url + "/v1", "OPENAI_API_KEY"),
            "anthropic": ProviderSettings(anthropic_fake.KEY, upstreams["anthropic"].url, "ANTHROPIC_API_KEY"),
            "gemini": ProviderSettings(GEMINI_KEY, upstreams["gemini"].url, "GEMINI_API_KEY"),
        }
    config = {"demo_delay": 0, "max_retries": 0, "database_path": str(tmp_path / "s.db"), "keys": KEYS,
              "api_keys": [OPEN], "providers": providers}
    config.update(settings)
    return create_app(config)


def chat_body(model: str, stream: bool = True, text: str = "hello there") -> dict:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}


def usage_rows(app) -> list:
    log = app.extensions["switchboard"].gate.usage
    return log.rows(0, time.time() + 10)


# -- per-key models ------------------------------------------------------------------


def openai_stream(client, model, token):
    return client.post("/v1/chat/completions", json=chat_body(model), headers=auth(token))


def openai_json(client, model, token):
    return client.post("/v1/chat/completions", json=chat_body(model, stream=False), headers=auth(token))


def workbench(client, model, token):
    return client.post("/api/chat", json=chat_body(model), headers=auth(token))


HTTP_SURFACES = {"openai_chat stream": openai_stream, "openai_chat json": openai_json, "workbench": workbench}


@pytest.mark.parametrize("surface", sorted(HTTP_SURFACES))
def test_a_model_the_key_may_not_use_is_403_and_never_reaches_the_upstream(tmp_path, upstreams, surface):
    app = make_app(tmp_path, upstreams)
    client = app.test_client()
    response = HTTP_SURFACES[surface](client, "anthropic/claude-sonnet-4-5", TEAM)
    assert response.status_code == 403
    body = response.get_json()
    error = body["error"]
    assert "team-a" in error["message"] and "anthropic/claude-sonnet-4-5" in error["message"]
    assert error.get("code") == "model_not_allowed"
    assert upstreams["anthropic"].received == []
    # the same model is fine for an unrestricted key, and an allowed one for team-a
    if surface.endswith("json"):
        upstreams["anthropic"].reply(Reply.json(None, raw=transcript("anthropic", "message.json")))
        upstreams["openai"].reply(openai_fake.completion(transcript("openai", "nonstream_text.json")))
    else:
        upstreams["anthropic"].reply(anthropic_fake.sse("basic_text.sse"))
        upstreams["openai"].reply(openai_fake.chat(transcript("openai", "text.sse")))
    assert HTTP_SURFACES[surface](client, "anthropic/claude-sonnet-4-5", OPEN).status_code == 200
    assert HTTP_SURFACES[surface](client, "openai/gpt-4o", TEAM).status_code == 200
    assert len(upstreams["anthropic"].received) == 1 and len(upstreams["openai"].received) == 1
    (rejected,) = [row for row in usage_rows(app) if row.status == "rejected"]
    assert (rejected.key, rejected.model, rejected.error, rejected.input_tokens) == (
        "team-a", "anthropic/claude-sonnet-4-5", "model_not_allowed", 0)


def test_models_listing_shows_the_models_the_key_may_use(tmp_path):
    client = make_app(tmp_path).test_client()
    listed = {model["id"] for model in client.get("/v1/models", headers=auth(TEAM)).get_json()["data"]}
    assert listed == {"mock", "error-demo"}  # openai/* and gemini/* models have no key configured here
    everything = {model["id"] for model in client.get("/v1/models", headers=auth(OPEN)).get_json()["data"]}
    assert {"mock", "error-demo", "reflection-and-thinking"} <= everything


def test_socketio_disallowed_model_gets_an_error_event_with_the_code(tmp_path, upstreams):
    app = make_app(tmp_path, upstreams)
    client = app.extensions["socketio"].test_client(app, headers=auth(TEAM))
    client.emit("chat", {"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]})
    (message,) = client.get_received()
    assert message["name"] == "error" and message["args"][0]["code"] == "model_not_allowed"
    assert upstreams["anthropic"].received == []
    client.emit("chat", {"model": "mock", "messages": [{"role": "user", "content": "hi"}]})
    assert client.get_received()[-1]["name"] == "complete"


def test_unknown_and_missing_keys_are_401(tmp_path):
    client = make_app(tmp_path).test_client()
    for headers in ({}, auth("sk-wrong")):
        response = client.post("/v1/chat/completions", json=chat_body("mock"), headers=headers)
        assert response.status_code == 401 and response.get_json()["error"]["type"] == "authentication_error"


# -- limits in each surface's shape -----------------------------------------------------


def test_rpm_limit_is_429_with_retry_after_in_each_shape(tmp_path):
    app = make_app(tmp_path)
    client = app.test_client()
    assert openai_json(client, "mock", LIMITED).status_code == 200
    assert workbench(client, "mock", LIMITED).status_code == 200
    for call in (openai_json, openai_stream, workbench):
        response = call(client, "mock", LIMITED)
        assert response.status_code == 429
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        error = response.get_json()["error"]
        assert error["code"] == "rpm_exceeded" and "2 requests per minute" in error["message"]
    socket = app.extensions["socketio"].test_client(app, headers=auth(LIMITED))
    socket.emit("chat", {"model": "mock", "messages": [{"role": "user", "content": "hi"}]})
    (message,) = socket.get_received()
    assert message["name"] == "error" and message["args"][0]["code"] == "rpm_exceeded"
    rejections = [row for row in usage_rows(app) if row.status == "rejected"]
    assert len(rejections) == 4 and {row.error for row in rejections} == {"rpm_exceeded"}


def test_concurrency_slot_is_released_when_the_client_leaves(tmp_path):
    keys = [{"name": "one-at-a-time", "key": "sha256:" + digest(TEAM), "max_concurrent": 1}]
    app = make_app(tmp_path, keys=keys, demo_delay=1)
    with serve(app) as url:
        first = requests.post(url + "/api/chat", json=chat_body("reflection-and-thinking"), headers=auth(TEAM),
                              stream=True)
        assert first.status_code == 200
        next(first.iter_content(16))  # streaming: the slot is held
        second = requests.post(url + "/v1/chat/completions", json=chat_body("mock", stream=False), headers=auth(TEAM))
        assert second.status_code == 429 and second.json()["error"]["code"] == "max_concurrent_exceeded"
        first.close()  # the client leaves mid-stream
        deadline = time.monotonic() + 5
        while True:
            third = requests.post(url + "/v1/chat/completions", json=chat_body("mock", stream=False, text="x"),
                                  headers=auth(TEAM))
            if third.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert third.status_code == 200
    statuses = sorted(row.status for row in usage_rows(app))
    assert statuses == ["cancelled", "ok"] + ["rejected"] * (len(statuses) - 2)


# -- usage rows ----------------------------------------------------------------------------


def test_usage_rows_through_the_demo_provider(tmp_path):
    app = make_app(tmp_path, demo_delay=1)
    client = app.test_client()
    text = "x" * 40  # 10 tokens for the demo's estimate
    streamed = openai_stream(client, "mock", TEAM)
    streamed.get_data()
    plain = client.post("/v1/chat/completions", json=chat_body("mock", stream=False, text=text), headers=auth(TEAM))
    assert plain.status_code == 200
    usage = plain.get_json()["usage"]
    failed = client.post("/api/chat", json=chat_body("error-demo", text=text), headers=auth(TEAM))
    assert "event: error" in failed.get_data(as_text=True)
    with serve(app) as url:  # a client that leaves after the first frame
        response = requests.post(url + "/api/chat", json=chat_body("reflection-and-thinking", text=text),
                                 headers=auth(ADMIN), stream=True)
        next(response.iter_content(8))
        response.close()
        deadline = time.monotonic() + 5
        while len(usage_rows(app)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    rows = {row.status + ":" + row.surface: row for row in usage_rows(app)}
    assert set(rows) == {"ok:openai_chat", "error:workbench", "cancelled:workbench"}, rows
    ok = [row for row in usage_rows(app) if row.status == "ok"]
    assert len(ok) == 2 and all(row.key == "team-a" and row.provider == "demo" for row in ok)
    assert (ok[1].input_tokens, ok[1].output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert ok[1].input_tokens == 10 and ok[1].estimated == 0
    assert ok[0].ttft is not None and 0 < ok[0].ttft <= ok[0].duration
    error = rows["error:workbench"]
    produced = "This answer starts well, and then the upstream fails."
    assert (error.error, error.input_tokens, error.output_tokens, error.estimated) == (
        "upstream_error", 10, -(-len(produced) // 4), 1)
    cancelled = rows["cancelled:workbench"]
    assert cancelled.key == "ops" and cancelled.estimated == 1 and cancelled.input_tokens == 10
    assert cancelled.output_tokens < 30 and cancelled.duration < 5


CASES = {
    "openai": ("openai/gpt-4o", lambda: openai_fake.chat(transcript("openai", "text.sse")), (9, 3),
               lambda: openai_fake.completion(transcript("openai", "nonstream_text.json")), (20, 18)),
    "anthropic": ("anthropic/claude-sonnet-4-5", lambda: anthropic_fake.sse("basic_text.sse"), (11, 6),
                  lambda: Reply.json(None, raw=transcript("anthropic", "message.json")), (16, 24)),
    "gemini": ("gemini/gemini-2.5-flash", lambda: gemini(Reply.sse(transcript("gemini", "plain_text.sse"))), (8, 7),
               lambda: gemini(Reply.json(None, raw=transcript("gemini", "generate_content.json"))), (212, 89)),
}


@pytest.mark.parametrize("vendor", sorted(CASES))
def test_usage_rows_through_each_fake_upstream(tmp_path, upstreams, vendor):
    model, streamed_reply, streamed_tokens, json_reply, json_tokens = CASES[vendor]
    prices = {"openai/*": {"input": 2.5, "output": 10}, "anthropic/*": {"input": 3, "output": 15},
              "gemini/*": {"input": 0.3, "output": 2.5}}
    app = make_app(tmp_path, upstreams, prices=prices)
    client = app.test_client()
    upstreams[vendor].reply(streamed_reply(), json_reply())
    streamed = openai_stream(client, model, OPEN)
    assert streamed.status_code == 200 and b"[DONE]" in streamed.get_data()
    assert openai_json(client, model, OPEN).status_code == 200
    # a failure before the first byte: the upstream's 500 (no retries here)
    upstreams[vendor].reply(Reply.json({"error": {"message": "boom", "type": "server_error"}}, status=500))
    assert openai_json(client, model, OPEN).status_code >= 500
    rows = usage_rows(app)
    assert [row.status for row in rows] == ["ok", "ok", "error"]
    price = prices[f"{vendor}/*"]
    for row, tokens in zip(rows[:2], (streamed_tokens, json_tokens), strict=True):
        assert (row.input_tokens, row.output_tokens, row.provider, row.model) == (*tokens, vendor, model)
        assert row.cost == pytest.approx((tokens[0] * price["input"] + tokens[1] * price["output"]) / 1e6)
    assert rows[2].input_tokens == 0 and rows[2].error


def test_v1_usage_aggregates_for_admin_keys_only(tmp_path):
    app = make_app(tmp_path)
    client = app.test_client()
    for token in (TEAM, TEAM, OPEN):
        assert openai_json(client, "mock", token).status_code == 200
    assert client.get("/v1/usage").status_code == 401
    denied = client.get("/v1/usage", headers=auth(TEAM))
    assert denied.status_code == 403 and "admin" in denied.get_json()["error"]["message"]
    body = client.get("/v1/usage?group_by=key", headers=auth(ADMIN)).get_json()
    groups = {group["key"]: group for group in body["data"]}
    assert groups["team-a"]["requests"] == 2 and len(groups) == 2
    expected = sum(row.input_tokens for row in usage_rows(app) if row.key == "team-a")
    assert groups["team-a"]["input_tokens"] == expected > 0
    assert body["totals"]["requests"] == 3
    by_day = client.get("/v1/usage?group_by=day,model", headers=auth(ADMIN)).get_json()["data"]
    assert [(g["model"], g["requests"]) for g in by_day] == [("mock", 3)]
    assert by_day[0]["day"] == time.strftime("%Y-%m-%d", time.gmtime())
    future = client.get(f"/v1/usage?from={time.time() + 100}&to={time.time() + 200}", headers=auth(ADMIN)).get_json()
    assert future["data"] == [] and future["totals"]["requests"] == 0
    bad = client.get("/v1/usage?group_by=colour", headers=auth(ADMIN))
    assert bad.status_code == 400 and "group_by" in bad.get_json()["error"]["message"]


# -- metrics ---------------------------------------------------------------------------------


def scrape(client, headers=None) -> dict:
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.data
    values = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(values, name, **labels) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_what_happened(tmp_path, upstreams):
    app = make_app(tmp_path, upstreams, max_retries=1, retry_base_delay=0.01)
    client = app.test_client()
    before = scrape(client, auth(ADMIN))
    openai_json(client, "mock", TEAM)
    openai_stream(client, "mock", TEAM).get_data()
    workbench(client, "error-demo", TEAM).get_data()
    openai_json(client, "anthropic/x", TEAM)  # 403
    upstreams["openai"].reply(Reply.json({"error": {"message": "busy"}}, status=503),
                              openai_fake.completion(transcript("openai", "nonstream_text.json")))
    assert openai_json(client, "openai/gpt-4o", TEAM).status_code == 200  # one retry, then fine
    after = scrape(client, auth(ADMIN))

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("switchboard_requests_total", surface="openai_chat", model="mock", provider="demo", status="ok") == 2
    assert delta("switchboard_requests_total", surface="workbench", model="error-demo", provider="demo",
                 status="error") == 1
    assert delta("switchboard_requests_total", surface="openai_chat", model="anthropic/x", provider="anthropic",
                 status="rejected") == 1
    assert delta("switchboard_rate_limit_rejections_total", key="team-a", limit="model") == 1
    assert delta("switchboard_retries_total", provider="openai") == 1
    assert delta("switchboard_upstream_errors_total", provider="openai", kind="upstream_error") == 1
    assert delta("switchboard_upstream_errors_total", provider="demo", kind="upstream_error") == 1
    assert delta("switchboard_tokens_total", model="openai/gpt-4o", provider="openai", direction="input") == 20
    assert delta("switchboard_tokens_total", model="openai/gpt-4o", provider="openai", direction="output") == 18
    assert delta("switchboard_request_duration_seconds_count", surface="openai_chat", provider="demo") == 2
    assert delta("switchboard_time_to_first_token_seconds_count", surface="openai_chat", provider="openai") == 1
    assert delta("switchboard_time_to_first_token_seconds_count", surface="workbench", provider="demo") == 1
    assert value(after, "switchboard_active_streams", surface="openai_chat") == value(
        before, "switchboard_active_streams", surface="openai_chat")


def test_metrics_modes(tmp_path):
    admin_only = make_app(tmp_path).test_client()
    assert admin_only.get("/metrics").status_code == 401
    assert admin_only.get("/metrics", headers=auth(TEAM)).status_code == 403
    assert admin_only.get("/metrics", headers=auth(ADMIN)).status_code == 200
    assert make_app(tmp_path, metrics="open").test_client().get("/metrics").status_code == 200
    assert make_app(tmp_path, metrics="off").test_client().get("/metrics", headers=auth(ADMIN)).status_code == 404
    with pytest.raises(ValueError, match="SWITCHBOARD_METRICS must be open, admin or off"):
        make_app(tmp_path, metrics="public")


# -- logs --------------------------------------------------------------------------------------


@pytest.fixture
def log_output():
    out = io.StringIO()
    yield lambda: logs.configure({"SWITCHBOARD_LOG_FORMAT": "json", "SWITCHBOARD_LOG_LEVEL": "DEBUG"}, stream=out) or out
    logs.configure()


def test_no_key_appears_in_logs_or_responses_on_any_error_path(tmp_path, upstreams, log_output):
    app = make_app(tmp_path, upstreams, max_retries=1, retry_base_delay=0.01)
    log_output = log_output()  # after create_app, which sets up the default output
    client = app.test_client()
    bodies = []

    def call(path, body, token=None, headers=None):
        headers = {**(headers or {}), **(auth(token) if token else {})}
        response = client.post(path, json=body, headers=headers)
        bodies.append(response.get_data(as_text=True))
        return response

    call("/v1/chat/completions", chat_body("mock"), "sk-client-WRONG-RECOGNIZABLE")  # 401
    call("/v1/chat/completions", chat_body("mock"), headers={"Authorization": TEAM})  # malformed header: 401
    call("/v1/chat/completions", chat_body("anthropic/x"), TEAM)  # 403
    for _ in range(3):
        call("/v1/chat/completions", chat_body("mock", stream=False), LIMITED)  # 200, 200, 429
    call("/v1/chat/completions", {"model": "mock", "messages": "nope"}, TEAM)  # 400
    call("/v1/chat/completions", chat_body("nope/nope"), TEAM)  # 404 unknown model (not allowed: 403)
    call("/v1/chat/completions", chat_body("error-demo"), OPEN)  # in-band error
    # the provider rejects our provider key; its error body echoes it
    upstreams["openai"].reply(lambda received: Reply.json(
        {"error": {"message": f"Incorrect API key provided: {openai_fake.KEY}", "type": "invalid_request_error"}},
        status=401))
    call("/v1/chat/completions", chat_body("openai/gpt-4o", stream=False), TEAM)
    upstreams["openai"].reply(Reply.json({"error": {"message": "overloaded"}}, status=503),
                              Reply.json({"error": {"message": "overloaded"}}, status=503))
    call("/v1/chat/completions", chat_body("openai/gpt-4o"), TEAM)  # retried, then 503
    upstreams["gemini"].reply(gemini(Reply.sse(transcript("gemini", "plain_text.sse"), cut_after=1)))
    call("/api/chat", chat_body("gemini/gemini-2.5-flash"), TEAM)  # cut mid-stream
    upstreams["anthropic"].reply(anthropic_fake.sse("overloaded_midstream.sse"))
    call("/api/chat", chat_body("anthropic/claude-sonnet-4-5"), OPEN)
    client.get("/v1/usage", headers=auth(TEAM))  # 403
    client.get("/metrics", headers=auth("sk-client-WRONG-RECOGNIZABLE"))  # 401
    text = log_output.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert len(lines) >= 14
    secrets = (TEAM, ADMIN, LIMITED, OPEN, "sk-client-WRONG-RECOGNIZABLE", *PROVIDER_KEYS, "RECOGNIZABLE")
    for secret in secrets:
        assert secret not in text, secret
        for body in bodies:
            assert secret not in body, (secret, body)
    access = [line for line in lines if line["logger"] == "proxy.access"]
    assert {line.get("key") for line in access} >= {"team-a", "limited", OPEN and "key-" + digest(OPEN)[:12]}
    chats = [line for line in access if line["message"] == "chat"]
    assert {line["status"] for line in chats} == {"ok", "error", "rejected"}
    assert {"rpm_exceeded", "model_not_allowed", "upstream_error"} <= {line.get("error") for line in chats}
    for line in chats:
        assert {"surface", "model", "status", "duration", "input_tokens", "output_tokens"} <= set(line)


def test_text_format_under_flask_run():
    out = io.StringIO()
    logs.configure({"FLASK_RUN_FROM_CLI": "true"}, stream=out)
    try:
        logs.access("chat", surface="workbench", key="team-a", status="ok")
        line = out.getvalue()
        assert not line.startswith("{") and "key=team-a" in line and "status=ok" in line
        with pytest.raises(ValueError, match="SWITCHBOARD_LOG_FORMAT must be json or text"):
            logs.configure({"SWITCHBOARD_LOG_FORMAT": "xml"})
    finally:
        logs.configure()
