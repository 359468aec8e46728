"""Coze conversation and workflow modes through the official `openai` Python
SDK (streaming and not), the management endpoints before and after, and
their scoping to the caller's API key."""
from __future__ import annotations

import threading
import time

import pytest
import requests
from openai import OpenAI

from tests.fakes import coze as fake_coze
from tests.fakes.coze import CozeUpstream, make_app
from tests.fakes.live import serve

pytestmark = pytest.mark.integration

KEYS = ["sk-team-a-0123456789", "sk-team-b-0123456789"]


@pytest.fixture
def fake():
    with CozeUpstream() as server:
        yield server


@pytest.fixture
def base_url(fake, tmp_path):
    app = make_app(fake, database_path=str(tmp_path / "switchboard.db"), api_keys=KEYS)
    with serve(app) as url:
        yield url


def client(base_url: str, key: str = KEYS[0]) -> OpenAI:
    return OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=20)


def ask(openai_client, messages, headers, stream):
    """(text, response headers) of one completion through the SDK."""
    if stream:
        with openai_client.chat.completions.with_streaming_response.create(
                model="gpt-4o-mini", messages=messages, stream=True, extra_headers=headers) as response:
            text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
            return text, response.headers
    response = openai_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages,
                                                                      extra_headers=headers)
    return response.parse().choices[0].message.content, response.headers


def get(base_url, path, key=KEYS[0]):
    return requests.get(f"{base_url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=10)


@pytest.mark.parametrize("stream", [True, False])
def test_conversation_created_then_continued_by_id_sends_only_the_new_turn(fake, base_url, stream):
    sdk = client(base_url)
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "First question"}]
    text, headers = ask(sdk, history, {"x-model-type": "conversation"}, stream)
    conversation_id = headers["x-conversation-id"]
    assert text == fake_coze.answer_text("First question", 2)  # prior turn created with the conversation
    created = fake.requests_to("/v1/conversation/create")[-1].json
    assert [(m["role"], m["content"]) for m in created["messages"]] == [("user", "Be brief.\n\nHi"),
                                                                     ("assistant", "Hello!")]
    first = fake.requests_to("/v3/chat")[-1]
    coze_id = first.query.split("conversation_id=")[1]
    assert [m["content"] for m in first.json["additional_messages"]] == ["First question"]

    # the client sends its whole history again: only the new turn goes upstream
    history += [{"role": "assistant", "content": text}, {"role": "user", "content": "Second question"}]
    text, headers = ask(sdk, history, {"x-model-type": "conversation", "x-conversation-id": conversation_id}, stream)
    assert headers["x-conversation-id"] == conversation_id
    assert text == fake_coze.answer_text("Second question", 3)  # Coze kept the history
    second = fake.requests_to("/v3/chat")[-1]
    assert second.query == f"conversation_id={coze_id}"
    assert second.json["additional_messages"] == [
        {"role": "user", "type": "question", "content": "Second question", "content_type": "text"}]
    assert len(fake.requests_to("/v1/conversation/create")) == 1

    listed = get(base_url, "/v1/conversations").json()
    assert listed["object"] == "list" and [c["id"] for c in listed["data"]] == [conversation_id]
    assert listed["data"][0]["provider"] == "coze"
    shown = get(base_url, f"/v1/conversations/{conversation_id}/history").json()
    assert [(m["role"], m["content"]) for m in shown["data"]] == [
        ("user", "Be brief.\n\nHi"), ("assistant", "Hello!"), ("user", "First question"),
        ("assistant", fake_coze.answer_text("First question", 2)), ("user", "Second question"),
        ("assistant", fake_coze.answer_text("Second question", 3))]

    # another key sees nothing of it
    assert get(base_url, "/v1/conversations", KEYS[1]).json()["data"] == []
    assert get(base_url, f"/v1/conversations/{conversation_id}/history", KEYS[1]).status_code == 404
    other = requests.delete(f"{base_url}/v1/conversations/{conversation_id}",
                            headers={"Authorization": f"Bearer {KEYS[1]}"}, timeout=10)
    assert other.status_code == 404 and coze_id in fake.conversations

    deleted = requests.delete(f"{base_url}/v1/conversations/{conversation_id}",
                              headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=10)
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert coze_id not in fake.conversations  # deleted upstream
    assert get(base_url, f"/v1/conversations/{conversation_id}/history").status_code == 404
    assert get(base_url, "/v1/conversations").json()["data"] == []


