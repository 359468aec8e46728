"""The Open Responses surface: `/v1/responses` over HTTP (JSON and SSE) and WebSocket.

    POST   /v1/responses                    body -> responses_codec.decode_request -> ResponseTurn
              + previous_response_id: the stored chain (store or connection cache) -> context
              -> the chat runner: stream: encode_stream -> SSE  |  else: result -> encode_result
    GET    /v1/responses (Upgrade: websocket) -> responses_ws.serve: response.create messages
    GET    /v1/responses/<id>               the stored Response object
    DELETE /v1/responses/<id>               {"id", "object": "response", "deleted": true}
    GET    /v1/responses/<id>/input_items   {"object": "list", "data", "first_id", "last_id", "has_more"}
    POST   /v1/responses/compact            {"id", "object": "response.compaction", "output", ...}
    GET    /v1/responses/models             models and presets (presets as agents), for LibreChat

A response is stored (unless `store: false`) before its terminal event or
JSON body leaves: a client that has seen it complete can continue from it at
once, on any worker. Stored responses belong to the caller's API key. A
stream the client abandons is stopped upstream and stored as `incomplete`
(reason `cancelled`) with what it produced. Errors before the first byte are
OpenAI-style error objects with their status; after it, `response.failed`.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any

from flask import Blueprint, Response, request

from .. import chat as chat_runner
from ..canonical import ChatResult, Message, TextPart
from ..chat import Chat, Surface
from ..errors import BadRequest, NotFound, ProxyError
from ..request_context import require_caller
from ..store import StoredResponse
from ..store.base import StoreError
from . import responses_codec as codec
from .common import error_response, json_response, read_json, switchboard
from .conversations import StoreUnavailable

log = logging.getLogger(__name__)

PREFIX = "/v1/responses"
blueprint = Blueprint("responses", __name__)
SURFACE = Surface("responses", codec.decode_request, codec.error_body, prefixes=(PREFIX,))
COMPACT_PROMPT = ("Summarize the conversation above for a later continuation: keep every fact, decision, name, "
                  "number and open question; leave out pleasantries. Answer with the summary only.")


@blueprint.errorhandler(ProxyError)
def handle_error(error: ProxyError) -> Response:
    return error_response(error, codec.error_body)


@blueprint.errorhandler(StoreError)
def handle_store_error(error: StoreError) -> Response:
    log.error("store failed: %s", error)
    return error_response(StoreUnavailable(f"the response store is unavailable: {error}"), codec.error_body)


@blueprint.after_request
def worker_header(response: Response) -> Response:
    if switchboard().settings.debug_headers:  # lets multi-worker tests see which worker answered
        response.headers["X-Switchboard-Worker"] = str(os.getpid())
    return response


def reasoning_naming(settings) -> str:
    """`response.reasoning.*` (the spec) or `response.reasoning_text.*`
    (OpenAI's names), from the YAML setting `responses: {reasoning_events: ...}`."""
    return (settings.extra.get("responses") or {}).get("reasoning_events") or "reasoning"


@blueprint.record_once
def check_settings(state) -> None:
    naming = reasoning_naming(state.app.extensions["switchboard"].settings)
    if naming not in codec.REASONING_NAMINGS:
        raise ValueError(f"responses.reasoning_events must be one of {', '.join(codec.REASONING_NAMINGS)}; "
                         f"got {naming!r}")


def current_owner() -> str:
    return require_caller().owner


def previous_not_found(response_id: str) -> BadRequest:
    return BadRequest(f"Previous response with id '{response_id}' not found.", code="previous_response_not_found",
                      param="previous_response_id")


def not_found(response_id: str) -> NotFound:
    return NotFound(f"No response found with id '{response_id}'.", param="response_id")


class ResponseTurn:
    """One response being made: the runner's chat with its stored context
    loaded, the response's state, and where it is kept when it ends."""

    def __init__(self, chat: Chat, cache: dict | None = None) -> None:
        self.chat = chat
        self.board = chat.board
        self.owner = chat.caller.owner
        self.cache = cache  # a WebSocket connection's responses, store: false ones included
        self.options = codec.decode_options(chat.body, chat.board.settings.default_model)
        self.request = chat.request
        self.items = codec.input_items(chat.body)
        history, previous_tools = self._history()
        if self.options.previous_response_id:  # the codec decoded the new input alone: the chain goes first
            self.request.messages = codec.build_messages(self.options.instructions, history, self.items)
        if not self.request.tools and previous_tools and any(i.get("type") == "function_call" for i in history):
            # A tool result continuing a stored response may come without
            # `tools` (the spec's round trip); providers that insist on tool
            # definitions beside tool calls get the earlier ones, unusable.
            self.request.tools, self.request.tool_choice = previous_tools, "none"
        self.state = codec.ResponseState(self.options, reasoning_naming=reasoning_naming(self.board.settings),
                                         on_terminal=self.keep)
        chat.add_recorder(self.record)

    def _history(self) -> tuple[list[dict], list]:
        previous = self.options.previous_response_id
        if not previous:
            return [], []
        chain = self._chain(previous)
        if chain is None:
            raise previous_not_found(previous)
        history: list[dict] = []
        for stored in chain:
            history.extend(stored.input_items)
            history.extend(stored.output_items)
        tools, _ = codec.decode.decode_tools(chain[-1].response.get("tools") or None)
        return history, tools

    def _chain(self, response_id: str) -> list[StoredResponse] | None:
        lookup = self.cache.get if self.cache is not None else None
        return self.board.store.response_chain(response_id, self.owner, lookup)

    def keep(self, final: dict) -> None:
        """Called with the final Response object before it is sent."""
        if final["status"] == "failed" and (final["error"] or {}).get("code") == "cancelled":
            # the client left: the stream was cut by us, not by the upstream
            final.update(status="incomplete", error=None, incomplete_details={"reason": "cancelled"})
        stored = StoredResponse(final["id"], self.owner, self.items, final["output"], final,
                                self.options.previous_response_id, float(final["created_at"]))
        if self.cache is not None:
            if final["status"] == "failed":
                self.evict()
            else:
                self.cache[final["id"]] = stored
        if self.options.store:
            try:
                self.board.store.put_response(stored)
            except Exception:
                log.exception("storing response %s failed", final["id"])

    def record(self, result: ChatResult, completed: bool) -> None:
        """The runner's recorder: a stream that ended without a terminal
        event (its client left before the encoder got there) is kept as far
        as it got."""
        if self.state.final is None and self.chat.cancelled:
            codec.incomplete_response(result, self.state)

    def release(self) -> None:
        """Drop the state's hold on this turn (its on_terminal is our keep)
        when no terminal will come (failed before its stream); the terminal
        drops it itself. Without it each response would be a reference cycle
        that keeps the whole chat alive until a full garbage collection."""
        self.state.on_terminal = None

    def evict(self) -> None:
        """A failed continuation drops what it continued from the connection cache."""
        if self.cache is not None and self.options.previous_response_id:
            self.cache.pop(self.options.previous_response_id, None)


def begin(body: Any = chat_runner.MISSING, headers=None, caller=None, cache: dict | None = None) -> ResponseTurn:
    """Decode through the runner, then load the stored context."""
    return ResponseTurn(chat_runner.start(SURFACE, body, headers, caller=caller), cache)


@blueprint.post(PREFIX)
def create() -> Response:
    turn = begin()
    chat = turn.chat
    try:
        if turn.options.stream:
            return chat.stream_response(lambda events: codec.encode_stream(events, turn.state))
        result = chat.result()  # raises the stream's error: answered with its status
    except BaseException:
        turn.release()  # failed before its stream: nothing will end it
        raise
    return json_response(codec.encode_result(result, turn.state), headers=chat.response_headers)


# websocket=True: Werkzeug routes an Upgrade request only to rules that say so
@blueprint.route(PREFIX, methods=["GET"], websocket=True)
def websocket() -> Response:
    from . import responses_ws

    caller = require_caller()  # a wrong key is refused before the handshake, with a 401
    return responses_ws.serve(request.environ, lambda body, cache: begin(body, request.headers, caller, cache))


@blueprint.get(f"{PREFIX}/models")
def models() -> Response:
    """LibreChat's agents listing: the models, and presets as agents."""
    require_caller()
    router = switchboard().router
    data = [dict(route.describe(), name=route.id, provider=route.provider) for route in router.models()]
    for name, preset in router.presets.items():
        try:
            provider = router.resolve(preset.model).provider
        except ProxyError:
            continue
        data.append({"id": name, "object": "agent", "created": 0, "owned_by": "switchboard", "name": name,
                     "provider": provider, "model": preset.model, "instructions": preset.system or None,
                     "description": preset.description})
    return json_response({"object": "list", "data": data})


@blueprint.get(f"{PREFIX}/<response_id>")
def retrieve(response_id: str) -> Response:
    if request.args.get("stream") in ("true", "1"):
        raise BadRequest("replaying a stored response as a stream is not supported; omit 'stream'", param="stream")
    stored = switchboard().store.get_response(response_id, current_owner())
    if stored is None:
        raise not_found(response_id)
    return json_response(stored.response)


@blueprint.delete(f"{PREFIX}/<response_id>")
def delete(response_id: str) -> Response:
    if not switchboard().store.delete_response(response_id, current_owner()):
        raise not_found(response_id)
    return json_response({"id": response_id, "object": "response", "deleted": True})


@blueprint.get(f"{PREFIX}/<response_id>/input_items")
def input_items(response_id: str) -> Response:
    stored = switchboard().store.get_response(response_id, current_owner())
    if stored is None:
        raise not_found(response_id)
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise BadRequest("'order' must be asc or desc", param="order")
    try:
        limit = int(request.args.get("limit", 20))
    except ValueError:
        raise BadRequest("'limit' must be an integer from 1 to 100", param="limit") from None
    if not 1 <= limit <= 100:
        raise BadRequest("'limit' must be an integer from 1 to 100", param="limit")
    items = list(stored.input_items) if order == "asc" else list(reversed(stored.input_items))
    after = request.args.get("after")
    if after:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise BadRequest(f"'after' names no input item of {response_id}", param="after")
        items = items[ids.index(after) + 1:]
    page = items[:limit]
    return json_response({"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                          "last_id": page[-1]["id"] if page else None, "has_more": len(items) > limit})


@blueprint.post(f"{PREFIX}/compact")
def compact() -> Response:
    """Compaction: the user messages kept as they are, everything else
    replaced by a summary the model writes, sealed in one `compaction` item
    that a later request sends back as input."""
    require_caller()
    body = read_json()
    codec.require_model(body)  # 400 without a model: compaction has no default
    summary_body = {key: body[key] for key in ("model", "input", "instructions", "previous_response_id")
                    if key in body}
    summary_body.update(stream=False, store=False)
    turn = begin(summary_body)
    turn.request.tools, turn.request.tool_choice = [], None
    turn.request.messages.append(Message("user", (TextPart(COMPACT_PROMPT),)))
    result = turn.chat.result()
    kept = [item for item in turn.items if item.get("type") == "message" and item.get("role") == "user"]
    compaction = {"type": "compaction", "id": codec.decode.new_item_id("compaction"),
                  "encrypted_content": codec.opaque.seal_summary(result.text)}
    usage = codec.encode.usage_object(result.usage) or codec.encode.usage_object(codec.encode.Usage())
    return json_response({"id": turn.state.id, "object": "response.compaction", "output": [*kept, compaction],
                          "created_at": int(time.time()), "usage": usage})
