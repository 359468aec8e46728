"""/v1/responses on a live server (Werkzeug, as `flask run`): storage and
ownership, disconnects, length stops, the WebSocket mode's connection cache
and errors, compaction and the LibreChat model listing."""
from __future__ import annotations

import json
import socket
import time

import pytest
import requests
import websocket

from proxy import create_app

from .fakes.live import serve
from .helpers import wait_until
from .responses_support import validate_response, validate_stream

pytestmark = pytest.mark.integration

K1, K2 = "sk-one", "sk-two"


@pytest.fixture
def base(tmp_path):
    app = create_app({"demo_delay": 0, "database_path": str(tmp_path / "s.db")})
    with serve(app) as url:
        yield url


def post(base, body, key=None, **kwargs):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(base + "/v1/responses", json=body, headers=headers, timeout=20, **kwargs)


def sse_events(text: str) -> list[dict]:
    frames = [f for f in text.split("\n\n") if f and not f.startswith(":")]
    assert frames[-1] == "data: [DONE]"
    return [json.loads(f.split("\n")[1][6:]) for f in frames[:-1]]


def test_a_key_sees_and_continues_only_its_own_responses(tmp_path):
    app = create_app({"demo_delay": 0, "api_keys": [K1, K2], "database_path": str(tmp_path / "s.db")})
    with serve(app) as base:
        assert post(base, {"model": "mock", "input": "hi"}).status_code == 401
        mine = post(base, {"model": "mock", "input": "secret"}, K1).json()
        auth = {"Authorization": f"Bearer {K2}"}
        assert requests.get(f"{base}/v1/responses/{mine['id']}", headers=auth).status_code == 404
        assert requests.get(f"{base}/v1/responses/{mine['id']}/input_items", headers=auth).status_code == 404
        assert requests.delete(f"{base}/v1/responses/{mine['id']}", headers=auth).status_code == 404
        stolen = post(base, {"model": "mock", "input": "x", "previous_response_id": mine["id"]}, K2)
        assert stolen.status_code == 400 and stolen.json()["error"]["code"] == "previous_response_not_found"
        assert post(base, {"model": "mock", "input": "x", "previous_response_id": mine["id"]}, K1).status_code == 200


def test_store_false_stores_nothing_and_delete_forgets(base):
    unstored = post(base, {"model": "mock", "input": "hi", "store": False}).json()
    assert unstored["store"] is False
    assert requests.get(f"{base}/v1/responses/{unstored['id']}").status_code == 404
    again = post(base, {"model": "mock", "input": "x", "previous_response_id": unstored["id"]})
    assert again.json()["error"]["code"] == "previous_response_not_found"
    stored = post(base, {"model": "mock", "input": "hi"}).json()
    deleted = requests.delete(f"{base}/v1/responses/{stored['id']}")
    assert deleted.json() == {"id": stored["id"], "object": "response", "deleted": True}
    missing = requests.get(f"{base}/v1/responses/{stored['id']}")
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "response_id"


def test_input_items_page_in_both_orders(base):
    items = [{"role": "user", "content": f"m{n}"} for n in range(5)]
    response = post(base, {"model": "mock", "input": items}).json()
    url = f"{base}/v1/responses/{response['id']}/input_items"
    first = requests.get(url, params={"limit": 2}).json()  # newest first by default, as OpenAI lists them
    assert [i["content"][0]["text"] for i in first["data"]] == ["m4", "m3"] and first["has_more"] is True
    rest = requests.get(url, params={"limit": 10, "after": first["last_id"]}).json()
    assert [i["content"][0]["text"] for i in rest["data"]] == ["m2", "m1", "m0"] and rest["has_more"] is False
    ascending = requests.get(url, params={"order": "asc"}).json()
    assert [i["content"][0]["text"] for i in ascending["data"]] == [f"m{n}" for n in range(5)]
    assert requests.get(url, params={"limit": 0}).json()["error"]["param"] == "limit"


def test_max_output_tokens_gives_incomplete(base):
    events = sse_events(post(base, {"model": "mock", "input": "tell me", "max_output_tokens": 1, "stream": True}).text)
    validate_stream(events)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    body = post(base, {"model": "mock", "input": "tell me", "max_output_tokens": 1}).json()
    validate_response(body)
    assert body["status"] == "incomplete" and body["output"][0]["status"] == "incomplete"


