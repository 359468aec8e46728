"""The store interface: what survives a request, a worker and a restart.

    surfaces (conversations, responses, ui chat, workflows)
        -> Store (this interface) -> sqlite.py (default) | redis_store.py (REDIS_URL)

Four kinds of state: conversations (ordered messages in canonical parts,
appended one turn at a time, atomically), stored responses (Responses API
input and output items, chained by `previous_id`), blocks (id -> metadata
map) and workflow sessions (id, workflow id, status, events summary); and
for the AI SDK surface, metadata maps and UIMessage lists under names the
client chooses.

Every record has an `owner`: a digest of the caller's API key when keys are
configured, "" otherwise. A record asked for by another owner does not exist
(None / False), so ids of other callers cannot be probed. Ids are opaque and
unguessable (`new_id`). Pure: imports neither flask nor requests.
"""
from __future__ import annotations

import abc
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..canonical import Message


class StoreError(Exception):
    """The store could not do what was asked (not a caller mistake)."""


class StoreBusy(StoreError):
    """The store stayed locked by other writers past the write deadline."""


def new_id(prefix: str) -> str:
    """An opaque, unguessable id: prefix + 128 random bits, URL-safe."""
    return f"{prefix}_{secrets.token_hex(16)}"


def now() -> float:
    return time.time()


@dataclass(slots=True)
class StoredMessage:
    """One message of a conversation. `status` is "complete" or "incomplete"
    (an assistant turn cut short: client gone, upstream error). `meta` keeps
    what is not a part: plan, files, sources, model, usage, finish, error."""

    role: str
    parts: tuple
    status: str = "complete"
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    seq: int = -1
    created_at: float = 0.0

    @classmethod
    def of(cls, message: Message, status: str = "complete", meta: dict | None = None) -> "StoredMessage":
        return cls(message.role, tuple(message.parts), status, dict(meta or {}))

    def message(self) -> Message:
        return Message(self.role, tuple(self.parts))


@dataclass(slots=True)
class Conversation:
    id: str
    owner: str
    title: str | None
    created_at: float
    updated_at: float
    metadata: dict[str, Any] = field(default_factory=dict)
    message_count: int = 0
    messages: list[StoredMessage] = field(default_factory=list)  # empty in listings


@dataclass(slots=True)
class StoredResponse:
    """A Responses API response: its input and output items (JSON objects as
    the Responses surface defines them), the response object, and the
    response it continued (`previous_id`)."""

    id: str
    owner: str
    input_items: list[dict]
    output_items: list[dict]
    response: dict
    previous_id: str | None = None
    created_at: float = 0.0


@dataclass(slots=True)
class Block:
    id: str
    owner: str
    metadata: dict[str, Any]
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class WorkflowSession:
    id: str
    owner: str
    workflow_id: str
    status: str
    summary: dict[str, Any] = field(default_factory=dict)  # events summary
    created_at: float = 0.0
    updated_at: float = 0.0


# Bounds that keep one call's work (and its time holding a lock) small.
MAX_LIST = 200
MAX_CHAIN = 1000


