"""The store under real gunicorn: several gevent workers sharing Redis (HTTP
and Socket.IO), and a worker SIGKILLed mid-stream on SQLite and on Redis
(a private redis-server with the AOF settings the README prescribes, itself
killed and restarted) — every turn acknowledged before the kill survives."""
from __future__ import annotations

import os
import signal
import sqlite3
import threading

import pytest
import requests
import socketio

from .store_support import LOCAL_REDIS, Gunicorn, RedisServer, delete_prefix, unique_prefix, wait_until

pytestmark = pytest.mark.e2e

HI = [{"role": "user", "content": "hi"}]


def chat(base, conversation_id, text, model="mock") -> str:
    body = {"model": model, "conversation_id": conversation_id, "messages": [{"role": "user", "content": text}]}
    with requests.post(base + "/api/chat", json=body, timeout=30) as response:
        assert response.status_code == 200
        return response.text


def load(base, conversation_id):
    response = requests.get(f"{base}/api/conversations/{conversation_id}", timeout=10)
    return response


def test_four_workers_share_conversations_and_socketio(tmp_path):
    prefix = unique_prefix()
    server = Gunicorn(tmp_path, {"REDIS_URL": LOCAL_REDIS, "SWITCHBOARD_REDIS_PREFIX": prefix,
                                 "SWITCHBOARD_DEMO_DELAY": "0.2"}, workers=4)
    try:
        base = server.url
        created = requests.post(base + "/api/conversations", json={"title": "shared"}, timeout=10).json()
        cid = created["id"]
        assert chat(base, cid, "one").endswith("data: [DONE]\n\n")

        # read back through many fresh connections: they land on different workers
        workers = set()
        for _ in range(200):
            response = load(base, cid)
            assert response.status_code == 200
            assert [m["content"] for m in response.json()["messages"]][0] == "one"
            workers.add(response.headers["X-Switchboard-Worker"])
            if len(workers) >= 3:
                break
        assert len(workers) >= 2, workers

        # Socket.IO over websocket completes chats while other workers serve HTTP
        stop = threading.Event()
        http_workers, http_errors = set(), []

        def poll_http():
            while not stop.is_set():
                try:
                    response = load(base, cid)
                    http_workers.add(response.headers["X-Switchboard-Worker"])
                    assert response.status_code == 200
                except Exception as error:  # reported below
                    http_errors.append(error)
                    return

        pollers = [threading.Thread(target=poll_http, daemon=True) for _ in range(3)]
        for poller in pollers:
            poller.start()
        client = socketio.Client(reconnection=False)
        done, chunks, errors = threading.Event(), [], []
        client.on("chunk", lambda data: chunks.append(data))
        client.on("complete", lambda data=None: done.set())
        client.on("error", lambda data: (errors.append(data), done.set()))
        client.connect(base, transports=["websocket"], wait_timeout=10)
        try:
            for number in range(3):
                done.clear()
                client.emit("chat", {"id": f"s{number}", "model": "mock", "conversation_id": cid,
                                     "messages": [{"role": "user", "content": f"socket {number}"}]})
                assert done.wait(15), "socket chat did not complete"
                assert not errors, errors
        finally:
            client.disconnect()
            stop.set()
            for poller in pollers:
                poller.join(10)
        assert not http_errors, http_errors
        assert len(http_workers) >= 2, http_workers
        assert "".join(c["content"] for c in chunks if c["id"] == "s2").endswith("your message: socket 2")
        messages = load(base, cid).json()["messages"]
        assert [m["content"] for m in messages if m["role"] == "user"] == ["one", "socket 0", "socket 1", "socket 2"]
        assert all(m["status"] == "complete" for m in messages) and len(messages) == 8
        assert "MonkeyPatchWarning" not in server.log_text()
    finally:
        server.close()
        delete_prefix(LOCAL_REDIS, prefix)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_sigkill_mid_stream_keeps_acknowledged_turns(tmp_path, backend):
    redis_server = RedisServer(tmp_path) if backend == "redis" else None
    env = {"SWITCHBOARD_DEMO_DELAY": "1"}
    if redis_server:
        env.update({"REDIS_URL": redis_server.url, "SWITCHBOARD_REDIS_PREFIX": "crash"})
    else:
        env["SWITCHBOARD_DATABASE"] = str(tmp_path / "crash.db")
    server = Gunicorn(tmp_path, env, workers=1)
    try:
        base = server.url
        cid = requests.post(base + "/api/conversations", timeout=10).json()["id"]
        for number in range(3):  # acknowledged: the stream ended with [DONE] after the save
            assert chat(base, cid, f"turn {number}").endswith("data: [DONE]\n\n")
        worker = int(load(base, cid).headers["X-Switchboard-Worker"])

        body = {"model": "reflection-and-thinking", "conversation_id": cid, "messages": [{"role": "user", "content": "doomed"}]}
        with requests.post(base + "/api/chat", json=body, stream=True, timeout=30) as response:
            lines = response.iter_lines()
            first = next(line for line in lines if line)
            assert first == b"event: thinking"  # mid-stream: the model is thinking
            os.kill(worker, signal.SIGKILL)
            if redis_server:
                redis_server.kill()  # Redis dies too: only what its AOF holds comes back
            with pytest.raises(requests.RequestException):
                for line in lines:
                    assert b"[DONE]" not in line
        if redis_server:
            redis_server.start()

        def reloaded():
            try:
                response = load(base, cid)
            except requests.RequestException:
                return None
            return response if response.status_code == 200 and response.headers["X-Switchboard-Worker"] != str(worker) else None

        messages = wait_until(reloaded, timeout=20).json()["messages"]
        assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "complete")] * 3
        assert [m["content"] for m in messages[0::2]] == ["turn 0", "turn 1", "turn 2"]
        assert all(m["content"].endswith(f"turn {n}") for n, m in enumerate(messages[1::2]))
        # the store still takes writes afterwards
        assert chat(base, cid, "after").endswith("data: [DONE]\n\n")
        assert load(base, cid).json()["message_count"] == 8
        if backend == "sqlite":
            assert sqlite3.connect(tmp_path / "crash.db").execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        server.close()
        if redis_server:
            redis_server.close()
