"""Conversation and workflow-session endpoints of the OpenAI-compatible
surface, and `x-model-type: conversation` for providers other than Coze
(docs/coze-routing.md).

    GET    /v1/conversations                    the caller's conversations
    GET    /v1/conversations/<id>/history       its messages, oldest first
    DELETE /v1/conversations/<id>               deletes it (upstream too, for Coze)
    GET    /v1/workflows/sessions               the caller's workflow runs
    GET    /v1/workflows/sessions/<id>          one run: status, pending question

    /v1/chat/completions with x-model-type: conversation on a non-Coze model
        -> conversation_mode (a runner hook of the OpenAI surface) -> stored_conversation:
           history from the store + the new turn -> provider -> events
        -> ConversationTurn.record (the turn is stored before the end goes out) -> client

Everything is scoped to the caller's API key (the store owner): another key's
ids do not exist. A Coze conversation is a store record whose metadata names
the Coze conversation; its history and deletion go to Coze.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

from flask import Blueprint, Response

from ..canonical import ChatRequest, Message
from ..errors import BadRequest, NotFound, ProxyError, StoreUnavailable
from ..providers.coze.request import split_history
from ..request_context import require_caller
from ..store import StoredMessage
from ..store.base import StoreError
from . import openai_chat_codec as codec
from .common import error_response, json_response, switchboard
from .conversations import ConversationTurn

log = logging.getLogger(__name__)

blueprint = Blueprint("coze_routes", __name__)

CONVERSATION_HEADER = "x-conversation-id"


@blueprint.errorhandler(ProxyError)
def handle_error(error: ProxyError) -> Response:
    return error_response(error, codec.error_body)


@blueprint.errorhandler(StoreError)
def handle_store_error(error: StoreError) -> Response:
    log.error("store failed: %s", error)
    return error_response(StoreUnavailable("the conversation store is unavailable"), codec.error_body)


def owner() -> str:
    return require_caller().owner


def timestamp(value: float) -> int:
    return int(value or 0)


def coze_provider():
    return switchboard().router.providers.get("coze")


def coze_route(metadata: dict):
    """The declared model a Coze conversation was made with (its own token
    and base URL), or None for the provider's own."""
    return switchboard().router.routes.get(metadata.get("model") or "")


# --------------------------------------------------------------------------
# Conversations
# --------------------------------------------------------------------------


def conversation_json(conversation) -> dict:
    metadata = conversation.metadata or {}
    coze = "coze_conversation_id" in metadata
    out: dict[str, Any] = {"id": conversation.id, "object": "conversation", "title": conversation.title,
                           "created_at": timestamp(conversation.created_at),
                           "updated_at": timestamp(conversation.updated_at),
                           "provider": "coze" if coze else metadata.get("provider", "switchboard")}
    if coze:
        out["bot_id"] = metadata.get("bot_id")
    else:
        out["message_count"] = conversation.message_count
        if metadata.get("model"):
            out["model"] = metadata["model"]
    return out


def find_conversation(conversation_id: str, with_messages: bool = False):
    conversation = switchboard().store.get_conversation(conversation_id, owner(), with_messages=with_messages)
    if conversation is None:
        raise NotFound(f"no conversation {conversation_id!r} for this API key", code="conversation_not_found",
                       param="conversation_id")
    return conversation


@blueprint.get("/v1/conversations")
def list_conversations() -> Response:
    found = switchboard().store.list_conversations(owner(), 200)
    return json_response({"object": "list", "data": [conversation_json(c) for c in found]})


@blueprint.get("/v1/conversations/<conversation_id>/history")
def history(conversation_id: str) -> Response:
    conversation = find_conversation(conversation_id, with_messages=True)
    coze_id = (conversation.metadata or {}).get("coze_conversation_id")
    if coze_id:
        messages = coze_provider().conversation_history(coze_id, coze_route(conversation.metadata))
    else:
        messages = [{"id": m.id, "role": m.role, "content": m.message().text, "created_at": timestamp(m.created_at),
                     "status": m.status} for m in conversation.messages]
    return json_response({"object": "list", "conversation_id": conversation.id, "data": messages})


@blueprint.delete("/v1/conversations/<conversation_id>")
def delete(conversation_id: str) -> Response:
    conversation = find_conversation(conversation_id)
    coze_id = (conversation.metadata or {}).get("coze_conversation_id")
    if coze_id:
        # raises (and keeps ours) when Coze refuses
        coze_provider().delete_conversation(coze_id, coze_route(conversation.metadata))
    switchboard().store.delete_conversation(conversation.id, owner())
    return json_response({"id": conversation.id, "object": "conversation.deleted", "deleted": True})