def test_bad_requests_are_400_in_the_responses_error_shape(base):
    response = post(base, {"model": "mock", "input": [{"type": "function_call_output", "call_id": "c", "output": "o"}]})
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert response.json()["error"]["param"] == "input[0].call_id"
    unknown = post(base, {"model": "no-such-model", "input": "x"})
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "model"


def test_a_client_that_leaves_stops_the_upstream_and_the_response_is_stored_incomplete(tmp_path):
    app = create_app({"demo_delay": 1, "heartbeat_seconds": 0.1, "database_path": str(tmp_path / "s.db")})
    demo = app.extensions["switchboard"].router.providers["demo"]
    with serve(app) as base:
        port = int(base.rsplit(":", 1)[1])
        body = json.dumps({"model": "reflection-and-thinking", "input": "ponder", "stream": True}).encode()
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        received = b""
        while b"response.reasoning.delta" not in received:
            received += sock.recv(65536)
        response_id = json.loads(received.split(b"data: ", 1)[1].split(b"\n", 1)[0])["response"]["id"]
        sock.close()  # gone while the model thinks
        assert wait_until(lambda: demo.recent and demo.recent[-1].cancelled.is_set(), timeout=5)
        assert wait_until(lambda: requests.get(f"{base}/v1/responses/{response_id}").status_code == 200, timeout=5)
        stored = requests.get(f"{base}/v1/responses/{response_id}").json()
    validate_response(stored)
    assert stored["status"] == "incomplete" and stored["incomplete_details"] == {"reason": "cancelled"}
    assert stored["error"] is None
    (reasoning,) = stored["output"]
    assert reasoning["type"] == "reasoning" and reasoning["content"][0]["text"].startswith("Analyzing the request")


# -- WebSocket mode -----------------------------------------------------------------


def ws_turn(ws, body: dict) -> list[dict]:
    ws.send(json.dumps({"type": "response.create", **body}))
    events = []
    while True:
        event = json.loads(ws.recv())
        events.append(event)
        if event["type"] in ("response.completed", "response.failed", "response.incomplete", "error"):
            return events


def test_websocket_runs_responses_in_turn_with_a_connection_cache(base):
    ws = websocket.create_connection(base.replace("http", "ws") + "/v1/responses", timeout=10)
    try:
        first = ws_turn(ws, {"model": "mock", "store": False, "input": "Remember cobalt"})
        validate_stream(first)
        first_id = first[-1]["response"]["id"]
        second = ws_turn(ws, {"model": "mock", "store": False, "previous_response_id": first_id, "input": "Word?"})
        validate_stream(second)
        assert second[-1]["response"]["previous_response_id"] == first_id
        # a failed continuation (a tool output answering no call) drops what it continued from the cache
        failed = ws_turn(ws, {"model": "mock", "store": False, "previous_response_id": first_id,
                              "input": [{"type": "function_call_output", "call_id": "call_none", "output": "x"}]})
        assert failed == [{"type": "error", "status": 400, "error": failed[0]["error"]}]
        assert failed[0]["error"]["param"] == "input[0].call_id"
        stale = ws_turn(ws, {"model": "mock", "store": False, "previous_response_id": first_id, "input": "again"})
        assert stale[0]["error"]["code"] == "previous_response_not_found"
        bad = ws_turn(ws, {"model": "mock", "input": "x", "temperature": "hot"})
        assert bad[0]["status"] == 400 and bad[0]["error"]["param"] == "temperature"
        ws.send("not json")
        assert json.loads(ws.recv())["error"]["message"].startswith("the message is not valid JSON")
    finally:
        ws.close()
    # store: false responses lived only on that connection
    assert requests.get(f"{base}/v1/responses/{first_id}").status_code == 404


def test_websocket_disconnect_cancels_the_upstream(tmp_path):
    app = create_app({"demo_delay": 1, "database_path": str(tmp_path / "s.db")})
    demo = app.extensions["switchboard"].router.providers["demo"]
    with serve(app) as base:
        ws = websocket.create_connection(base.replace("http", "ws") + "/v1/responses", timeout=10)
        ws.send(json.dumps({"type": "response.create", "model": "reflection-and-thinking", "input": "ponder"}))
        while "response.reasoning.delta" not in ws.recv():
            pass
        ws.close()
        started = time.monotonic()
        assert wait_until(lambda: demo.recent and demo.recent[-1].cancelled.is_set(), timeout=5)
        assert time.monotonic() - started < 4  # well before the model would have finished thinking