def test_unknown_conversation_id_is_a_404_in_openai_shape(base_url):
    response = requests.post(f"{base_url}/v1/chat/completions", timeout=10, json={
        "model": "m", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {KEYS[0]}", "x-model-type": "conversation", "x-conversation-id": "conv_nope"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "conversation_not_found"


def test_chats_on_one_conversation_are_serialised(fake, base_url):
    sdk = client(base_url)
    headers = {"x-model-type": "conversation", "x-bot-id": fake_coze.SLOW_BOT}
    _, first = ask(sdk, [{"role": "user", "content": "start"}], headers, False)
    headers["x-conversation-id"] = first["x-conversation-id"]
    results: list = []

    def turn(n):
        results.append(ask(sdk, [{"role": "user", "content": f"q{n}"}], headers, True)[0])

    threads = [threading.Thread(target=turn, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # no 4016 reached the client: both answered, one after the other
    assert len(results) == 2
    assert {r.split(" (turn ")[1] for r in results} == {"2)", "3)"}
    assert all(r.startswith("You asked: q") for r in results)


def test_fake_answers_4016_to_a_second_running_chat(fake):
    """The fake's own rule, which the serialisation above avoids."""
    headers = {"Authorization": f"Bearer {fake.key}"}
    created = requests.post(f"{fake.url}/v1/conversation/create", json={"bot_id": fake_coze.SLOW_BOT},
                            headers=headers, timeout=5).json()["data"]["id"]
    body = {"bot_id": fake_coze.SLOW_BOT, "user_id": "u", "stream": True,
            "additional_messages": [{"role": "user", "content": "hi", "content_type": "text"}]}
    with requests.post(f"{fake.url}/v3/chat?conversation_id={created}", json=body, headers=headers, stream=True,
                       timeout=5) as running:
        assert running.headers["Content-Type"].startswith("text/event-stream")
        second = requests.post(f"{fake.url}/v3/chat?conversation_id={created}", json=body, headers=headers, timeout=5)
        assert second.status_code == 200 and second.json()["code"] == 4016


def test_a_client_leaving_cancels_the_coze_chat(fake, base_url):
    with requests.post(f"{base_url}/v1/chat/completions", stream=True, timeout=10, json={
            "model": "m", "stream": True, "messages": [{"role": "user", "content": "a long answer please"}]},
            headers={"Authorization": f"Bearer {KEYS[0]}", "x-model-type": "conversation",
                     "x-bot-id": fake_coze.SLOW_BOT}) as response:
        for line in response.iter_lines():
            if b'"content"' in line:
                break
    deadline = time.monotonic() + 5
    while not fake.cancelled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fake.cancelled) == 1
    chat = fake.chats[fake.cancelled[0]["chat_id"]]
    assert chat["status"] == "canceled" and chat["bot_id"] == fake_coze.SLOW_BOT


@pytest.mark.parametrize("stream", [True, False])
def test_workflow_run_streams_output_node_text_once(fake, base_url, stream):
    text, headers = ask(client(base_url), [{"role": "user", "content": "Paris"}],
                        {"x-model-type": "workflow", "x-workflow-id": fake_coze.OUTPUT_WORKFLOW}, stream)
    assert text == fake_coze.workflow_text("Paris")  # not twice, no {"output": ...}
    run = fake.requests_to("/v1/workflow/stream_run")[-1].json
    assert run["workflow_id"] == fake_coze.OUTPUT_WORKFLOW and run["parameters"] == {"input": "Paris"}
    session = get(base_url, f"/v1/workflows/sessions/{headers['x-workflow-session-id']}").json()
    assert session["status"] == "completed" and session["workflow_id"] == fake_coze.OUTPUT_WORKFLOW
    assert session["output"] == text


def test_workflow_end_node_json_is_unwrapped_with_the_default_workflow(fake, tmp_path):
    app = make_app(fake, workflow_id=fake_coze.END_WORKFLOW, database_path=str(tmp_path / "s.db"))
    with serve(app) as url:
        text, _ = ask(client(url, "x"), [{"role": "user", "content": "Rome"}], {"x-model-type": "workflow"}, False)
    assert text == fake_coze.workflow_text("Rome")


@pytest.mark.parametrize("stream", [True, False])
def test_workflow_interrupt_then_resume(fake, base_url, stream):
    sdk = client(base_url)
    headers = {"x-model-type": "workflow", "x-workflow-id": fake_coze.INTERRUPT_WORKFLOW}
    assert get(base_url, "/v1/workflows/sessions").json()["data"] == []
    question, first = ask(sdk, [{"role": "user", "content": "weather"}], headers, stream)
    assert question == fake_coze.INTERRUPT_QUESTION
    session_id = first["x-workflow-session-id"]
    session = get(base_url, f"/v1/workflows/sessions/{session_id}").json()
    assert session["status"] == "interrupted" and session["question"] == fake_coze.INTERRUPT_QUESTION
    assert [s["id"] for s in get(base_url, "/v1/workflows/sessions").json()["data"]] == [session_id]
    assert get(base_url, f"/v1/workflows/sessions/{session_id}", KEYS[1]).status_code == 404
    assert get(base_url, "/v1/workflows/sessions", KEYS[1]).json()["data"] == []

    answer, second = ask(sdk, [{"role": "user", "content": "weather"}, {"role": "assistant", "content": question},
                               {"role": "user", "content": "Beijing, tomorrow"}],
                         {**headers, "x-workflow-session-id": session_id}, stream)
    assert answer == fake_coze.workflow_text("weather / Beijing, tomorrow")
    assert second["x-workflow-session-id"] == session_id
    resume = fake.requests_to("/v1/workflow/stream_resume")[-1].json
    assert resume["resume_data"] == "Beijing, tomorrow" and resume["interrupt_type"] == 2
    session = get(base_url, f"/v1/workflows/sessions/{session_id}").json()
    assert session["status"] == "completed" and session["resumes"] == 1 and "question" not in session
    # a completed session cannot be resumed
    response = requests.post(f"{base_url}/v1/chat/completions", timeout=10, json={
        "model": "m", "messages": [{"role": "user", "content": "again"}]},
        headers={"Authorization": f"Bearer {KEYS[0]}", **headers, "x-workflow-session-id": session_id})
    assert response.status_code == 400 and response.json()["error"]["param"] == "x-workflow-session-id"


def test_workflow_error_event_fails_the_session(fake, base_url):
    with client(base_url).chat.completions.with_streaming_response.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True,
            extra_headers={"x-model-type": "workflow", "x-workflow-id": fake_coze.ERROR_WORKFLOW}) as response:
        session_id = response.headers["x-workflow-session-id"]
        with pytest.raises(Exception) as caught:
            list(response.parse())
    assert "node execution failed" in str(caught.value)
    session = get(base_url, f"/v1/workflows/sessions/{session_id}").json()
    assert session["status"] == "failed" and "node execution failed" in session["error"]


def test_a_conversation_whose_first_chat_fails_is_not_kept(fake, base_url):
    response = requests.post(f"{base_url}/v1/chat/completions", timeout=10, json={
        "model": "m", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {KEYS[0]}", "x-model-type": "conversation", "x-bot-id": "1234"})
    assert response.status_code == 400 and "x-conversation-id" not in response.headers
    assert len(fake.requests_to("/v1/conversation/create")) == 1
    assert get(base_url, "/v1/conversations").json()["data"] == []
    assert fake.conversations == {}


def test_a_switchboard_conversation_cannot_continue_on_coze(fake, base_url):
    sdk = client(base_url)
    _, headers = ask(sdk, [{"role": "user", "content": "hi"}], {"x-model-type": "conversation"}, False)
    conversation_id = headers["x-conversation-id"]
    # the demo model keeps its conversation in the store ...
    demo = requests.post(f"{base_url}/v1/chat/completions", timeout=10, json={
        "model": "mock", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {KEYS[0]}", "x-model-type": "conversation"})
    stored_id = demo.headers["x-conversation-id"]
    # ... and neither id works on the other side
    to_coze = requests.post(f"{base_url}/v1/chat/completions", timeout=10, json={
        "model": "m", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {KEYS[0]}", "x-model-type": "conversation", "x-conversation-id": stored_id})
    to_demo = requests.post(f"{base_url}/v1/chat/completions", timeout=10, json={
        "model": "mock", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {KEYS[0]}", "x-model-type": "conversation",
                 "x-conversation-id": conversation_id})
    assert to_coze.status_code == 400 and to_demo.status_code == 400
    assert {c["provider"] for c in get(base_url, "/v1/conversations").json()["data"]} == {"coze", "demo"}


def test_a_workflow_stream_cancelled_before_reading_fails_its_session(fake, tmp_path):
    from proxy.canonical import ChatRequest, Message, TextPart

    app = make_app(fake, database_path=str(tmp_path / "s.db"))
    board = app.extensions["switchboard"]
    request = ChatRequest("m", [Message("user", (TextPart("Oslo"),))],
                          hints={"model_type": "workflow", "workflow_id": fake_coze.OUTPUT_WORKFLOW})
    stream = board.router.open(request)
    session_id = stream.current.response_headers["x-workflow-session-id"]
    stream.cancel()
    session = board.store.get_session(session_id, "")
    assert session.status == "failed" and "cancelled" in session.summary["error"]


def test_a_declared_model_with_its_own_token_keeps_it_for_history_and_delete(fake, tmp_path):
    with CozeUpstream(key="pat_other_team_0123456789") as other:
        models = [{"id": "team-bot", "provider": "coze", "model": fake_coze.PLAIN_BOT, "api_key": other.key,
                   "base_url": other.url}]
        app = make_app(fake, database_path=str(tmp_path / "s.db"), models=models)
        with serve(app) as url:
            response = requests.post(f"{url}/v1/chat/completions", timeout=10, headers={"x-model-type": "conversation"},
                                     json={"model": "team-bot", "messages": [{"role": "user", "content": "hello"}]})
            conversation_id = response.headers["x-conversation-id"]
            history = requests.get(f"{url}/v1/conversations/{conversation_id}/history", timeout=10).json()["data"]
            assert [m["content"] for m in history] == ["hello", fake_coze.answer_text("hello", 1)]
            assert requests.delete(f"{url}/v1/conversations/{conversation_id}", timeout=10).status_code == 200
        assert other.conversations == {} and len(other.requests_to("/v1/conversation/message/list")) == 1
        assert fake.received == []  # the provider's own token and Coze were never used


def test_a_store_that_fails_is_a_503_not_a_500(fake, tmp_path):
    from proxy.store.base import StoreError

    class BrokenStore:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise StoreError("disk I/O error")
            return fail

    app = make_app(fake, database_path=str(tmp_path / "s.db"))
    app.extensions["switchboard"].router.providers["coze"].store = BrokenStore()
    client_ = app.test_client()
    for headers in ({"x-model-type": "workflow"}, {"x-model-type": "conversation", "x-conversation-id": "conv_1"}):
        response = client_.post("/v1/chat/completions", headers=headers,
                                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 503, response.get_data()
        assert response.get_json()["error"]["code"] == "store_unavailable"


def test_a_conversation_continues_with_the_bot_it_started_with(fake, tmp_path):
    app = make_app(fake, bot_id=None, database_path=str(tmp_path / "s.db"))
    with serve(app) as url:
        sdk = client(url, "x")
        _, headers = ask(sdk, [{"role": "user", "content": "one"}],
                         {"x-model-type": "conversation", "x-bot-id": fake_coze.REASONING_BOT}, False)
        text, _ = ask(sdk, [{"role": "user", "content": "two"}],
                      {"x-model-type": "conversation", "x-conversation-id": headers["x-conversation-id"]}, False)
        missing = requests.post(f"{url}/v1/chat/completions", timeout=10, headers={"x-model-type": "conversation"},
                                json={"model": "m", "messages": [{"role": "user", "content": "three"}]})
    assert text == fake_coze.answer_text("two", 2)
    # Every chat of the conversation went to the bot it started with. (A
    # second chat may be refused with 4016 while Coze still counts the first
    # as running, and is retried: more than two requests, all to that bot.)
    bots = [r.json["bot_id"] for r in fake.requests_to("/v3/chat")]
    assert len(bots) >= 2 and set(bots) == {fake_coze.REASONING_BOT}
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "missing_bot_id"


def test_the_endpoints_answer_as_their_openapi_document_says(fake, tmp_path):
    from openapi_schema_validator import OAS31Validator

    app = make_app(fake, database_path=str(tmp_path / "s.db"))
    client_ = app.test_client()
    document = client_.get("/openapi.json").get_json()

    def check(path, method, response, status=200):
        assert response.status_code == status, response.get_data(as_text=True)
        answer = document["paths"][path][method]["responses"][str(status)]
        if "$ref" in answer:
            answer = document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
        schema = {**answer["content"]["application/json"]["schema"], "components": document["components"]}
        OAS31Validator(schema).validate(response.get_json())
        return response.get_json()

    body = {"model": "m", "messages": [{"role": "user", "content": "weather"}]}
    coze = client_.post("/v1/chat/completions", json=body, headers={"x-model-type": "conversation"})
    stored = client_.post("/v1/chat/completions", json={**body, "model": "mock"}, headers={"x-model-type": "conversation"})
    interrupted = client_.post("/v1/chat/completions", json=body, headers={
        "x-model-type": "workflow", "x-workflow-id": fake_coze.INTERRUPT_WORKFLOW})
    completed = client_.post("/v1/chat/completions", json=body, headers={"x-model-type": "workflow"})
    failed = client_.post("/v1/chat/completions", json={**body, "stream": True}, headers={
        "x-model-type": "workflow", "x-workflow-id": fake_coze.ERROR_WORKFLOW})
    failed.get_data()
    listed = check("/v1/conversations", "get", client_.get("/v1/conversations"))
    assert {c["provider"] for c in listed["data"]} == {"coze", "demo"}
    for response in (coze, stored):
        conversation_id = response.headers["x-conversation-id"]
        check("/v1/conversations/{conversation_id}/history", "get",
              client_.get(f"/v1/conversations/{conversation_id}/history"))
        check("/v1/conversations/{conversation_id}", "delete", client_.delete(f"/v1/conversations/{conversation_id}"))
        check("/v1/conversations/{conversation_id}/history", "get",
              client_.get(f"/v1/conversations/{conversation_id}/history"), 404)
    sessions = check("/v1/workflows/sessions", "get", client_.get("/v1/workflows/sessions"))
    assert sorted(s["status"] for s in sessions["data"]) == ["completed", "failed", "interrupted"]
    for response in (interrupted, completed, failed):
        check("/v1/workflows/sessions/{session_id}", "get",
              client_.get(f"/v1/workflows/sessions/{response.headers['x-workflow-session-id']}"))
    check("/v1/workflows/sessions/{session_id}", "get", client_.get("/v1/workflows/sessions/nope"), 404)
