"""One caller for every surface: with SWITCHBOARD_API_KEYS set, nothing that
serves model output or stored data answers without a key — /api/chat,
/v1/chat/completions, /v1/models, /api/conversations and Socket.IO — and each
refusal comes in its surface's own shape. Conversations stored under the
owner id of earlier versions stay readable by their key."""
from __future__ import annotations

import hashlib

import pytest
import socketio

from proxy import create_app
from proxy.canonical import Message, TextPart
from proxy.store import StoredMessage

from .helpers import ServerThread

pytestmark = pytest.mark.integration

KEY = "sk-team-a-0123456789"
OTHER = "sk-team-b-9876543210"
MSG = [{"role": "user", "content": "owls"}]


@pytest.fixture
def keyed(tmp_path):
    return create_app({"demo_delay": 0, "api_keys": [KEY, OTHER], "database_path": str(tmp_path / "k.db")})


ROUTES = [
    ("POST", "/api/chat", {"messages": MSG}),
    ("POST", "/v1/chat/completions", {"model": "mock", "messages": MSG}),
    ("GET", "/v1/models", None),
    ("GET", "/api/conversations", None),
    ("POST", "/api/conversations", {"title": "x"}),
]


def call(client, method, path, body, headers):
    return client.open(path, method=method, json=body, headers=headers)


@pytest.mark.parametrize("method, path, body", ROUTES)
@pytest.mark.parametrize("headers, says", [
    ({}, "missing API key"),
    ({"Authorization": "Bearer sk-nope"}, "invalid API key"),
    ({"x-api-key": "sk-nope"}, "invalid API key"),
    ({"Authorization": "Basic " + KEY}, "missing API key"),
])
def test_every_model_or_data_route_refuses_without_a_valid_key(keyed, method, path, body, headers, says):
    response = call(keyed.test_client(), method, path, body, headers)
    assert response.status_code == 401, response.get_data(as_text=True)
    error = response.get_json()["error"]  # both surfaces' shape: {"error": {message, type, param, code}}
    assert says in error["message"] and error["code"] == "invalid_api_key"
    assert error["type"] == "authentication_error"
    assert KEY not in response.get_data(as_text=True)


@pytest.mark.parametrize("method, path, body", ROUTES)
@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
def test_a_valid_key_is_let_in_either_way(keyed, method, path, body, style):
    headers = {"Authorization": f"Bearer {KEY}"} if style == "bearer" else {"x-api-key": KEY}
    response = call(keyed.test_client(), method, path, body, headers)
    assert response.status_code in (200, 201), response.get_data(as_text=True)


def test_health_and_head_stay_open(keyed):
    client = keyed.test_client()
    assert client.get("/health").status_code == 200
    assert client.head("/").status_code == 200


def test_models_may_be_opened_by_setting(tmp_path):
    client = create_app({"api_keys": [KEY], "public_models": True,
                         "database_path": str(tmp_path / "m.db")}).test_client()
    assert client.get("/v1/models").status_code == 200
    assert client.post("/api/chat", json={"messages": MSG}).status_code == 401


def test_each_key_sees_only_its_own_conversations(keyed):
    client = keyed.test_client()
    mine = client.post("/api/conversations", json={"title": "mine"}, headers={"x-api-key": KEY}).get_json()
    other = {"Authorization": f"Bearer {OTHER}"}
    assert client.get(f"/api/conversations/{mine['id']}", headers=other).status_code == 404
    assert client.get("/api/conversations", headers=other).get_json()["data"] == []
    # the same key, presented the other way, is the same owner
    same = client.get(f"/api/conversations/{mine['id']}", headers={"Authorization": f"Bearer {KEY}"})
    assert same.status_code == 200


def test_conversations_stored_before_the_caller_was_unified_stay_readable(keyed):
    """Earlier versions stored conversations under "key:" + 32 hex digits of
    the key's SHA-256 (and read X-API-Key too): that record must still be
    its owner's."""
    legacy_owner = "key:" + hashlib.sha256(KEY.encode()).hexdigest()[:32]
    store = keyed.extensions["switchboard"].store
    old = store.create_conversation(legacy_owner, "from before", {},
                                    [StoredMessage.of(Message("user", (TextPart("hello"),)))])
    client = keyed.test_client()
    for headers in ({"x-api-key": KEY}, {"Authorization": f"Bearer {KEY}"}):
        found = client.get(f"/api/conversations/{old.id}", headers=headers)
        assert found.status_code == 200 and found.get_json()["messages"][0]["content"] == "hello"
    # and a chat can continue it
    answer = client.post("/api/chat", json={"messages": MSG, "conversation_id": old.id},
                         headers={"x-api-key": KEY})
    assert answer.status_code == 200 and answer.get_data()
    assert client.get(f"/api/conversations/{old.id}", headers={"x-api-key": KEY}).get_json()["message_count"] == 3


# --- Socket.IO -----------------------------------------------------------------

def sio(app, **kwargs):
    return app.extensions["socketio"].test_client(app, **kwargs)


def test_socketio_refuses_a_connection_without_a_key(keyed):
    client = sio(keyed)
    assert not client.is_connected()
    client = sio(keyed, auth={"token": "sk-nope"})
    assert not client.is_connected()


@pytest.mark.parametrize("how", ["auth-token", "auth-bearer", "header", "x-api-key"])
def test_socketio_accepts_a_key_in_the_handshake(keyed, how):
    kwargs = {
        "auth-token": {"auth": {"token": KEY}},
        "auth-bearer": {"auth": {"token": f"Bearer {KEY}"}},
        "header": {"headers": {"Authorization": f"Bearer {KEY}"}},
        "x-api-key": {"headers": {"x-api-key": KEY}},
    }[how]
    client = sio(keyed, **kwargs)
    assert client.is_connected()
    client.emit("chat", {"messages": MSG})
    names = [packet["name"] for packet in client.get_received()]
    assert names[-1] == "complete" and "error" not in names


def test_socketio_refusal_reason_reaches_a_real_client(tmp_path):
    app = create_app({"demo_delay": 0, "api_keys": [KEY], "database_path": str(tmp_path / "s.db")})
    with ServerThread(app) as server:
        client = socketio.Client(reconnection=False)
        reasons = []
        client.on("connect_error", lambda data: reasons.append(data))
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(f"http://127.0.0.1:{server.port}", transports=["polling"], wait_timeout=5)
        assert reasons and "missing API key" in reasons[0]["message"]
        assert reasons[0]["data"] == {"code": "invalid_api_key"}
        ok = socketio.Client(reconnection=False)
        ok.connect(f"http://127.0.0.1:{server.port}", transports=["polling"], auth={"token": KEY}, wait_timeout=5)
        assert ok.connected
        ok.disconnect()
