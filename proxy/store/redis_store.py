"""The shared backend for many workers and many machines: Redis (REDIS_URL).

    Store calls -> redis-py (connection pool per process) -> Redis

Named redis_store.py so `import redis` inside the package finds redis-py.

Layout, every key under the configured prefix P (Settings.redis_prefix):
    P:conv:<id>            hash  owner, title, metadata, created_at, updated_at
    P:conv:<id>:msgs       list  one JSON record per message; index = seq
    P:owner:<owner>:convs  zset  conversation ids scored by updated_at
    P:resp:<id>            hash  owner, previous_id, input, output, response, created_at
    P:block:<id>           hash  owner, metadata, created_at, updated_at (+ P:owner:<owner>:blocks)
    P:wfs:<id>             hash  owner, workflow_id, status, summary, ... (+ P:owner:<owner>:sessions)
    P:owner:<owner>:meta:<scope>:<key>   hash  name -> JSON value (AI SDK block metadata, settings)
    P:owner:<owner>:ui:<chat>            hash  message id -> UIMessage JSON
    P:owner:<owner>:ui:<chat>:order      list  message ids in order

Appending a turn is one Lua script (atomic: the owner check, every message
of the turn contiguously, updated_at and the index move together). Every
write is a synchronous command: it returns only after Redis replied, so a
turn is acknowledged only once Redis accepted it; with `appendonly yes` and
`appendfsync always` the reply comes after the AOF was fsynced (README).
Under gevent the sockets are cooperative: a greenlet waiting for Redis
yields to the others.
"""
from __future__ import annotations

from typing import Any, Sequence

import redis

from . import codec
from .base import (
    Block,
    Conversation,
    Store,
    StoredMessage,
    StoredResponse,
    StoreError,
    WorkflowSession,
    clamp_limit,
    new_id,
    now,
    title_from,
)

# KEYS: conversation hash, message list, owner index. ARGV: owner, stamp,
# title if none yet ("" for none), conversation id, messages...
# Returns the seq of the first appended message, or -1 (no such conversation).
APPEND_TURN = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return -1 end
local start = redis.call('LLEN', KEYS[2])
for i = 5, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[1], 'title') == 0 then
  redis.call('HSET', KEYS[1], 'title', ARGV[3])
end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[4])
return start
"""

# KEYS: record hash, extra keys to delete with it, owner index. ARGV: owner, id.
DELETE_OWNED = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
"""

# KEYS: record hash, owner index. ARGV: owner, id, stamp, field, value, ...
UPDATE_OWNED = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
"""


# KEYS: message hash, order list. ARGV: id, json, id, json, ...
UPSERT_UI_MESSAGES = """
for i = 1, #ARGV, 2 do
  if redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then redis.call('RPUSH', KEYS[2], ARGV[i]) end