def test_compact_then_continue_from_the_compaction(base):
    missing = requests.post(base + "/v1/responses/compact", json={"input": "x"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "model"
    compacted = requests.post(base + "/v1/responses/compact", json={"model": "mock", "input": [
        {"role": "user", "content": "We launch Tuesday."}, {"role": "assistant", "content": "Noted."}]}).json()
    assert compacted["object"] == "response.compaction"
    assert [item["type"] for item in compacted["output"]] == ["message", "compaction"]
    follow = post(base, {"model": "mock", "input": [*compacted["output"], {"role": "user", "content": "When?"}]})
    assert follow.status_code == 200 and follow.json()["status"] == "completed"


def test_models_listing_for_librechat(base):
    listing = requests.get(base + "/v1/responses/models").json()
    mock = next(m for m in listing["data"] if m["id"] == "mock")
    assert mock["provider"] == "demo" and mock["name"] == "mock"


def test_presets_answer_and_are_listed_as_agents(tmp_path, monkeypatch):
    import yaml

    from .fakes import openai as openai_fake
    from .fakes.upstream import FakeUpstream

    with FakeUpstream() as fake:
        fake.reply(openai_fake.chat(openai_fake.text_stream("Ahoy", " matey")))
        monkeypatch.setenv("OPENAI_API_KEY", openai_fake.KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url + "/v1")
        config = tmp_path / "switchboard.yaml"
        config.write_text(yaml.safe_dump({"presets": {"pirate": {
            "model": "openai/gpt-4o-mini", "system": "Talk like a pirate.", "description": "arr"}}}))
        app = create_app({"demo_delay": 0, "config_file": str(config), "database_path": str(tmp_path / "s.db")})
        with serve(app) as base:
            listing = requests.get(base + "/v1/responses/models").json()
            (agent,) = [entry for entry in listing["data"] if entry["id"] == "pirate"]
            assert agent["object"] == "agent" and agent["name"] == "pirate" and agent["provider"] == "openai"
            assert agent["instructions"] == "Talk like a pirate."
            events = sse_events(post(base, {"model": "pirate", "input": "hi", "stream": True}).text)
    validate_stream(events)
    final = events[-1]["response"]
    assert final["model"] == "pirate" and final["output"][0]["content"][0]["text"] == "Ahoy matey"
    assert "Talk like a pirate." in json.dumps(fake.received[-1].json["messages"][0])


def test_reasoning_event_names_are_a_deployment_setting(tmp_path):
    import yaml

    config = tmp_path / "switchboard.yaml"
    config.write_text(yaml.safe_dump({"responses": {"reasoning_events": "reasoning_text"}}))
    app = create_app({"demo_delay": 0, "config_file": str(config), "database_path": str(tmp_path / "s.db")})
    types = [event["type"] for event in sse_events(app.test_client().post(
        "/v1/responses", json={"model": "reflection-and-thinking", "input": "hm", "stream": True}).get_data(as_text=True))]
    assert "response.reasoning_text.delta" in types and "response.reasoning.delta" not in types
    config.write_text(yaml.safe_dump({"responses": {"reasoning_events": "both"}}))
    with pytest.raises(ValueError, match="reasoning_events"):
        create_app({"demo_delay": 0, "config_file": str(config), "database_path": str(tmp_path / "s.db")})


def test_heartbeats_while_the_model_thinks_and_one_event_per_message(tmp_path):
    app = create_app({"demo_delay": 1, "heartbeat_seconds": 0.1, "database_path": str(tmp_path / "s.db")})
    with serve(app) as base:
        text = post(base, {"model": "reflection-and-thinking", "input": "hm", "stream": True}).text
    assert ": keepalive" in text  # the THINK_PAUSE of the demo model is silent upstream
    frames = [f for f in text.split("\n\n") if f and not f.startswith(":")]
    for frame in frames[:-1]:
        event_line, data_line = frame.split("\n")
        assert event_line == "event: " + json.loads(data_line[6:])["type"]
    validate_stream(sse_events(text))
