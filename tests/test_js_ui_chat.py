"""The real `ai` 7 package (tests/js/ui_chat.mjs: DefaultChatTransport,
readUIMessageStream, AbstractChat = useChat without React) against a live
Switchboard, through the demo provider and each provider's fake upstream.

Also: the exchange the server stored is the message the client assembled,
and resumeStream() after a dropped connection against 4 gunicorn workers on
Redis gives the same message as an uninterrupted reply.
"""
from __future__ import annotations

import base64
import json
import pathlib
import shutil
import subprocess

import pytest
import requests

from .fakes import scripted
from .store_support import LOCAL_REDIS, Gunicorn, delete_prefix, unique_prefix
from .test_openai_sdk import DEMO, TARGETS, start_live

pytestmark = pytest.mark.e2e

SCRIPT = pathlib.Path(__file__).parent / "js" / "ui_chat.mjs"
ROOT = SCRIPT.parent.parent.parent
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def run(plan: dict, timeout: float = 60) -> dict:
    node = shutil.which("node")
    assert node, "node is required for the JavaScript client tests"
    result = subprocess.run([node, str(SCRIPT), json.dumps(plan)], cwd=ROOT, capture_output=True, text=True,
                            timeout=timeout)
    lines = result.stdout.strip().splitlines()
    assert lines, f"no output; stderr: {result.stderr}"
    outcome = json.loads(lines[-1])
    assert result.returncode == 0 and "crashed" not in outcome, outcome
    return outcome


@pytest.fixture(params=TARGETS, ids=lambda target: target.id)
def live(request):
    with start_live(request.param) as running:
        yield running


def assistant(outcome: dict) -> dict:
    message = outcome["messages"][-1]
    assert message["role"] == "assistant"
    return message


def texts(message: dict, kind: str = "text") -> str:
    return "".join(part["text"] for part in message["parts"] if part["type"] == kind)


def test_transport_and_read_ui_message_stream(live):
    target = live.target
    outcome = run({"mode": "transport", "api": f"{live.base_url}/api/ai/chat/block-1", "text": "hello there",
                   "body": {"model": target.text_model}})
    assert outcome["error"] is None
    types = [chunk["type"] for chunk in outcome["chunks"]]
    assert types[:3] == ["start", "start-step", "text-start"]
    assert types[-3:] == ["text-end", "finish-step", "finish"]
    start = outcome["chunks"][0]
    assert start["messageMetadata"] == {"model": target.text_model, "preset": None}
    message = outcome["message"]
    assert message["id"] == start["messageId"]
    assert [part["type"] for part in message["parts"]] == ["step-start", "text"]
    assert message["parts"][1]["state"] == "done"
    assert texts(message) == target.expected_text("hello there")
    assert message["metadata"]["usage"]["outputTokens"] > 0


def test_chat_reasoning_before_text(live):
    target = live.target
    block = f"thinking-{target.id}"  # the targets' apps share one database
    outcome = run({"mode": "chat", "api": f"{live.base_url}/api/ai/chat/{block}", "text": "owls",
                   "body": {"model": target.reasoning_model}})
    assert outcome["status"] == "ready" and outcome["errors"] == [], outcome
    message = assistant(outcome)
    kinds = [part["type"] for part in message["parts"] if part["type"] in ("reasoning", "text")]
    assert kinds.index("reasoning") < kinds.index("text") and "reasoning" not in kinds[kinds.index("text"):]
    assert texts(message, "reasoning") == target.expected_reasoning
    assert outcome["finishes"][-1] == {"finishReason": "stop", "isError": False, "isAbort": False}
    # the server kept the same message, reasoning metadata (signatures) included
    stored = requests.get(f"{live.base_url}/api/ai/conversations/{block}", timeout=10).json()["messages"]
    assert stored == outcome["messages"]