class Store(abc.ABC):
    """One interface, two backends; every method is safe to call from many
    threads or greenlets at once. `owner` scopes every read and write."""

    # -- conversations ------------------------------------------------------

    @abc.abstractmethod
    def create_conversation(self, owner: str, title: str | None = None, metadata: dict | None = None,
                            messages: Sequence[StoredMessage] = ()) -> Conversation: ...

    @abc.abstractmethod
    def get_conversation(self, conversation_id: str, owner: str, with_messages: bool = True) -> Conversation | None: ...

    @abc.abstractmethod
    def list_conversations(self, owner: str, limit: int = 50, before: float | None = None) -> list[Conversation]:
        """Most recently updated first, without messages; `before` pages on updated_at."""

    @abc.abstractmethod
    def append_turn(self, conversation_id: str, owner: str, messages: Sequence[StoredMessage]) -> list[StoredMessage] | None:
        """Append all `messages` contiguously, atomically, after everything
        appended before; return them with id and seq set, or None when the
        conversation does not exist for this owner. Returns once durable as
        far as the backend's configuration allows (see the README)."""

    @abc.abstractmethod
    def delete_conversation(self, conversation_id: str, owner: str) -> bool: ...

    # -- stored responses ---------------------------------------------------

    @abc.abstractmethod
    def put_response(self, response: StoredResponse) -> StoredResponse: ...

    @abc.abstractmethod
    def get_response(self, response_id: str, owner: str) -> StoredResponse | None: ...

    @abc.abstractmethod
    def delete_response(self, response_id: str, owner: str) -> bool: ...

    def response_chain(self, response_id: str, owner: str,
                       lookup: Callable[[str], StoredResponse | None] | None = None) -> list[StoredResponse] | None:
        """The response and its predecessors, oldest first (the context of a
        `previous_response_id` request); None when the newest is unknown. A
        predecessor that was deleted ends the chain there. `lookup` finds a
        response by id first (a connection-local cache of unstored ones)."""
        chain: list[StoredResponse] = []
        seen: set[str] = set()
        current: str | None = response_id
        while current and current not in seen and len(chain) < MAX_CHAIN:
            seen.add(current)
            stored = (lookup(current) if lookup is not None else None) or self.get_response(current, owner)
            if stored is None:
                if not chain:
                    return None
                break
            chain.append(stored)
            current = stored.previous_id
        chain.reverse()
        return chain

    # -- blocks -------------------------------------------------------------

    @abc.abstractmethod
    def put_block(self, owner: str, metadata: dict, block_id: str | None = None) -> Block:
        """Create (new id) or replace the metadata of an existing block of this owner."""

    @abc.abstractmethod
    def get_block(self, block_id: str, owner: str) -> Block | None: ...

    @abc.abstractmethod
    def list_blocks(self, owner: str, limit: int = 50) -> list[Block]: ...

    @abc.abstractmethod
    def delete_block(self, block_id: str, owner: str) -> bool: ...

    # -- workflow sessions --------------------------------------------------

    @abc.abstractmethod
    def create_session(self, owner: str, workflow_id: str, status: str = "running", summary: dict | None = None) -> WorkflowSession: ...

    @abc.abstractmethod
    def update_session(self, session_id: str, owner: str, status: str | None = None,
                       summary: dict | None = None) -> WorkflowSession | None:
        """Set the status and/or replace the events summary."""

    @abc.abstractmethod
    def get_session(self, session_id: str, owner: str) -> WorkflowSession | None: ...

    @abc.abstractmethod
    def list_sessions(self, owner: str, limit: int = 50) -> list[WorkflowSession]: ...

    # -- AI SDK chat state: metadata documents and UIMessage lists -----------
    #
    # Keyed by names the client chooses (a block id, "settings"), scoped per
    # owner: two callers' block "main" are two records. Messages are UIMessage
    # JSON objects kept exactly as given (the client reloads them verbatim).

    @abc.abstractmethod
    def get_meta(self, owner: str, scope: str, key: str) -> dict[str, Any]:
        """The metadata map of (scope, key); {} when nothing was ever set."""

    @abc.abstractmethod
    def merge_meta(self, owner: str, scope: str, key: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Set each key of `changes` atomically; a None value removes that key.
        Returns the map after the change."""

    @abc.abstractmethod
    def get_ui_messages(self, owner: str, chat_key: str) -> list[dict] | None:
        """The chat's messages in order; None when the chat holds none."""

    @abc.abstractmethod
    def put_ui_messages(self, owner: str, chat_key: str, messages: Sequence[dict]) -> None:
        """Replace the chat's messages (each needs a string `id`)."""

    @abc.abstractmethod
    def upsert_ui_messages(self, owner: str, chat_key: str, messages: Sequence[dict]) -> None:
        """Atomically: a message whose id is stored replaces it in place, any
        other is appended (a continued or regenerated reply keeps its place)."""

    @abc.abstractmethod
    def delete_ui_messages(self, owner: str, chat_key: str) -> bool: ...

    def save_ui_exchange(self, owner: str, chat_key: str, messages: Sequence[dict]) -> None:
        """Keep a finished exchange: `messages` (history, then the reply)
        replace the chat when it is empty or starts with the same message
        (the client sent its whole history); otherwise (a trimmed history)
        they are upserted. Backends do it with one round trip where they can."""
        if replaces_chat(self.first_ui_message_id(owner, chat_key), messages):
            self.put_ui_messages(owner, chat_key, messages)
        else:
            self.upsert_ui_messages(owner, chat_key, messages)

    def first_ui_message_id(self, owner: str, chat_key: str) -> str | None:
        stored = self.get_ui_messages(owner, chat_key)
        return stored[0].get("id") if stored else None

    # -- lifecycle ----------------------------------------------------------

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Where the state lives, for logs (never a password)."""

    # Not abstract on purpose: a no-op default that stores without connections need not override.
    def close(self) -> None:  # noqa: B027
        """Release connections (the store reopens them on next use)."""


def clamp_limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIST))


def title_from(messages: Sequence[StoredMessage], limit: int = 80) -> str | None:
    """A conversation's default title: the start of its first user message."""
    for message in messages:
        if message.role == "user":
            text = " ".join(message.message().text.split())
            if text:
                return text if len(text) <= limit else text[: limit - 1] + "…"
    return None


def replaces_chat(first_stored_id: str | None, messages: Sequence[dict]) -> bool:
    """Whether a finished exchange replaces the stored UI chat (empty, or the
    exchange starts with its first message: a whole history) rather than
    being upserted into it (Store.save_ui_exchange)."""
    return first_stored_id is None or (len(messages) > 1 and first_stored_id == messages[0]["id"])