end
return 1
"""


def _text(value) -> str | None:
    return None if value is None else value.decode() if isinstance(value, bytes) else value


class RedisStore(Store):
    def __init__(self, url: str, prefix: str = "switchboard", client: redis.Redis | None = None) -> None:
        self.url = url
        self.prefix = prefix.rstrip(":")
        # health checks and timeouts: a dead Redis is an error, never a greenlet stuck forever
        self.client = client or redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5,
                                                     health_check_interval=30, retry_on_timeout=False)
        self._append = self.client.register_script(APPEND_TURN)
        self._delete = self.client.register_script(DELETE_OWNED)
        self._update = self.client.register_script(UPDATE_OWNED)
        self._upsert_ui = self.client.register_script(UPSERT_UI_MESSAGES)

    @property
    def description(self) -> str:
        kwargs = self.client.connection_pool.connection_kwargs
        where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
        return f"redis:{where}/{kwargs.get('db', 0)} prefix {self.prefix!r}"

    def close(self) -> None:
        self.client.connection_pool.disconnect()

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _index(self, owner: str, kind: str) -> str:
        return self.key("owner", owner, kind)

    def _run(self, call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except redis.RedisError as error:
            raise StoreError(f"Redis store failed: {error}") from error

    # -- conversations ------------------------------------------------------

    def create_conversation(self, owner: str, title: str | None = None, metadata: dict | None = None,
                            messages: Sequence[StoredMessage] = ()) -> Conversation:
        created = now()
        title = title or title_from(messages)
        conversation = Conversation(new_id("conv"), owner, title, created, created, dict(metadata or {}))
        records = _records(messages, 0, created)
        fields = {"owner": owner, "metadata": codec.dumps(conversation.metadata),
                  "created_at": repr(created), "updated_at": repr(created)}
        if title is not None:
            fields["title"] = title
        pipe = self.client.pipeline(transaction=True)  # MULTI/EXEC: all or nothing
        pipe.hset(self.key("conv", conversation.id), mapping=fields)
        if records:
            pipe.rpush(self.key("conv", conversation.id, "msgs"), *(raw for _, raw in records))
        pipe.zadd(self._index(owner, "convs"), {conversation.id: created})
        self._run(pipe.execute)
        conversation.messages = [message for message, _ in records]
        conversation.message_count = len(records)
        return conversation

    def get_conversation(self, conversation_id: str, owner: str, with_messages: bool = True) -> Conversation | None:
        pipe = self.client.pipeline(transaction=True)  # one consistent snapshot
        pipe.hgetall(self.key("conv", conversation_id))
        messages_key = self.key("conv", conversation_id, "msgs")
        if with_messages:
            pipe.lrange(messages_key, 0, -1)
        else:
            pipe.llen(messages_key)
        fields, items = self._run(pipe.execute)
        if not fields or _text(fields.get(b"owner")) != owner:
            return None
        conversation = _conversation(conversation_id, fields, len(items) if with_messages else items)
        if with_messages:
            conversation.messages = [_message(raw, seq) for seq, raw in enumerate(items)]
        return conversation

    def list_conversations(self, owner: str, limit: int = 50, before: float | None = None) -> list[Conversation]:
        limit = clamp_limit(limit)
        top = f"({before!r}" if before is not None else "+inf"
        ids = self._run(self.client.zrevrangebyscore, self._index(owner, "convs"), top, "-inf", start=0, num=limit)
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for cid in ids:
            pipe.hgetall(self.key("conv", _text(cid)))
            pipe.llen(self.key("conv", _text(cid), "msgs"))
        replies = self._run(pipe.execute)
        found = []
        for index, cid in enumerate(ids):
            fields, count = replies[2 * index], replies[2 * index + 1]
            if fields and _text(fields.get(b"owner")) == owner:  # skip one deleted meanwhile
                found.append(_conversation(_text(cid), fields, count))
        return found

    def append_turn(self, conversation_id: str, owner: str, messages: Sequence[StoredMessage]) -> list[StoredMessage] | None:
        stamp = now()
        records = _records(messages, 0, stamp)
        start = self._run(self._append,
                          keys=[self.key("conv", conversation_id), self.key("conv", conversation_id, "msgs"),
                                self._index(owner, "convs")],
                          args=[owner, repr(stamp), title_from(messages) or "", conversation_id,
                                *(raw for _, raw in records)])
        if start < 0:
            return None
        stored = [message for message, _ in records]
        for offset, message in enumerate(stored):
            message.seq = start + offset
        return stored

    def delete_conversation(self, conversation_id: str, owner: str) -> bool:
        return bool(self._run(self._delete,
                              keys=[self.key("conv", conversation_id), self.key("conv", conversation_id, "msgs"),
                                    self._index(owner, "convs")],
                              args=[owner, conversation_id]))

    # -- stored responses ---------------------------------------------------

    def put_response(self, response: StoredResponse) -> StoredResponse:
        response.created_at = response.created_at or now()
        fields = {"owner": response.owner, "input": codec.dumps(response.input_items),
                  "output": codec.dumps(response.output_items), "response": codec.dumps(response.response),
                  "created_at": repr(response.created_at)}
        if response.previous_id:
            fields["previous_id"] = response.previous_id
        pipe = self.client.pipeline(transaction=True)
        key = self.key("resp", response.id)
        pipe.delete(key)
        pipe.hset(key, mapping=fields)
        self._run(pipe.execute)
        return response

    def get_response(self, response_id: str, owner: str) -> StoredResponse | None:
        fields = self._run(self.client.hgetall, self.key("resp", response_id))
        if not fields or _text(fields.get(b"owner")) != owner:
            return None
        return StoredResponse(response_id, owner, codec.loads(fields[b"input"]), codec.loads(fields[b"output"]),
                              codec.loads(fields[b"response"]), _text(fields.get(b"previous_id")),
                              float(fields[b"created_at"]))

    def delete_response(self, response_id: str, owner: str) -> bool:
        # responses have no listing; the index key is a placeholder that never exists
        return bool(self._run(self._delete, keys=[self.key("resp", response_id), self.key("resp", response_id, "none"),
                                                  self.key("resp", response_id, "none")], args=[owner, response_id]))

    # -- blocks -------------------------------------------------------------

    def put_block(self, owner: str, metadata: dict, block_id: str | None = None) -> Block:
        stamp = now()
        if block_id is None:
            block = Block(new_id("blk"), owner, dict(metadata), stamp, stamp)
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(self.key("block", block.id), mapping={"owner": owner, "metadata": codec.dumps(block.metadata),
                                                            "created_at": repr(stamp), "updated_at": repr(stamp)})
            pipe.zadd(self._index(owner, "blocks"), {block.id: stamp})
            self._run(pipe.execute)
            return block
        updated = self._run(self._update, keys=[self.key("block", block_id), self._index(owner, "blocks")],
                            args=[owner, block_id, repr(stamp), "metadata", codec.dumps(metadata)])
        if not updated:
            raise KeyError(block_id)
        return self.get_block(block_id, owner)

    def get_block(self, block_id: str, owner: str) -> Block | None:
        fields = self._run(self.client.hgetall, self.key("block", block_id))
        if not fields or _text(fields.get(b"owner")) != owner:
            return None
        return Block(block_id, owner, codec.loads(fields[b"metadata"]), float(fields[b"created_at"]),
                     float(fields[b"updated_at"]))

    def list_blocks(self, owner: str, limit: int = 50) -> list[Block]:
        ids = self._run(self.client.zrevrange, self._index(owner, "blocks"), 0, clamp_limit(limit) - 1)
        return [block for block in (self.get_block(_text(i), owner) for i in ids) if block is not None]

    def delete_block(self, block_id: str, owner: str) -> bool:
        return bool(self._run(self._delete, keys=[self.key("block", block_id), self.key("block", block_id, "none"),
                                                  self._index(owner, "blocks")], args=[owner, block_id]))

    # -- AI SDK chat state ---------------------------------------------------

    def _meta_key(self, owner: str, scope: str, key: str) -> str:
        return self.key("owner", owner, "meta", scope, key)

    def _ui_keys(self, owner: str, chat_key: str) -> list[str]:
        messages = self.key("owner", owner, "ui", chat_key)
        return [messages, messages + ":order"]

    def get_meta(self, owner: str, scope: str, key: str) -> dict[str, Any]:
        fields = self._run(self.client.hgetall, self._meta_key(owner, scope, key))
        return {_text(name): codec.loads(value) for name, value in fields.items()}

    def merge_meta(self, owner: str, scope: str, key: str, changes: dict[str, Any]) -> dict[str, Any]:
        # One field per key: HSET/HDEL in one MULTI merge atomically without a read.
        target = self._meta_key(owner, scope, key)
        pipe = self.client.pipeline(transaction=True)
        removed = [name for name, value in changes.items() if value is None]
        kept = {name: codec.dumps(value) for name, value in changes.items() if value is not None}
        if removed:
            pipe.hdel(target, *removed)
        if kept:
            pipe.hset(target, mapping=kept)
        pipe.hgetall(target)
        fields = self._run(pipe.execute)[-1]
        return {_text(name): codec.loads(value) for name, value in fields.items()}

    def get_ui_messages(self, owner: str, chat_key: str) -> list[dict] | None:
        messages, order = self._ui_keys(owner, chat_key)
        ids = self._run(self.client.lrange, order, 0, -1)
        if not ids:
            return None
        values = self._run(self.client.hmget, messages, ids)
        return [codec.loads(value) for value in values if value is not None] or None

    def first_ui_message_id(self, owner: str, chat_key: str) -> str | None:
        first = self._run(self.client.lindex, self._ui_keys(owner, chat_key)[1], 0)
        return first.decode() if isinstance(first, bytes) else first

    def put_ui_messages(self, owner: str, chat_key: str, messages: Sequence[dict]) -> None:
        keys = self._ui_keys(owner, chat_key)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(*keys)
        if messages:
            pipe.hset(keys[0], mapping={m["id"]: codec.dumps(m) for m in messages})
            pipe.rpush(keys[1], *[m["id"] for m in messages])
        self._run(pipe.execute)

    def upsert_ui_messages(self, owner: str, chat_key: str, messages: Sequence[dict]) -> None:
        args: list = []
        for message in messages:
            args.extend((message["id"], codec.dumps(message)))
        if args:
            self._run(self._upsert_ui, keys=self._ui_keys(owner, chat_key), args=args)

    def delete_ui_messages(self, owner: str, chat_key: str) -> bool:
        return bool(self._run(self.client.delete, *self._ui_keys(owner, chat_key)))

    # -- workflow sessions --------------------------------------------------

    def create_session(self, owner: str, workflow_id: str, status: str = "running", summary: dict | None = None) -> WorkflowSession:
        stamp = now()
        session = WorkflowSession(new_id("wfs"), owner, workflow_id, status, dict(summary or {}), stamp, stamp)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.key("wfs", session.id), mapping={
            "owner": owner, "workflow_id": workflow_id, "status": status, "summary": codec.dumps(session.summary),
            "created_at": repr(stamp), "updated_at": repr(stamp)})
        pipe.zadd(self._index(owner, "sessions"), {session.id: stamp})
        self._run(pipe.execute)
        return session

    def update_session(self, session_id: str, owner: str, status: str | None = None,
                       summary: dict | None = None) -> WorkflowSession | None:
        changes: list = []
        if status is not None:
            changes += ["status", status]
        if summary is not None:
            changes += ["summary", codec.dumps(summary)]
        updated = self._run(self._update, keys=[self.key("wfs", session_id), self._index(owner, "sessions")],
                            args=[owner, session_id, repr(now()), *changes])
        return self.get_session(session_id, owner) if updated else None

    def get_session(self, session_id: str, owner: str) -> WorkflowSession | None:
        fields = self._run(self.client.hgetall, self.key("wfs", session_id))
        if not fields or _text(fields.get(b"owner")) != owner:
            return None
        return WorkflowSession(session_id, owner, _text(fields[b"workflow_id"]), _text(fields[b"status"]),
                               codec.loads(fields[b"summary"], {}), float(fields[b"created_at"]),
                               float(fields[b"updated_at"]))

    def list_sessions(self, owner: str, limit: int = 50) -> list[WorkflowSession]:
        ids = self._run(self.client.zrevrange, self._index(owner, "sessions"), 0, clamp_limit(limit) - 1)
        return [s for s in (self.get_session(_text(i), owner) for i in ids) if s is not None]


def _records(messages: Sequence[StoredMessage], start: int, stamp: float) -> list[tuple[StoredMessage, bytes]]:
    records = []
    for offset, message in enumerate(messages):
        stored = StoredMessage(message.role, tuple(message.parts), message.status, dict(message.meta),
                               new_id("msg"), start + offset, stamp)
        raw = codec.dumps({"id": stored.id, "role": stored.role,
                           "parts": [codec.part_to_dict(p) for p in stored.parts],
                           "status": stored.status, "meta": stored.meta, "created_at": stamp})
        records.append((stored, raw))
    return records


def _message(raw: bytes, seq: int) -> StoredMessage:
    data = codec.loads(raw)
    return StoredMessage(data["role"], tuple(codec.part_from_dict(p) for p in data["parts"]), data.get("status", "complete"),
                         data.get("meta") or {}, data["id"], seq, data["created_at"])


def _conversation(conversation_id: str, fields: dict, count: int) -> Conversation:
    return Conversation(conversation_id, _text(fields[b"owner"]), _text(fields.get(b"title")),
                        float(fields[b"created_at"]), float(fields[b"updated_at"]),
                        codec.loads(fields.get(b"metadata"), {}), count)