def test_chat_client_side_tool_round_trip(live):
    """onToolCall + addToolOutput, then the chat sends again by itself and the
    model quotes the result: one assistant message, as useChat shows it."""
    target = live.target
    outcome = run({"mode": "chat", "api": f"{live.base_url}/api/ai/chat/block-3", "text": "Lisbon",
                   "body": {"model": target.tool_model, "tools": [WEATHER]}, "toolOutput": "sunny, 21 C"})
    assert outcome["status"] == "ready" and outcome["errors"] == [], outcome
    assert outcome["toolCalls"] == [{"toolName": "get_weather", "input": {"city": "Lisbon"}, "dynamic": False}]
    assert len(outcome["messages"]) == 2
    message = assistant(outcome)
    (tool,) = [part for part in message["parts"] if part["type"] == "tool-get_weather"]
    assert tool["state"] == "output-available" and tool["output"] == "sunny, 21 C"
    assert texts(message) == scripted.quote_text("get_weather", "sunny, 21 C")
    assert [f["finishReason"] for f in outcome["finishes"]] == ["tool-calls", "stop"]
    if live.fake is not None:
        call_id = tool["toolCallId"]
        target.check_tool_result(live.fake.received[-1], call_id, "sunny, 21 C")


def test_unknown_model_is_the_chats_error(live):
    outcome = run({"mode": "chat", "api": f"{live.base_url}/api/ai/chat/block-4", "text": "hi",
                   "body": {"model": live.target.unknown_upstream_model or "no-such-model"}})
    assert outcome["status"] == "error"
    assert "model" in outcome["error"] and outcome["errors"] == [outcome["error"]]
    assert len(outcome["messages"]) == 1  # no assistant message pretends to answer


def test_mid_stream_failure_is_an_error_never_a_finish(live):
    target = live.target
    api = f"{live.base_url}/api/ai/chat/block-5"
    outcome = run({"mode": "transport", "api": api, "text": "hi", "body": {"model": target.failing_model}})
    types = [chunk["type"] for chunk in outcome["chunks"]]
    assert types[-1] == "error" and "finish" not in types
    assert target.failing_message in outcome["chunks"][-1]["errorText"]
    assert outcome["error"] is not None and target.failing_message in outcome["error"]
    chat = run({"mode": "chat", "api": api, "text": "hi", "body": {"model": target.failing_model}})
    assert chat["status"] == "error" and target.failing_message in chat["error"]
    assert texts(assistant(chat)).startswith(target.failing_text)  # the partial answer stays visible
    stored = requests.get(f"{live.base_url}/api/ai/conversations/block-5", timeout=10).json()["messages"]
    assert stored[-1]["metadata"]["status"] == "failed"
    assert target.failing_message in stored[-1]["metadata"]["errorText"]


# -- demo-only content: images and agent progress ------------------------------------------


@pytest.fixture
def demo():
    with start_live(DEMO) as running:
        yield running


def test_generated_image_is_a_file_part(demo):
    outcome = run({"mode": "chat", "api": f"{demo.base_url}/api/ai/chat/img", "text": "a cat",
                   "body": {"model": "text-in-image-out"}})
    assert outcome["status"] == "ready", outcome
    files = [part for part in assistant(outcome)["parts"] if part["type"] == "file"]
    assert len(files) == 1 and files[0]["mediaType"] == "image/png"
    url = files[0]["url"]  # a data: URL unless SWITCHBOARD_PUBLIC_URL says how clients reach the server
    png = base64.b64decode(url.split(",", 1)[1]) if url.startswith("data:") else requests.get(url, timeout=10).content
    assert png.startswith(b"\x89PNG")


def test_agent_plan_and_todo_are_data_parts(demo):
    outcome = run({"mode": "chat", "api": f"{demo.base_url}/api/ai/chat/agent", "text": "owls",
                   "body": {"model": "agent-demo"}})
    assert outcome["status"] == "ready", outcome
    parts = assistant(outcome)["parts"]
    plans = [part for part in parts if part["type"] == "data-plan"]
    todos = [part for part in parts if part["type"] == "data-todo"]
    assert len(plans) == 1 and len(todos) == 1  # each update replaced the last, by id
    assert [step["id"] for step in plans[0]["data"]["steps"]] == ["step-1", "step-2", "step-3"]
    assert {item["status"] for item in todos[0]["data"]["items"]} == {"completed"}
    assert "reasoning" in [part["type"] for part in parts] and texts(assistant(outcome))


def test_text_stream_protocol_and_the_api_chat_mount(demo):
    expected = scripted.mock_text("hello")
    for api in (f"{demo.base_url}/api/chat?protocol=text", f"{demo.base_url}/api/ai/chat/t?protocol=text"):
        outcome = run({"mode": "text", "protocol": "text", "api": api, "text": "hello", "body": {"model": "mock"}})
        assert outcome["status"] == "ready" and texts(assistant(outcome)) == expected, outcome
    outcome = run({"mode": "chat", "api": f"{demo.base_url}/api/chat", "text": "hello"})
    assert outcome["status"] == "ready" and texts(assistant(outcome)) == expected
    # the Workbench body on the same path keeps its own protocol
    response = requests.post(f"{demo.base_url}/api/chat", json={"messages": [{"role": "user", "content": "hello"}]},
                             timeout=10)
    assert response.headers.get("x-vercel-ai-ui-message-stream") is None
    assert '"content"' in response.text and "text-delta" not in response.text


