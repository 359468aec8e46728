"""/v1/responses under real gunicorn: previous_response_id across 4 gevent
workers on Redis (each continuation on a fresh connection, sent as soon as
the previous response completed), across a restart on SQLite, and the
WebSocket mode under the gevent worker."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import websocket

from .store_support import LOCAL_REDIS, Gunicorn, delete_prefix, unique_prefix

pytestmark = pytest.mark.e2e

WEATHER = {"type": "function", "name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def stream(base: str, body: dict) -> tuple[dict, str]:
    """POST a streamed response; (its final Response object, the worker that served it)."""
    with requests.post(base + "/v1/responses", json={**body, "stream": True}, stream=True, timeout=30) as response:
        assert response.status_code == 200, response.text
        worker = response.headers["X-Switchboard-Worker"]
        for line in response.iter_lines():
            if line.startswith(b"data: {"):
                event = json.loads(line[6:])
                if event["type"] in ("response.completed", "response.failed", "response.incomplete"):
                    # continue at once: the next request must find this response stored
                    return event["response"], worker
    raise AssertionError("the stream ended without a terminal event")


def test_previous_response_id_chains_across_four_workers_on_redis(tmp_path):
    prefix = unique_prefix()
    server = Gunicorn(tmp_path, {"REDIS_URL": LOCAL_REDIS, "SWITCHBOARD_REDIS_PREFIX": prefix,
                                 "SWITCHBOARD_DEMO_DELAY": "0"}, workers=4)
    try:
        base = server.url
        def chain(_):
            # a tool call on one worker, its result continued on whichever worker takes the next connection:
            # without the stored chain the lone function_call_output would be rejected (400)
            call, first_worker = stream(base, {"model": "mock", "input": "Lisbon", "tools": [WEATHER]})
            (item,) = call["output"]
            answer, second_worker = stream(base, {"model": "mock", "previous_response_id": call["id"], "input": [
                {"type": "function_call_output", "call_id": item["call_id"], "output": "22 degrees"}]})
            return answer, first_worker != second_worker

        # Chains run eight at a time: an idle kernel tends to hand every new
        # connection to the same worker, concurrent ones spread over the four.
        switches = 0
        with ThreadPoolExecutor(8) as pool:
            for _ in range(6):
                for answer, switched in pool.map(chain, range(8)):
                    assert answer["status"] == "completed", answer
                    assert answer["output"][0]["content"][0]["text"] == "The tool get_weather returned: 22 degrees"
                    switches += switched
                if switches >= 3:
                    break
        assert switches >= 1, "every continuation landed on the worker of its predecessor"
        assert requests.get(f"{base}/v1/responses/{answer['id']}", timeout=10).json() == answer
    finally:
        server.close()
        delete_prefix(LOCAL_REDIS, prefix)


def test_previous_response_id_survives_a_restart_on_sqlite(tmp_path):
    env = {"SWITCHBOARD_DATABASE": str(tmp_path / "state.db"), "SWITCHBOARD_DEMO_DELAY": "0"}
    server = Gunicorn(tmp_path, env)
    try:
        first, _ = stream(server.url, {"model": "mock", "input": "Remember papaya"})
    finally:
        server.close()
    server = Gunicorn(tmp_path, env)
    try:
        assert requests.get(f"{server.url}/v1/responses/{first['id']}", timeout=10).json() == first
        second, _ = stream(server.url, {"model": "mock", "input": "Which fruit?", "previous_response_id": first["id"]})
        assert second["status"] == "completed" and second["previous_response_id"] == first["id"]
        items = requests.get(f"{server.url}/v1/responses/{second['id']}/input_items", timeout=10).json()
        assert [i["content"][0]["text"] for i in items["data"]] == ["Which fruit?"]
    finally:
        server.close()


def test_websocket_mode_under_the_gevent_worker(tmp_path):
    server = Gunicorn(tmp_path, {"SWITCHBOARD_DATABASE": str(tmp_path / "state.db"), "SWITCHBOARD_DEMO_DELAY": "0"})
    try:
        ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/v1/responses", timeout=10)
        try:
            finals = []
            for text, previous in (("first", None), ("second", "chain")):
                body = {"type": "response.create", "model": "mock", "store": False, "input": text}
                if previous:
                    body["previous_response_id"] = finals[-1]["id"]
                ws.send(json.dumps(body))
                while True:
                    event = json.loads(ws.recv())
                    if event["type"] == "response.completed":
                        finals.append(event["response"])
                        break
            assert [f["output"][0]["content"][0]["text"].split(": ")[-1] for f in finals] == ["first", "second"]
            ws.send(json.dumps({"type": "response.create", "model": "mock", "input": "x",
                                "previous_response_id": "resp_gone"}))
            error = json.loads(ws.recv())
            assert error["type"] == "error" and error["status"] == 400
            assert error["error"]["code"] == "previous_response_not_found"
        finally:
            ws.close()
    finally:
        server.close()
