"""One contract, two backends: SQLite (a temp file) and Redis (the local
server, under a key prefix unique to this run, deleted afterwards).

Includes the gevent concurrency check: greenlets in patched subprocesses
append to one conversation; no turn is lost, turns stay contiguous and each
writer's turns keep their order.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from proxy.canonical import (
    ChatResult,
    Finish,
    ImagePart,
    PlanStep,
    PlanUpdate,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from proxy.errors import UpstreamError
from proxy.store import StoredMessage, StoredResponse, new_id
from proxy.store.codec import assistant_turn
from proxy.store.redis_store import RedisStore
from proxy.store.sqlite import SQLiteStore

from .store_support import LOCAL_REDIS, ROOT, delete_prefix, unique_prefix

pytestmark = pytest.mark.integration

ALICE = "key:alice"
BOB = "key:bob"


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, tmp_path):
    """(store, name, target, prefix)"""
    if request.param == "sqlite":
        path = str(tmp_path / "store.db")
        store = SQLiteStore(path)
        yield store, "sqlite", path, ""
        store.close()
    else:
        prefix = unique_prefix()
        store = RedisStore(LOCAL_REDIS, prefix)
        yield store, "redis", LOCAL_REDIS, prefix
        store.close()
        delete_prefix(LOCAL_REDIS, prefix)


@pytest.fixture
def store(backend):
    return backend[0]


def user(text):
    return StoredMessage("user", (TextPart(text),))


def assistant(text):
    return StoredMessage("assistant", (TextPart(text),))


def test_conversation_round_trip(store):
    created = store.create_conversation(ALICE, "Trip", {"tag": "x"}, [user("hello")])
    assert re.fullmatch(r"conv_[0-9a-f]{32}", created.id)
    assert created.messages[0].seq == 0 and created.message_count == 1
    turn = store.append_turn(created.id, ALICE, [user("how far?"), assistant("far")])
    assert [m.seq for m in turn] == [1, 2]
    assert len({m.id for m in turn}) == 2
    loaded = store.get_conversation(created.id, ALICE)
    assert (loaded.title, loaded.metadata, loaded.message_count) == ("Trip", {"tag": "x"}, 3)
    assert [(m.seq, m.role, m.message().text) for m in loaded.messages] == [
        (0, "user", "hello"), (1, "user", "how far?"), (2, "assistant", "far")]
    assert loaded.updated_at >= loaded.created_at
    assert [m.id for m in loaded.messages[1:]] == [m.id for m in turn]


def test_every_part_type_survives(store):
    parts = (
        TextPart("caption ✓"),
        ImagePart("data:image/png;base64,AAAA", "image/png", "high"),
        ReasoningPart("thinking", {"anthropic": {"signature": "sig=="}}),
        ToolCallPart("call_1", "get_weather", '{"city":"Paris"}', {"gemini": {"thought_signature": "t"}}),
        ToolResultPart("call_1", "sunny", "get_weather", True),
    )
    conversation = store.create_conversation(ALICE)
    store.append_turn(conversation.id, ALICE, [StoredMessage("assistant", parts, "incomplete", {"plan": {"steps": []}})])
    message = store.get_conversation(conversation.id, ALICE).messages[0]
    assert message.parts == parts
    assert (message.status, message.meta) == ("incomplete", {"plan": {"steps": []}})


def test_title_defaults_to_first_user_message(store):
    conversation = store.create_conversation(ALICE)
    assert conversation.title is None
    store.append_turn(conversation.id, ALICE, [user("  What   is\nthe weather in Paris today?  "), assistant("sunny")])
    store.append_turn(conversation.id, ALICE, [user("second"), assistant("x")])
    assert store.get_conversation(conversation.id, ALICE).title == "What is the weather in Paris today?"


def test_listing_is_scoped_ordered_and_paged(store):
    ids = [store.create_conversation(ALICE, f"a{i}").id for i in range(3)]
    other = store.create_conversation(BOB, "b").id
    store.append_turn(ids[0], ALICE, [user("bump")])  # most recently updated now
    listed = store.list_conversations(ALICE)
    assert [c.id for c in listed] == [ids[0], ids[2], ids[1]]
    assert listed[0].messages == [] and listed[0].message_count == 1
    assert [c.id for c in store.list_conversations(BOB)] == [other]
    page = store.list_conversations(ALICE, limit=2)
    rest = store.list_conversations(ALICE, limit=2, before=page[-1].updated_at)
    assert [c.id for c in page + rest] == [ids[0], ids[2], ids[1]]


def test_other_owners_and_unknown_ids_see_nothing(store):
    conversation = store.create_conversation(ALICE, "secret", messages=[user("hi")])
    assert store.get_conversation(conversation.id, BOB) is None
    assert store.append_turn(conversation.id, BOB, [user("intrude")]) is None
    assert store.delete_conversation(conversation.id, BOB) is False
    assert store.get_conversation(new_id("conv"), ALICE) is None
    assert store.append_turn(new_id("conv"), ALICE, [user("x")]) is None
    assert store.get_conversation(conversation.id, ALICE).message_count == 1


def test_delete(store):
    conversation = store.create_conversation(ALICE, messages=[user("hi")])
    assert store.delete_conversation(conversation.id, ALICE) is True
    assert store.get_conversation(conversation.id, ALICE) is None
    assert store.list_conversations(ALICE) == []
    assert store.delete_conversation(conversation.id, ALICE) is False
    assert store.append_turn(conversation.id, ALICE, [user("late")]) is None


def test_ids_are_distinct_and_unguessable(store):
    ids = {store.create_conversation(ALICE).id for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"conv_[0-9a-f]{32}", i) for i in ids)  # 128 random bits each


def test_assistant_turn_from_a_cut_stream():
    result = ChatResult(model="m", parts=[ReasoningPart("hmm"), TextPart("partial")],
                        plan=PlanUpdate("a", (PlanStep("a", "Look", "running"),)),
                        error=UpstreamError("cut", code="stream_incomplete"))
    parts, status, meta = assistant_turn(result, completed=False)
    assert status == "incomplete" and parts == (ReasoningPart("hmm"), TextPart("partial"))
    assert meta["plan"] == {"current_task_id": "a", "steps": [{"id": "a", "title": "Look", "status": "running"}]}
    assert meta["error"]["code"] == "stream_incomplete"
    done = ChatResult(parts=[TextPart("ok")], usage=Usage(3, 4), finish=Finish("stop"))
    assert assistant_turn(done, completed=True)[1:] == ("complete", {"usage": {"input_tokens": 3, "output_tokens": 4},
                                                                      "finish_reason": "stop"})


def test_responses_chain(store):
    first = store.put_response(StoredResponse(new_id("resp"), ALICE, [{"type": "message", "role": "user", "content": "papaya"}],
                                              [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}],
                                              {"id": "r1", "status": "completed"}))
    second = store.put_response(StoredResponse(new_id("resp"), ALICE, [{"type": "function_call_output", "call_id": "c", "output": "64"}],
                                               [], {"status": "completed"}, previous_id=first.id))
    third = store.put_response(StoredResponse(new_id("resp"), ALICE, [], [], {"n": 3}, previous_id=second.id))
    loaded = store.get_response(second.id, ALICE)
    assert (loaded.input_items, loaded.previous_id, loaded.response) == (second.input_items, first.id, {"status": "completed"})
    assert [r.id for r in store.response_chain(third.id, ALICE)] == [first.id, second.id, third.id]
    assert store.get_response(third.id, BOB) is None and store.response_chain(third.id, BOB) is None
    assert store.response_chain(new_id("resp"), ALICE) is None
    assert store.delete_response(first.id, BOB) is False
    assert store.delete_response(first.id, ALICE) is True
    assert [r.id for r in store.response_chain(third.id, ALICE)] == [second.id, third.id]


def test_blocks(store):
    block = store.put_block(ALICE, {"kind": "code", "language": "python"})
    assert re.fullmatch(r"blk_[0-9a-f]{32}", block.id)
    assert store.get_block(block.id, ALICE).metadata == {"kind": "code", "language": "python"}
    assert store.get_block(block.id, BOB) is None
    updated = store.put_block(ALICE, {"kind": "code", "lines": 3}, block.id)
    assert updated.metadata == {"kind": "code", "lines": 3} and updated.created_at == block.created_at
    with pytest.raises(KeyError):
        store.put_block(BOB, {"steal": True}, block.id)
    other = store.put_block(ALICE, {"n": 2})
    assert [b.id for b in store.list_blocks(ALICE)] == [other.id, block.id]
    assert store.list_blocks(BOB) == []
    assert store.delete_block(block.id, BOB) is False
    assert store.delete_block(block.id, ALICE) is True
    assert store.get_block(block.id, ALICE) is None


def test_workflow_sessions(store):
    session = store.create_session(ALICE, "wf_7366", summary={"events": 0})
    assert (session.status, session.workflow_id) == ("running", "wf_7366")
    assert store.update_session(session.id, BOB, status="done") is None
    updated = store.update_session(session.id, ALICE, status="interrupted", summary={"events": 4, "event_id": "e9"})
    assert (updated.status, updated.summary) == ("interrupted", {"events": 4, "event_id": "e9"})
    assert store.update_session(session.id, ALICE, status="done").summary == {"events": 4, "event_id": "e9"}
    assert store.get_session(session.id, ALICE).status == "done"
    assert store.get_session(session.id, BOB) is None
    assert [s.id for s in store.list_sessions(ALICE)] == [session.id]
    assert store.list_sessions(BOB) == []


@pytest.mark.e2e
def test_greenlets_in_two_processes_lose_no_turn(backend):
    """2 gevent-patched processes x 50 greenlets x 4 turns, one conversation."""
    store, name, target, prefix = backend
    conversation = store.create_conversation(ALICE)
    writers, turns = 50, 4
    start_at = time.time() + 2.0  # both processes import first, then write together
    processes = [
        subprocess.Popen([sys.executable, str(ROOT / "tests" / "gevent_appender.py"), name, target, prefix or "-",
                          ALICE, conversation.id, tag, str(writers), str(turns), str(start_at)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        for tag in ("p1", "p2")
    ]
    spans = []
    for process in processes:
        out, err = process.communicate(timeout=90)
        assert process.returncode == 0, err.decode()
        status, count, started, ended = out.decode().split()
        assert (status, count) == ("ok", str(writers * turns))
        spans.append((float(started), float(ended)))
    # the two processes were writing at the same time
    assert max(start for start, _ in spans) < min(end for _, end in spans)
    messages = store.get_conversation(conversation.id, ALICE).messages
    assert len(messages) == 2 * 2 * writers * turns
    assert [m.seq for m in messages] == list(range(len(messages)))
    per_writer = defaultdict(list)
    for question, answer in zip(messages[0::2], messages[1::2], strict=True):
        label = question.message().text
        assert (question.role, answer.role, answer.message().text) == ("user", "assistant", label + "-answer")
        writer, turn = label.rsplit("-t", 1)
        per_writer[writer].append(int(turn))
    assert len(per_writer) == 2 * writers
    assert all(turns_seen == list(range(turns)) for turns_seen in per_writer.values())


# -- AI SDK chat state ----------------------------------------------------------

def test_meta_merges_and_null_removes(store):
    assert store.get_meta(ALICE, "block", "b1") == {}
    assert store.merge_meta(ALICE, "block", "b1", {"ai:preset": "fast", "title": "T"}) == {"ai:preset": "fast", "title": "T"}
    assert store.merge_meta(ALICE, "block", "b1", {"title": None, "n": {"x": [1, 2]}}) == {"ai:preset": "fast", "n": {"x": [1, 2]}}
    assert store.get_meta(ALICE, "block", "b1") == {"ai:preset": "fast", "n": {"x": [1, 2]}}
    # per owner and per scope: the same names are other records
    assert store.get_meta(BOB, "block", "b1") == {}
    assert store.get_meta(ALICE, "settings", "b1") == {}
    assert store.merge_meta(ALICE, "block", "b1", {"ai:preset": None, "n": None}) == {}


def ui(message_id, text, role="user"):
    return {"id": message_id, "role": role, "parts": [{"type": "text", "text": text}], "metadata": {"n": 1.5}}


def test_ui_messages_replace_upsert_delete(store):
    assert store.get_ui_messages(ALICE, "chat") is None
    store.put_ui_messages(ALICE, "chat", [ui("u1", "hi"), ui("a1", "hello", "assistant")])
    assert store.get_ui_messages(ALICE, "chat") == [ui("u1", "hi"), ui("a1", "hello", "assistant")]
    assert store.get_ui_messages(BOB, "chat") is None
    # a continued reply replaces its message in place; new ones are appended in order
    store.upsert_ui_messages(ALICE, "chat", [ui("a1", "hello again", "assistant"), ui("u2", "more"), ui("a2", "ok", "assistant")])
    assert [m["id"] for m in store.get_ui_messages(ALICE, "chat")] == ["u1", "a1", "u2", "a2"]
    assert store.get_ui_messages(ALICE, "chat")[1]["parts"][0]["text"] == "hello again"
    store.put_ui_messages(ALICE, "chat", [ui("x", "replaced")])
    assert store.get_ui_messages(ALICE, "chat") == [ui("x", "replaced")]
    assert not store.delete_ui_messages(BOB, "chat")
    assert store.delete_ui_messages(ALICE, "chat")
    assert store.get_ui_messages(ALICE, "chat") is None
    store.upsert_ui_messages(ALICE, "chat", [ui("z", "first")])
    assert [m["id"] for m in store.get_ui_messages(ALICE, "chat")] == ["z"]


def test_save_ui_exchange_replaces_a_whole_history_and_upserts_a_trimmed_one(store):
    assert store.first_ui_message_id(ALICE, "chat") is None
    # an empty chat takes the exchange as it is
    store.save_ui_exchange(ALICE, "chat", [ui("u1", "hi"), ui("a1", "hello", "assistant")])
    assert store.get_ui_messages(ALICE, "chat") == [ui("u1", "hi"), ui("a1", "hello", "assistant")]
    assert store.first_ui_message_id(ALICE, "chat") == "u1"
    # the whole history again (it starts with the stored first message): the chat becomes exactly it
    store.save_ui_exchange(ALICE, "chat", [ui("u1", "hi"), ui("a2", "regenerated", "assistant")])
    assert [m["id"] for m in store.get_ui_messages(ALICE, "chat")] == ["u1", "a2"]
    # a history the app trimmed to its last turn: added, nothing before it is lost
    store.save_ui_exchange(ALICE, "chat", [ui("u3", "more"), ui("a3", "ok", "assistant")])
    assert [m["id"] for m in store.get_ui_messages(ALICE, "chat")] == ["u1", "a2", "u3", "a3"]
    # a single message (a reply to a history the body left out) is upserted, also over its own id
    store.save_ui_exchange(ALICE, "chat", [ui("a3", "ok, more", "assistant")])
    assert [m["id"] for m in store.get_ui_messages(ALICE, "chat")] == ["u1", "a2", "u3", "a3"]
    assert store.get_ui_messages(ALICE, "chat")[-1]["parts"][0]["text"] == "ok, more"
    assert store.get_ui_messages(BOB, "chat") is None and store.first_ui_message_id(BOB, "chat") is None
