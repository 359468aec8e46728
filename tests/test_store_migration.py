"""A database made by an older Switchboard opens and is upgraded in place."""
from __future__ import annotations

import sqlite3

import pytest

from proxy.canonical import TextPart
from proxy.store import StoredMessage
from proxy.store.base import StoreError
from proxy.store.sqlite import SCHEMA_VERSION, SQLiteStore

pytestmark = pytest.mark.unit

# Schema version 1 exactly as it shipped (frozen here on purpose: the test
# must not follow later edits of the migration list).
VERSION_1 = [
    """CREATE TABLE conversations (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT,
        metadata TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
    "CREATE INDEX conversations_by_owner ON conversations (owner, updated_at)",
    """CREATE TABLE messages (
        conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, role TEXT NOT NULL,
        parts TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (conversation_id, seq)) WITHOUT ROWID""",
    """CREATE TABLE responses (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, previous_id TEXT, input TEXT NOT NULL,
        output TEXT NOT NULL, response TEXT NOT NULL, created_at REAL NOT NULL)""",
]


def make_version_1(path) -> None:
    connection = sqlite3.connect(path)
    for statement in VERSION_1:
        connection.execute(statement)
    connection.execute("INSERT INTO conversations VALUES ('conv_old', '', 'Old chat', '{}', 1.0, 2.0)")
    connection.execute("""INSERT INTO messages VALUES ('conv_old', 0, 'msg_a', 'user', '[{"type":"text","text":"hi"}]', 1.0)""")
    connection.execute("""INSERT INTO messages VALUES ('conv_old', 1, 'msg_b', 'assistant', '[{"type":"text","text":"hello"}]', 2.0)""")
    connection.execute("""INSERT INTO responses VALUES ('resp_old', '', NULL, '[]', '[{"type":"message"}]', '{"id":"resp_old"}', 1.0)""")
    connection.execute("PRAGMA user_version = 1")
    connection.commit()
    connection.close()


def test_version_1_database_is_upgraded(tmp_path):
    path = str(tmp_path / "old.db")
    make_version_1(path)
    store = SQLiteStore(path)
    assert store.schema_version() == SCHEMA_VERSION == 3
    old = store.get_conversation("conv_old", "")
    assert [(m.role, m.message().text, m.status, m.meta) for m in old.messages] == [
        ("user", "hi", "complete", {}), ("assistant", "hello", "complete", {})]
    assert store.get_response("resp_old", "").output_items == [{"type": "message"}]
    # what version 2 added works on the upgraded file
    turn = store.append_turn("conv_old", "", [StoredMessage("assistant", (TextPart("cut"),), "incomplete", {"error": {"code": "x"}})])
    assert turn[0].seq == 2
    assert store.get_conversation("conv_old", "").messages[2].status == "incomplete"
    assert store.get_block(store.put_block("", {"a": 1}).id, "").metadata == {"a": 1}
    assert store.create_session("", "wf").status == "running"
    # and what version 3 added
    assert store.merge_meta("", "block", "b", {"ai:preset": "p"}) == {"ai:preset": "p"}
    store.put_ui_messages("", "b", [{"id": "u", "role": "user", "parts": []}])
    assert store.get_ui_messages("", "b") == [{"id": "u", "role": "user", "parts": []}]
    store.close()
    # opening again migrates nothing and keeps everything
    again = SQLiteStore(path)
    assert again.schema_version() == 3 and again.get_conversation("conv_old", "").message_count == 3
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_newer_database_is_refused(tmp_path):
    path = str(tmp_path / "new.db")
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(StoreError, match="newer than this Switchboard"):
        SQLiteStore(path)


def test_where_the_database_lives():
    from proxy.config import Settings
    from proxy.store import database_path

    assert database_path(Settings(), "/srv/instance") == "/srv/instance/switchboard.db"
    assert database_path(Settings.load(environ={"SWITCHBOARD_DATABASE": "/data/sb.db"}), "/srv/instance") == "/data/sb.db"