# --------------------------------------------------------------------------
# Workflow sessions
# --------------------------------------------------------------------------


def session_json(session) -> dict:
    summary = session.summary or {}
    out: dict[str, Any] = {"id": session.id, "object": "workflow.session", "workflow_id": session.workflow_id,
                           "status": session.status, "created_at": timestamp(session.created_at),
                           "updated_at": timestamp(session.updated_at), "resumes": int(summary.get("resumes") or 0),
                           "input": summary.get("last_input")}
    if session.status == "interrupted":
        out["question"] = summary.get("question")
    for name in ("output", "error"):
        if summary.get(name) is not None:
            out[name] = summary[name]
    return out


@blueprint.get("/v1/workflows/sessions")
def list_sessions() -> Response:
    found = switchboard().store.list_sessions(owner(), 200)
    return json_response({"object": "list", "data": [session_json(s) for s in found]})


@blueprint.get("/v1/workflows/sessions/<session_id>")
def show_session(session_id: str) -> Response:
    session = switchboard().store.get_session(session_id, owner())
    if session is None:
        raise NotFound(f"no workflow session {session_id!r} for this API key", code="workflow_session_not_found",
                       param="session_id")
    return json_response(session_json(session))


# --------------------------------------------------------------------------
# x-model-type: conversation on providers other than Coze
# --------------------------------------------------------------------------


def owner_hint(chat) -> None:
    """App-wide chat-runner hook: providers that keep state per caller (Coze
    conversations and workflow sessions) learn the caller's store owner."""
    chat.request.hints["owner"] = chat.caller.owner


def conversation_mode(chat) -> None:
    """Chat-runner hook of the OpenAI surface: `x-model-type: conversation`
    on a non-Coze model runs from the store: history in, the new turn
    recorded, `x-conversation-id` out."""
    request = chat.request
    if request.hints.get("model_type") != "conversation":
        return
    route = chat.board.router.hinted_route(request)
    if route is None or route.provider == "coze":
        return
    stored = stored_conversation(request, chat.caller.owner, chat.board.store, route.provider)
    chat.request = stored.request
    chat.response_headers.update(stored.headers)
    chat.add_wrapper(stored.turn.record)


@dataclasses.dataclass(slots=True)
class StoredConversation:
    """The history of a conversation-mode chat, kept in the store."""

    request: ChatRequest
    conversation_id: str
    turn: ConversationTurn

    @property
    def headers(self) -> dict[str, str]:
        return {CONVERSATION_HEADER: self.conversation_id}


def stored_conversation(chat_request: ChatRequest, owner_id: str, store, provider: str) -> StoredConversation:
    """With x-conversation-id: that conversation's stored messages + the new
    turn (what the client sent after its last assistant message). Without:
    a new conversation holding the turns before it. The turn is recorded
    when the stream ends (ConversationTurn)."""
    prior, turn = split_history(chat_request.messages)
    if not turn:
        raise BadRequest("conversation mode needs a new user message at the end of messages", param="messages")
    system = [m for m in chat_request.messages if m.role in ("system", "developer")]
    conversation_id = chat_request.hints.get("conversation_id")
    try:
        if conversation_id:
            found = store.get_conversation(conversation_id, owner_id)
            if found is None:
                raise NotFound(f"no conversation {conversation_id!r} for this API key: omit {CONVERSATION_HEADER} to "
                               "start one", code="conversation_not_found", param=CONVERSATION_HEADER)
            if (found.metadata or {}).get("coze_conversation_id"):
                raise BadRequest(f"conversation {conversation_id} lives on Coze: continue it with a Coze bot "
                                 "(x-bot-id or a coze/<bot_id> model)", param=CONVERSATION_HEADER)
            history = [m.message() for m in found.messages if m.role in ("user", "assistant")]
        else:
            earlier = [StoredMessage.of(m) for m in prior if m.role in ("user", "assistant")]
            title = next((m.text for m in turn if m.text), None)
            found = store.create_conversation(owner_id, title[:80] if title else None,
                                              {"provider": provider, "model": chat_request.model}, earlier)
            conversation_id = found.id
            history = [m.message() for m in earlier]
    except StoreError as error:
        raise StoreUnavailable(f"the conversation store is unavailable: {error}") from error
    messages: list[Message] = system + history + turn
    request = dataclasses.replace(chat_request, messages=messages)
    last_user = turn[-1] if len(turn) == 1 else Message("user", tuple(p for m in turn for p in m.parts))
    return StoredConversation(request, conversation_id, ConversationTurn(store, conversation_id, owner_id, last_user))
