"""Saved Workbench conversations: the HTTP endpoints and the chat recorder.

    POST   /api/conversations            {title?, metadata?, messages?} -> 201 conversation
    GET    /api/conversations            ?limit=&before=  -> {object: list, data, has_more, next_before}
    GET    /api/conversations/<id>       -> conversation with its messages
    DELETE /api/conversations/<id>       -> {id, object: conversation.deleted, deleted: true}

    POST /api/chat {conversation_id, messages, ...}  and Socket.IO `chat` with
    `conversation_id`: ConversationTurn.record(events) appends the user turn
    and the whole assistant turn (text, reasoning, plan) when the stream ends,
    before the final frame goes out; a stream cut short (client gone,
    upstream error) is recorded as far as it got, status "incomplete".

Owners: with API keys configured (SWITCHBOARD_API_KEYS) every call needs a
key (the request's caller, proxy/request_context.py) and sees only the
conversations made with that key; without keys everything is shared.
Recording is a chat-runner hook (record_named_conversation), so every
surface whose body names a `conversation_id` gets it.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator

from flask import Blueprint, Response, request

from ..canonical import Error, Event, Message
from ..errors import BadRequest, NotFound, ProxyError, StoreUnavailable
from ..request_context import require_caller
from ..store import Store, StoredMessage
from ..store.base import StoreError
from ..store.codec import assistant_turn, part_to_dict
from ..streaming import Recorder
from . import workbench_codec
from .common import error_response, json_response, read_json, switchboard
from .messages import decode_simple_messages, require_object

log = logging.getLogger(__name__)

blueprint = Blueprint("conversations", __name__)

PARAM = "conversation_id"


@blueprint.errorhandler(ProxyError)
def handle_error(error: ProxyError) -> Response:
    return error_response(error, workbench_codec.error_body)


@blueprint.errorhandler(StoreError)
def handle_store_error(error: StoreError) -> Response:
    log.error("store failed: %s", error)
    return error_response(StoreUnavailable(f"the conversation store is unavailable: {error}"), workbench_codec.error_body)


@blueprint.after_request
def worker_header(response: Response) -> Response:
    if switchboard().settings.debug_headers:
        response.headers["X-Switchboard-Worker"] = str(os.getpid())
    return response


def caller_owner() -> str:
    """The owner scope of this request ("" without configured keys)."""
    return require_caller().owner


# --------------------------------------------------------------------------
# JSON shapes
# --------------------------------------------------------------------------


def message_json(message: StoredMessage) -> dict:
    text = "".join(p.text for p in message.parts if p.type == "text")
    reasoning = "".join(p.text for p in message.parts if p.type == "reasoning")
    out: dict[str, Any] = {"id": message.id, "seq": message.seq, "role": message.role, "content": text,
                           "parts": [part_to_dict(p) for p in message.parts], "status": message.status,
                           "created_at": message.created_at}
    if reasoning:
        out["reasoning"] = reasoning
    out.update(message.meta)
    return out


def conversation_json(conversation, with_messages: bool) -> dict:
    out = {"id": conversation.id, "object": "conversation", "title": conversation.title,
           "created_at": conversation.created_at, "updated_at": conversation.updated_at,
           "metadata": conversation.metadata, "message_count": conversation.message_count}
    if with_messages:
        out["messages"] = [message_json(m) for m in conversation.messages]
    return out


# --------------------------------------------------------------------------
# Endpoints
# --------------------------------------------------------------------------


@blueprint.post("/api/conversations")
def create() -> Response:
    board = switchboard()
    owner = caller_owner()
    body = read_json(optional=True)  # chunked bodies too: no Content-Length needed
    body = {} if body is None else require_object(body)
    title = body.get("title")
    if title is not None and not isinstance(title, str):
        raise BadRequest("'title' must be a string", param="title")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise BadRequest("'metadata' must be an object of string keys", param="metadata")
    messages = body.get("messages") or []
    if not isinstance(messages, list):
        raise BadRequest("'messages' must be an array of {role, content} objects", param="messages")
    stored = [StoredMessage.of(m) for m in decode_simple_messages(messages)] if messages else []
    conversation = board.store.create_conversation(owner, title, metadata, stored)
    return json_response(conversation_json(conversation, True), 201,
                         {"Location": f"/api/conversations/{conversation.id}"})


@blueprint.get("/api/conversations")
def listing() -> Response:
    board = switchboard()
    owner = caller_owner()
    try:
        limit = int(request.args.get("limit", 50))
        before = request.args.get("before")
        before = float(before) if before else None
    except ValueError:
        raise BadRequest("'limit' must be an integer and 'before' a number (a next_before value)") from None
    if not 1 <= limit <= 200:
        raise BadRequest("'limit' must be between 1 and 200", param="limit")
    found = board.store.list_conversations(owner, limit + 1, before)
    page = found[:limit]
    return json_response({"object": "list", "data": [conversation_json(c, False) for c in page],
                          "has_more": len(found) > limit,
                          "next_before": page[-1].updated_at if len(found) > limit else None})


@blueprint.get("/api/conversations/<conversation_id>")
def load(conversation_id: str) -> Response:
    board = switchboard()
    conversation = board.store.get_conversation(conversation_id, caller_owner())
    if conversation is None:
        raise not_found(conversation_id)
    return json_response(conversation_json(conversation, True))


@blueprint.delete("/api/conversations/<conversation_id>")
def delete(conversation_id: str) -> Response:
    board = switchboard()
    if not board.store.delete_conversation(conversation_id, caller_owner()):
        raise not_found(conversation_id)
    return json_response({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


def not_found(conversation_id: str) -> NotFound:
    return NotFound(f"no conversation {conversation_id!r}: create one with POST /api/conversations",
                    code="conversation_not_found", param=PARAM)


# --------------------------------------------------------------------------
# Recording chats into a conversation
# --------------------------------------------------------------------------


@dataclass(slots=True)
class ConversationTurn:
    """One chat that is to be saved into a conversation when it ends."""

    store: Store
    conversation_id: str
    owner: str
    user_message: Message | None

    def record(self, events) -> Iterator[Event]:
        """Pass `events` through. When the stream is over (finished, failed
        or cut short) append [user message, assistant message] in one atomic
        write, and only then let the final Finish/Error event through: a
        client that saw the end of the stream knows the turn is stored. If
        the write fails, the client gets an error instead of a clean end."""
        failure: list[Exception] = []

        def on_close(result, completed: bool) -> None:
            parts, status, meta = assistant_turn(result, completed)
            turn = [StoredMessage.of(self.user_message)] if self.user_message is not None else []
            turn.append(StoredMessage("assistant", parts, status, meta))
            try:
                if self.store.append_turn(self.conversation_id, self.owner, turn) is None:
                    raise StoreError(f"conversation {self.conversation_id} was deleted during the chat")
            except Exception as error:
                failure.append(error)
                raise

        tapped = Recorder(on_close).tap(events)
        terminal = None
        try:
            for event in tapped:
                if event.type == "finish" or event.type == "error":
                    terminal = event  # held back until the turn is written
                    continue
                yield event
        finally:
            tapped.close()  # on GeneratorExit too: the recorder writes what was produced
        if failure and (terminal is None or terminal.type == "finish"):
            terminal = Error(StoreUnavailable("the answer could not be saved to the conversation"))
        if terminal is not None:
            yield terminal


def record_named_conversation(chat) -> None:
    """Chat-runner hook: a body naming a `conversation_id` saves the turn
    there. Raises (before anything streams) when the id is malformed or
    names no conversation of this caller."""
    body = chat.body
    if not isinstance(body, dict) or body.get(PARAM) is None:
        return
    conversation_id = body[PARAM]
    if not isinstance(conversation_id, str) or not conversation_id:
        raise BadRequest(f"'{PARAM}' must be a string id from POST /api/conversations", param=PARAM)
    store = chat.board.store
    owner = chat.caller.owner
    try:
        found = store.get_conversation(conversation_id, owner, with_messages=False)
    except StoreError as error:
        raise StoreUnavailable(f"the conversation store is unavailable: {error}") from error
    if found is None:
        raise not_found(conversation_id)
    last = chat.request.messages[-1] if chat.request.messages else None
    user_message = last if last is not None and last.role == "user" else None
    chat.add_wrapper(ConversationTurn(store, conversation_id, owner, user_message).record)