def test_server_keeps_the_exchange_the_client_assembled(demo):
    """An exchange the client never saved is there after a reload, equal to
    what useChat shows; a saved conversation reloads identically."""
    api = f"{demo.base_url}/api/ai/chat/kept"
    outcome = run({"mode": "chat", "api": api, "text": "Porto", "body": {"model": "tool-demo", "tools": [WEATHER]},
                   "toolOutput": {"t": 18}})
    assert outcome["status"] == "ready"
    stored = requests.get(f"{demo.base_url}/api/ai/conversations/kept", timeout=10).json()["messages"]
    assert stored == outcome["messages"]
    # the next turn, driven from the reloaded history, is appended after it
    again = run({"mode": "chat", "api": api, "text": "and tomorrow?", "body": {"model": "mock"}, "messages": stored})
    assert again["status"] == "ready"
    assert requests.get(f"{demo.base_url}/api/ai/conversations/kept", timeout=10).json()["messages"] == again["messages"]
    # an explicit save replaces; GET returns exactly what was saved
    saved = {"messages": again["messages"][:2]}
    assert requests.post(f"{demo.base_url}/api/ai/conversations/kept", json=saved, timeout=10).status_code == 200
    assert requests.get(f"{demo.base_url}/api/ai/conversations/kept", timeout=10).json() == saved
    assert requests.delete(f"{demo.base_url}/api/ai/conversations/kept", timeout=10).json() == {"deleted": True}
    assert requests.get(f"{demo.base_url}/api/ai/conversations/kept", timeout=10).json() == {"messages": []}


# -- resuming under gunicorn with Redis ------------------------------------------------------


@pytest.fixture
def four_workers(tmp_path):
    prefix = unique_prefix()
    server = Gunicorn(tmp_path, {"REDIS_URL": LOCAL_REDIS, "SWITCHBOARD_REDIS_PREFIX": prefix,
                                 "SWITCHBOARD_DEMO_DELAY": "1", "SWITCHBOARD_RESUME_GRACE_SECONDS": "20"},
                      workers=4)
    try:
        yield server
    finally:
        server.close()
        delete_prefix(LOCAL_REDIS, prefix)


def test_resume_after_a_dropped_connection_on_four_workers(four_workers):
    api = f"{four_workers.url}/api/ai/chat/resumable"
    plan = {"api": api, "text": "owls", "body": {"model": "agent-demo"}}
    whole = run({**plan, "mode": "chat", "chatId": "uninterrupted"})
    assert whole["status"] == "ready"
    outcome = run({**plan, "mode": "resume", "chatId": "dropped", "dropAfter": 5})
    assert outcome["dropped"] and outcome["statuses"] == ["ready", "ready"], outcome
    partial = outcome["first"][-1]
    assert not texts(partial) and texts(partial, "reasoning")  # it really was cut short, mid-reasoning

    def comparable(message):
        return {key: value for key, value in message.items() if key != "id"}

    for messages in (outcome["same"], outcome["reloaded"]):
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert comparable(messages[-1]) == comparable(assistant(whole))
        assert messages[-1]["id"] == partial["id"]  # the reply kept its message id
    # finished: nothing in flight any more
    assert requests.get(f"{api}/dropped/stream", timeout=10).status_code == 204
    again = run({**plan, "mode": "reconnect", "chatId": "dropped"})
    assert again["status"] == "ready" and again["messages"] == []
    # the server stored the resumed reply whole (the grace period kept it running)
    stored = requests.get(f"{four_workers.url}/api/ai/conversations/resumable", timeout=10).json()["messages"]
    assert comparable(stored[-1]) == comparable(assistant(whole))


def test_nothing_in_flight_is_204(demo):
    for path in ("/api/ai/chat/none/stream", "/api/ai/chat/none/chat-1/stream", "/api/chat/chat-1/stream"):
        response = requests.get(demo.base_url + path, timeout=10)
        assert response.status_code == 204 and response.content == b""
