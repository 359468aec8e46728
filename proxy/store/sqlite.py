"""The embedded default backend: one SQLite file in WAL mode.

    Store calls -> (per-process lock) -> sqlite3 connection -> file (+ -wal)

Concurrency, from the inside out:
- One writer connection and one reader connection per process, each behind
  a lock. Under gunicorn's gevent worker `threading.Lock` is patched, so a
  greenlet waiting for the lock yields; `acquire(timeout=...)` bounds the
  wait, so no greenlet waits forever (StoreBusy instead).
- Across the worker processes of one machine, every write is one short
  `BEGIN IMMEDIATE` transaction: SQLite's file lock serialises writers; WAL
  lets readers go on meanwhile. SQLite's own busy handler sleeps inside C
  and would block the whole gevent hub, so it is kept short (BUSY_TIMEOUT);
  longer waits for another process's lock happen in a Python retry loop
  whose `time.sleep` yields to other greenlets.
- Writers of one process that come together share one transaction and one
  fsync (group commit, sqlite_commit.py); each returns once its write is on disk.
- The trade-off: each sqlite3 call still blocks the hub while it runs (and a
  commit with synchronous=FULL waits for fsync). Transactions here are a
  handful of indexed statements, so that is well under a millisecond to a
  few milliseconds; deployments with many workers or machines use Redis.

The schema is versioned with `PRAGMA user_version` and migrated on open,
inside one write transaction, so workers starting together migrate once.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from typing import Any, Callable, Sequence

from ..timers import gevent_hub
from . import codec
from .base import (
    Block,
    Conversation,
    Store,
    StoreBusy,
    StoredMessage,
    StoredResponse,
    StoreError,
    WorkflowSession,
    clamp_limit,
    new_id,
    now,
    replaces_chat,
    title_from,
)
from .sqlite_commit import GROUP_WINDOW_GEVENT, GroupCommit, locked

log = logging.getLogger(__name__)

BUSY_TIMEOUT = 0.05  # seconds SQLite may block the hub waiting for a lock
WRITE_DEADLINE = 10.0  # seconds a write may wait for locks before StoreBusy

# Each entry upgrades the schema by one version; never edit a shipped entry.
MIGRATIONS: list[list[str]] = [
    # 1: conversations with ordered messages, stored responses
    [
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
    ],
    # 2: incomplete turns and their plan/usage (status, meta), blocks, workflow sessions
    [
        "ALTER TABLE messages ADD COLUMN status TEXT NOT NULL DEFAULT 'complete'",
        "ALTER TABLE messages ADD COLUMN meta TEXT NOT NULL DEFAULT '{}'",
        """CREATE TABLE blocks (
            id TEXT PRIMARY KEY, owner TEXT NOT NULL, metadata TEXT NOT NULL,
            created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
        "CREATE INDEX blocks_by_owner ON blocks (owner, updated_at)",
        """CREATE TABLE workflow_sessions (
            id TEXT PRIMARY KEY, owner TEXT NOT NULL, workflow_id TEXT NOT NULL, status TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
        "CREATE INDEX workflow_sessions_by_owner ON workflow_sessions (owner, updated_at)",
    ],
    # 3: the AI SDK surface's metadata maps and UIMessage lists, keyed by client-chosen names
    [
        """CREATE TABLE ui_meta (
            owner TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, metadata TEXT NOT NULL,
            updated_at REAL NOT NULL, PRIMARY KEY (owner, scope, key)) WITHOUT ROWID""",
        """CREATE TABLE ui_messages (
            owner TEXT NOT NULL, chat TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
            message TEXT NOT NULL, PRIMARY KEY (owner, chat, seq)) WITHOUT ROWID""",
        "CREATE UNIQUE INDEX ui_messages_by_id ON ui_messages (owner, chat, id)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


class SQLiteStore(Store):
    def __init__(self, path: str, write_deadline: float = WRITE_DEADLINE) -> None:
        self.path = path
        self.write_deadline = write_deadline
        self._pid = -1
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self._reopen()
        self._migrate()

    @property
    def description(self) -> str:
        return f"sqlite:{self.path}"

    # -- connections and transactions ---------------------------------------

    def _reopen(self) -> None:
        # Connections and locks are per process: after a fork, start afresh.
        self._pid = os.getpid()
        self._read_lock = threading.Lock()
        self._writer = self._connect()
        self._reader = self._connect()
        window = GROUP_WINDOW_GEVENT if gevent_hub() is not None else 0.0
        self._committer = GroupCommit(self._writer, self.path, self.write_deadline, window)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        deadline = time.monotonic() + self.write_deadline
        while True:
            try:
                mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as error:
                if not locked(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        if mode.lower() != "wal":
            log.warning("SQLite store %s: journal_mode is %s, not wal", self.path, mode)
        # FULL: a commit reaches the disk before the write is acknowledged.
        connection.execute("PRAGMA synchronous=FULL")
        return connection

    def close(self) -> None:
        for connection in (getattr(self, "_writer", None), getattr(self, "_reader", None)):
            if connection is not None:
                connection.close()
        self._pid = -1

    def _check_process(self) -> None:
        if self._pid != os.getpid():
            self._reopen()

    def _acquire(self, lock) -> None:
        if not lock.acquire(timeout=self.write_deadline):
            raise StoreBusy(f"the SQLite store {self.path} stayed busy for {self.write_deadline:g} s")

    def _write(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `work` in a write transaction; returns once it is on disk
        (sqlite_commit.py: writers that come together share one commit)."""
        self._check_process()
        return self._committer.run(work)

    def _read(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `work` in one read transaction (a consistent snapshot in WAL)."""
        self._check_process()
        self._acquire(self._read_lock)
        try:
            connection = self._reader
            connection.execute("BEGIN")
            try:
                return work(connection)
            finally:
                connection.execute("COMMIT")
        finally:
            self._read_lock.release()

    def _migrate(self) -> None:
        def upgrade(connection: sqlite3.Connection) -> None:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema version {version}, newer than this Switchboard ({SCHEMA_VERSION})")
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number]:
                    connection.execute(statement)
                log.info("SQLite store %s: migrated to schema version %d", self.path, number + 1)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        self._write(upgrade)

    def schema_version(self) -> int:
        return self._read(lambda c: c.execute("PRAGMA user_version").fetchone()[0])

    # -- conversations ------------------------------------------------------

    def create_conversation(self, owner: str, title: str | None = None, metadata: dict | None = None,
                            messages: Sequence[StoredMessage] = ()) -> Conversation:
        created = now()
        title = title or title_from(messages)
        conversation = Conversation(new_id("conv"), owner, title, created, created, dict(metadata or {}))

        def work(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO conversations (id, owner, title, metadata, created_at, updated_at) VALUES (?,?,?,?,?,?)",
                (conversation.id, owner, title, codec.dumps(conversation.metadata), created, created))
            conversation.messages = _insert_messages(connection, conversation.id, 0, messages, created)

        self._write(work)
        conversation.message_count = len(conversation.messages)
        return conversation

    def get_conversation(self, conversation_id: str, owner: str, with_messages: bool = True) -> Conversation | None:
        def work(connection: sqlite3.Connection) -> Conversation | None:
            row = connection.execute(
                f"SELECT {_CONVERSATION_COLUMNS} FROM conversations c WHERE id = ? AND owner = ?",
                (conversation_id, owner)).fetchone()
            if row is None:
                return None
            conversation = _conversation(row)
            if with_messages:
                rows = connection.execute(
                    "SELECT seq, id, role, parts, status, meta, created_at FROM messages "
                    "WHERE conversation_id = ? ORDER BY seq", (conversation_id,))
                conversation.messages = [
                    StoredMessage(role, codec.parts_from_json(parts), status, codec.loads(meta, {}), mid, seq, created)
                    for seq, mid, role, parts, status, meta, created in rows]
            return conversation

        return self._read(work)

    def list_conversations(self, owner: str, limit: int = 50, before: float | None = None) -> list[Conversation]:
        limit = clamp_limit(limit)

        def work(connection: sqlite3.Connection) -> list[Conversation]:
            if before is None:
                rows = connection.execute(
                    f"SELECT {_CONVERSATION_COLUMNS} FROM conversations c WHERE owner = ? "
                    "ORDER BY updated_at DESC LIMIT ?", (owner, limit))
            else:
                rows = connection.execute(
                    f"SELECT {_CONVERSATION_COLUMNS} FROM conversations c WHERE owner = ? AND updated_at < ? "
                    "ORDER BY updated_at DESC LIMIT ?", (owner, before, limit))
            return [_conversation(row) for row in rows]

        return self._read(work)

    def append_turn(self, conversation_id: str, owner: str, messages: Sequence[StoredMessage]) -> list[StoredMessage] | None:
        title = title_from(messages)

        def work(connection: sqlite3.Connection) -> list[StoredMessage] | None:
            if connection.execute("SELECT 1 FROM conversations WHERE id = ? AND owner = ?",
                                  (conversation_id, owner)).fetchone() is None:
                return None
            start = connection.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE conversation_id = ?",
                                       (conversation_id,)).fetchone()[0]
            stamp = now()
            stored = _insert_messages(connection, conversation_id, start, messages, stamp)
            connection.execute("UPDATE conversations SET updated_at = ?, title = COALESCE(title, ?) WHERE id = ?",
                               (stamp, title, conversation_id))
            return stored

        return self._write(work)

    def delete_conversation(self, conversation_id: str, owner: str) -> bool:
        def work(connection: sqlite3.Connection) -> bool:
            deleted = connection.execute("DELETE FROM conversations WHERE id = ? AND owner = ?",
                                         (conversation_id, owner)).rowcount
            if deleted:
                connection.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            return bool(deleted)

        return self._write(work)

    # -- stored responses ---------------------------------------------------

    def put_response(self, response: StoredResponse) -> StoredResponse:
        response.created_at = response.created_at or now()
        self._write(lambda c: c.execute(
            "INSERT OR REPLACE INTO responses (id, owner, previous_id, input, output, response, created_at) "
            "VALUES (?,?,?,?,?,?,?)",
            (response.id, response.owner, response.previous_id, codec.dumps(response.input_items),
             codec.dumps(response.output_items), codec.dumps(response.response), response.created_at)))
        return response

    def get_response(self, response_id: str, owner: str) -> StoredResponse | None:
        row = self._read(lambda c: c.execute(
            "SELECT id, owner, input, output, response, previous_id, created_at FROM responses "
            "WHERE id = ? AND owner = ?", (response_id, owner)).fetchone())
        if row is None:
            return None
        rid, rowner, items_in, items_out, body, previous, created = row
        return StoredResponse(rid, rowner, codec.loads(items_in), codec.loads(items_out), codec.loads(body), previous, created)

    def delete_response(self, response_id: str, owner: str) -> bool:
        return bool(self._write(lambda c: c.execute(
            "DELETE FROM responses WHERE id = ? AND owner = ?", (response_id, owner)).rowcount))

    # -- blocks -------------------------------------------------------------

    def put_block(self, owner: str, metadata: dict, block_id: str | None = None) -> Block:
        stamp = now()

        def work(connection: sqlite3.Connection) -> Block | None:
            if block_id is None:
                block = Block(new_id("blk"), owner, dict(metadata), stamp, stamp)
                connection.execute("INSERT INTO blocks (id, owner, metadata, created_at, updated_at) VALUES (?,?,?,?,?)",
                                   (block.id, owner, codec.dumps(block.metadata), stamp, stamp))
                return block
            row = connection.execute("SELECT created_at FROM blocks WHERE id = ? AND owner = ?", (block_id, owner)).fetchone()
            if row is None:
                raise KeyError(block_id)
            connection.execute("UPDATE blocks SET metadata = ?, updated_at = ? WHERE id = ?",
                               (codec.dumps(metadata), stamp, block_id))
            return Block(block_id, owner, dict(metadata), row[0], stamp)

        return self._write(work)

    def get_block(self, block_id: str, owner: str) -> Block | None:
        row = self._read(lambda c: c.execute(
            "SELECT id, owner, metadata, created_at, updated_at FROM blocks WHERE id = ? AND owner = ?",
            (block_id, owner)).fetchone())
        return None if row is None else Block(row[0], row[1], codec.loads(row[2]), row[3], row[4])

    def list_blocks(self, owner: str, limit: int = 50) -> list[Block]:
        rows = self._read(lambda c: c.execute(
            "SELECT id, owner, metadata, created_at, updated_at FROM blocks WHERE owner = ? "
            "ORDER BY updated_at DESC LIMIT ?", (owner, clamp_limit(limit))).fetchall())
        return [Block(r[0], r[1], codec.loads(r[2]), r[3], r[4]) for r in rows]

    def delete_block(self, block_id: str, owner: str) -> bool:
        return bool(self._write(lambda c: c.execute(
            "DELETE FROM blocks WHERE id = ? AND owner = ?", (block_id, owner)).rowcount))

    # -- AI SDK chat state ---------------------------------------------------

    def get_meta(self, owner: str, scope: str, key: str) -> dict[str, Any]:
        row = self._read(lambda c: c.execute("SELECT metadata FROM ui_meta WHERE owner = ? AND scope = ? AND key = ?",
                                             (owner, scope, key)).fetchone())
        return {} if row is None else codec.loads(row[0], {})

    def merge_meta(self, owner: str, scope: str, key: str, changes: dict[str, Any]) -> dict[str, Any]:
        def work(connection: sqlite3.Connection) -> dict:
            row = connection.execute("SELECT metadata FROM ui_meta WHERE owner = ? AND scope = ? AND key = ?",
                                     (owner, scope, key)).fetchone()
            merged = {} if row is None else codec.loads(row[0], {})
            for name, value in changes.items():
                if value is None:
                    merged.pop(name, None)
                else:
                    merged[name] = value
            connection.execute("INSERT OR REPLACE INTO ui_meta (owner, scope, key, metadata, updated_at) VALUES (?,?,?,?,?)",
                               (owner, scope, key, codec.dumps(merged), now()))
            return merged

        return self._write(work)

    def get_ui_messages(self, owner: str, chat_key: str) -> list[dict] | None:
        rows = self._read(lambda c: c.execute("SELECT message FROM ui_messages WHERE owner = ? AND chat = ? ORDER BY seq",
                                              (owner, chat_key)).fetchall())
        return [codec.loads(row[0]) for row in rows] or None

    def put_ui_messages(self, owner: str, chat_key: str, messages: Sequence[dict]) -> None:
        self._write(lambda connection: _replace_ui(connection, owner, chat_key, messages))

    def save_ui_exchange(self, owner: str, chat_key: str, messages: Sequence[dict]) -> None:
        """One write transaction: look at the first stored id, then replace or upsert."""
        def work(connection: sqlite3.Connection) -> None:
            row = connection.execute("SELECT id FROM ui_messages WHERE owner = ? AND chat = ? ORDER BY seq LIMIT 1",
                                     (owner, chat_key)).fetchone()
            if replaces_chat(row[0] if row else None, messages):
                _replace_ui(connection, owner, chat_key, messages)
            else:
                _upsert_ui(connection, owner, chat_key, messages)

        self._write(work)

    def upsert_ui_messages(self, owner: str, chat_key: str, messages: Sequence[dict]) -> None:
        self._write(lambda connection: _upsert_ui(connection, owner, chat_key, messages))

    def delete_ui_messages(self, owner: str, chat_key: str) -> bool:
        return bool(self._write(lambda c: c.execute("DELETE FROM ui_messages WHERE owner = ? AND chat = ?",
                                                    (owner, chat_key)).rowcount))

    # -- workflow sessions --------------------------------------------------

    def create_session(self, owner: str, workflow_id: str, status: str = "running", summary: dict | None = None) -> WorkflowSession:
        stamp = now()
        session = WorkflowSession(new_id("wfs"), owner, workflow_id, status, dict(summary or {}), stamp, stamp)
        self._write(lambda c: c.execute(
            "INSERT INTO workflow_sessions (id, owner, workflow_id, status, summary, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?)",
            (session.id, owner, workflow_id, status, codec.dumps(session.summary), stamp, stamp)))
        return session

    def update_session(self, session_id: str, owner: str, status: str | None = None,
                       summary: dict | None = None) -> WorkflowSession | None:
        stamp = now()

        def work(connection: sqlite3.Connection) -> bool:
            return bool(connection.execute(
                "UPDATE workflow_sessions SET status = COALESCE(?, status), summary = COALESCE(?, summary), "
                "updated_at = ? WHERE id = ? AND owner = ?",
                (status, None if summary is None else codec.dumps(summary), stamp, session_id, owner)).rowcount)

        return self.get_session(session_id, owner) if self._write(work) else None

    def get_session(self, session_id: str, owner: str) -> WorkflowSession | None:
        row = self._read(lambda c: c.execute(
            f"SELECT {_SESSION_COLUMNS} FROM workflow_sessions WHERE id = ? AND owner = ?",
            (session_id, owner)).fetchone())
        return None if row is None else _session(row)

    def list_sessions(self, owner: str, limit: int = 50) -> list[WorkflowSession]:
        rows = self._read(lambda c: c.execute(
            f"SELECT {_SESSION_COLUMNS} FROM workflow_sessions WHERE owner = ? ORDER BY updated_at DESC LIMIT ?",
            (owner, clamp_limit(limit))).fetchall())
        return [_session(row) for row in rows]


_CONVERSATION_COLUMNS = ("id, owner, title, metadata, created_at, updated_at, "
                         "(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)")
_SESSION_COLUMNS = "id, owner, workflow_id, status, summary, created_at, updated_at"


def _conversation(row) -> Conversation:
    cid, owner, title, metadata, created, updated, count = row
    return Conversation(cid, owner, title, created, updated, codec.loads(metadata, {}), count)


def _session(row) -> WorkflowSession:
    sid, owner, workflow_id, status, summary, created, updated = row
    return WorkflowSession(sid, owner, workflow_id, status, codec.loads(summary, {}), created, updated)


def _insert_messages(connection: sqlite3.Connection, conversation_id: str, start: int,
                     messages: Sequence[StoredMessage], stamp: float) -> list[StoredMessage]:
    stored = []
    for offset, message in enumerate(messages):
        record = StoredMessage(message.role, tuple(message.parts), message.status, dict(message.meta),
                               new_id("msg"), start + offset, stamp)
        connection.execute(
            "INSERT INTO messages (conversation_id, seq, id, role, parts, status, meta, created_at) VALUES (?,?,?,?,?,?,?,?)",
            (conversation_id, record.seq, record.id, record.role, codec.parts_to_json(record.parts),
             record.status, codec.dumps(record.meta), stamp))
        stored.append(record)
    return stored


def _replace_ui(connection: sqlite3.Connection, owner: str, chat_key: str, messages: Sequence[dict]) -> None:
    connection.execute("DELETE FROM ui_messages WHERE owner = ? AND chat = ?", (owner, chat_key))
    connection.executemany("INSERT INTO ui_messages (owner, chat, seq, id, message) VALUES (?,?,?,?,?)",
                           [(owner, chat_key, seq, m["id"], codec.dumps(m)) for seq, m in enumerate(messages)])


def _upsert_ui(connection: sqlite3.Connection, owner: str, chat_key: str, messages: Sequence[dict]) -> None:
    for message in messages:
        updated = connection.execute("UPDATE ui_messages SET message = ? WHERE owner = ? AND chat = ? AND id = ?",
                                     (codec.dumps(message), owner, chat_key, message["id"])).rowcount
        if not updated:
            connection.execute(
                "INSERT INTO ui_messages (owner, chat, seq, id, message) VALUES (?, ?, "
                "(SELECT COALESCE(MAX(seq) + 1, 0) FROM ui_messages WHERE owner = ? AND chat = ?), ?, ?)",
                (owner, chat_key, owner, chat_key, message["id"], codec.dumps(message)))
