"""Workbench conversation persistence through the Flask app: the
/api/conversations endpoints, `conversation_id` on /api/chat and on the
Socket.IO `chat` event, turns cut short, and API-key scoping."""
from __future__ import annotations

import pytest

from proxy import create_app

from .store_support import wait_until

pytestmark = pytest.mark.integration

HI = [{"role": "user", "content": "hi"}]


def new_conversation(client, **body):
    response = client.post("/api/conversations", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_list_load_delete(client):
    empty = client.post("/api/conversations")  # no body at all is fine
    assert empty.status_code == 201 and empty.get_json()["messages"] == []
    created = new_conversation(client, title="Paris", metadata={"ui": "workbench"},
                               messages=[{"role": "system", "content": "be brief"}])
    assert created["id"].startswith("conv_") and created["title"] == "Paris"
    assert [(m["role"], m["content"], m["seq"]) for m in created["messages"]] == [("system", "be brief", 0)]
    listed = client.get("/api/conversations").get_json()
    assert listed["object"] == "list" and listed["has_more"] is False
    assert [c["id"] for c in listed["data"]] == [created["id"], empty.get_json()["id"]]
    assert "messages" not in listed["data"][0] and listed["data"][0]["message_count"] == 1
    page = client.get("/api/conversations?limit=1").get_json()
    assert page["has_more"] is True and len(page["data"]) == 1
    rest = client.get(f"/api/conversations?limit=1&before={page['next_before']}").get_json()
    assert [c["id"] for c in rest["data"]] == [empty.get_json()["id"]]
    loaded = client.get(f"/api/conversations/{created['id']}")
    assert loaded.status_code == 200 and loaded.get_json()["metadata"] == {"ui": "workbench"}
    deleted = client.delete(f"/api/conversations/{created['id']}")
    assert deleted.get_json() == {"id": created["id"], "object": "conversation.deleted", "deleted": True}
    assert client.get(f"/api/conversations/{created['id']}").status_code == 404
    assert client.delete(f"/api/conversations/{created['id']}").status_code == 404


@pytest.mark.parametrize("body, param", [
    ({"title": 5}, "title"), ({"metadata": [1]}, "metadata"), ({"messages": "hi"}, "messages"),
    ({"messages": [{"role": "robot", "content": "x"}]}, None),
])
def test_bad_input_says_what_to_fix(client, body, param):
    response = client.post("/api/conversations", json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    if param:
        assert error["param"] == param
    assert client.get("/api/conversations?limit=0").status_code == 400
    assert client.get("/api/conversations?before=x").status_code == 400


def test_chat_saves_the_whole_turn(client):
    conversation = new_conversation(client)
    body = {"model": "agent-demo", "conversation_id": conversation["id"],
            "messages": [{"role": "user", "content": "tides"}]}
    streamed = client.post("/api/chat", json=body).get_data(as_text=True)
    assert streamed.endswith("data: [DONE]\n\n") and "event: error" not in streamed
    saved = client.get(f"/api/conversations/{conversation['id']}").get_json()
    assert saved["title"] == "tides"
    question, answer = saved["messages"]
    assert (question["role"], question["content"]) == ("user", "tides")
    assert answer["role"] == "assistant" and answer["status"] == "complete"
    assert answer["content"] == "Here is my answer about tides: every step of the plan is done."
    assert answer["reasoning"].startswith("The user asked about: tides")
    assert [s["status"] for s in answer["plan"]["steps"]] == ["completed"] * 3
    assert answer["finish_reason"] == "stop" and answer["model"] == "agent-demo"
    assert [p["type"] for p in answer["parts"]] == ["reasoning", "reasoning", "text"]  # two reasoning blocks
    # a second chat appends after the first
    client.post("/api/chat", json={**body, "model": "mock", "messages": [{"role": "user", "content": "again"}]}).get_data()
    saved = client.get(f"/api/conversations/{conversation['id']}").get_json()
    assert [m["content"] for m in saved["messages"]][2:] == [
        "again", "This is a response from the mock model. I received your message: again"]


def test_chat_without_conversation_saves_nothing(client):
    conversation = new_conversation(client)
    client.post("/api/chat", json={"messages": HI}).get_data()
    assert client.get(f"/api/conversations/{conversation['id']}").get_json()["messages"] == []


@pytest.mark.parametrize("value, status", [("conv_0123456789abcdef0123456789abcdef", 404), (7, 400), ("", 400)])
def test_chat_with_a_bad_conversation_id_fails_before_streaming(client, value, status):
    response = client.post("/api/chat", json={"messages": HI, "conversation_id": value})
    assert response.status_code == status
    assert response.get_json()["error"]["param"] == "conversation_id"


def test_client_that_leaves_early_leaves_an_incomplete_turn(tmp_path):
    app = create_app({"demo_delay": 0.3, "heartbeat_seconds": 0.05, "database_path": str(tmp_path / "s.db")})
    client = app.test_client()
    conversation = new_conversation(client)
    response = client.post("/api/chat", buffered=False, json={
        "model": "reflection-and-thinking", "conversation_id": conversation["id"], "messages": HI})
    first = next(response.response)
    assert b"Analyzing" in first or first.startswith(b":")
    response.close()  # the client goes away while the model still thinks

    def saved():
        messages = client.get(f"/api/conversations/{conversation['id']}").get_json()["messages"]
        return messages if len(messages) == 2 else None

    question, answer = wait_until(saved, timeout=5)
    assert question["content"] == "hi"
    assert answer["status"] == "incomplete"
    assert answer["reasoning"].startswith("Analyzing the request")
    assert "is indeed interesting" not in answer["content"]
    assert answer["error"]["code"]


def test_socketio_chat_saves_the_turn(app, client):
    conversation = new_conversation(client)
    socket = app.extensions["socketio"].test_client(app, flask_test_client=client)
    socket.emit("chat", {"id": "c1", "model": "mock", "conversation_id": conversation["id"], "messages": HI})
    received = socket.get_received()
    assert received[-1]["name"] == "complete"
    saved = client.get(f"/api/conversations/{conversation['id']}").get_json()["messages"]
    assert [(m["role"], m["status"]) for m in saved] == [("user", "complete"), ("assistant", "complete")]
    assert saved[1]["content"].endswith("your message: hi")
    socket.emit("chat", {"id": "c2", "messages": HI, "conversation_id": "conv_missing"})
    error = socket.get_received()[-1]
    assert error["name"] == "error" and error["args"][0]["code"] == "conversation_not_found"
    socket.disconnect()


def test_conversations_are_scoped_to_the_api_key(tmp_path):
    app = create_app({"demo_delay": 0, "api_keys": ["key-a", "key-b"], "database_path": str(tmp_path / "s.db")})
    client = app.test_client()
    a = {"Authorization": "Bearer key-a"}
    b = {"X-API-Key": "key-b"}
    assert client.get("/api/conversations").status_code == 401
    assert client.get("/api/conversations", headers={"Authorization": "Bearer nope"}).status_code == 401
    created = client.post("/api/conversations", json={"title": "mine"}, headers=a).get_json()
    assert [c["id"] for c in client.get("/api/conversations", headers=a).get_json()["data"]] == [created["id"]]
    assert client.get("/api/conversations", headers=b).get_json()["data"] == []
    assert client.get(f"/api/conversations/{created['id']}", headers=b).status_code == 404
    assert client.delete(f"/api/conversations/{created['id']}", headers=b).status_code == 404
    chat = client.post("/api/chat", headers=b, json={"messages": HI, "conversation_id": created["id"]})
    assert chat.status_code == 404
    client.post("/api/chat", headers=a, json={"messages": HI, "conversation_id": created["id"]}).get_data()
    assert client.get(f"/api/conversations/{created['id']}", headers=a).get_json()["message_count"] == 2


def test_worker_header_only_when_asked(tmp_path, client):
    assert "X-Switchboard-Worker" not in client.get("/api/conversations").headers
    app = create_app({"debug_headers": True, "database_path": str(tmp_path / "s.db")})
    assert app.test_client().get("/api/conversations").headers["X-Switchboard-Worker"].isdigit()
