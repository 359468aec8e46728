"""The Vercel AI SDK `useChat` surface: the UI message stream, server-side
configuration, saved conversations and resumable replies.

    POST /api/ai/chat/<blockId>[?preset=&protocol=text]   (and POST /api/chat with a useChat body)
        -> ui_chat_codec.decode_request + presets.resolve (query, block meta, settings, default)
        -> router.open -> guard -> ui_chat_codec.chunks -> MessageBuilder (stored when it ends)
                                                     -> frames -> resume hub + SSE response
    GET  /api/ai/chat/<blockId>[/<chatId>]/stream, /api/chat/<chatId>/stream -> replay or 204
    GET|PUT /api/ai/blocks/<blockId>    GET|PUT /api/ai/settings
    POST|GET|DELETE /api/ai/conversations/<blockId>         (stored state: ui_chat_state.py)

Everything is scoped to the caller (the owner of the API key, "" without
keys). Errors before the stream are a JSON body with a real status, which
`useChat` shows as the chat's error; after it, the codec's `error` chunk.
With SWITCHBOARD_RESUME_GRACE_SECONDS > 0 a reply whose client left keeps
running that long without a reader (longer while a replay reads it), so a
reloaded page can resume it; with 0 a departed client stops the upstream.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from flask import Blueprint, Response, g, request

from .. import chat as chat_runner
from .. import sse
from ..canonical import Message, TextPart
from ..chat import Surface
from ..errors import ProxyError
from ..request_context import require_caller
from ..response_start import FirstEvent
from ..router import apply_params
from ..store import StoreError
from ..streaming import sse_response
from . import ui_chat_codec as codec
from . import ui_chat_state as state
from .common import error_response, json_response, read_json, switchboard
from .ui_chat_codec import presets as preset_config
from .ui_chat_resume import open_hub

log = logging.getLogger(__name__)

blueprint = Blueprint("ui_chat", __name__)
SURFACE = Surface("ui_chat", codec.decode_request, codec.error_body, prefixes=("/api/ai/",))



@blueprint.errorhandler(ProxyError)
def handle_error(error: ProxyError) -> Response:
    return error_response(error, codec.error_body)


@blueprint.errorhandler(StoreError)
def handle_store_error(error: StoreError) -> Response:
    log.error("store failed: %s", error)
    return error_response(ProxyError(f"the store is unavailable: {error}", status=503, code="store_unavailable"),
                          codec.error_body)


@blueprint.before_request
def authenticate() -> None:
    """Everything here serves model output or stored data: a caller is required."""
    if request.method != "OPTIONS":
        g.ui_owner = require_caller().owner


def hub():
    board = switchboard()
    found = board.extras.get("ui_chat_hub")
    if found is None:
        found = board.extras["ui_chat_hub"] = open_hub(board.settings, board.store)
    return found


def grace_seconds(settings) -> float:
    return max(0.0, float(settings.resume_grace_seconds or 0))


# --------------------------------------------------------------------------
# configuration: presets, block metadata, global settings
# --------------------------------------------------------------------------


def available_presets(board) -> dict:
    return board.router.presets


def default_preset(settings) -> str | None:
    return settings.extra.get("default_preset")


@blueprint.record_once
def check_configuration(state) -> None:
    """A mistyped default_preset or settings: section fails at start-up, not on every chat."""
    board = state.app.extensions["switchboard"]
    name = default_preset(board.settings)
    if name is not None and name not in available_presets(board):
        known = ", ".join(sorted(available_presets(board))) or "none are configured"
        raise ValueError(f"default_preset: {name!r} is not one of the presets: ({known})")
    if not isinstance(board.settings.extra.get("settings") or {}, dict):
        raise ValueError("settings: must be a mapping such as {\"ai:preset\": writer}")


# --------------------------------------------------------------------------
# chat
# --------------------------------------------------------------------------


class Departure:
    """What the response cancels when it ends: at once without a grace
    period; with one, only after nobody has read the reply for that long."""

    def __init__(self, chat, grace: float) -> None:
        self.chat = chat
        self.grace = grace
        self.recording = None
        self.finished = False
        self.leaving = False

    def cancel(self) -> None:
        # called by the relay and by the body's close: once is enough
        if self.finished or self.leaving:
            return
        self.leaving = True
        if self.grace <= 0 or self.recording is None:
            self.chat.cancel()
            return
        left = time.time()

        def watch() -> None:
            while not self.finished:
                if time.time() - max(left, self.recording.last_read()) > self.grace:
                    self.chat.cancel()
                    return
                time.sleep(min(0.5, self.grace))

        threading.Thread(target=watch, daemon=True).start()


@blueprint.post("/api/ai/chat/<block_id>")
def block_chat(block_id: str) -> Response:
    return serve(block_id=block_id)


def serve(body: Any = chat_runner.MISSING, block_id: str | None = None) -> Response:
    """Answer a useChat body (also for POST /api/chat, where `block_id` is None
    and the chat id names the stored conversation)."""
    chat = chat_runner.start(SURFACE, body)
    board, who, body = chat.board, chat.caller.owner, chat.body
    overrides = codec.decode_overrides(body, chat.headers)
    resolved = preset_config.resolve(
        available_presets(board), board.settings.default_model, overrides,
        query=request.args.get("preset"),
        block=(lambda: board.store.get_meta(who, state.BLOCK, block_id)) if block_id is not None else None,
        settings=lambda: state.current_settings(board, who),
        default_preset=default_preset(board.settings))
    chat.request = apply(chat.request, resolved, overrides)

    raw_messages = [m for m in codec.decode.history_of(body) if isinstance(m, dict)]
    last = raw_messages[-1] if raw_messages else {}
    chat_id = body.get("id") if isinstance(body.get("id"), str) and body.get("id") else None
    # A submit after the client answered a tool continues the same assistant message.
    continuing = body.get("trigger", "submit-message") == "submit-message" and last.get("role") == "assistant" \
        and isinstance(last.get("id"), str)
    message_id = last["id"] if continuing else f"msg_{uuid.uuid4().hex}"
    history = raw_messages[:-1] if continuing else raw_messages
    builder = codec.MessageBuilder(message_id, last if continuing else None)
    chat_key = block_id if block_id is not None else chat_id
    text_protocol = request.args.get("protocol") == "text"
    names = state.resume_names(who, block_id, chat_id) if not text_protocol else []
    departure = Departure(chat, grace_seconds(board.settings))
    client_tools = [tool.name for tool in chat.request.tools]
    store = board.store
    first = FirstEvent()

    def produce(events):
        recording = departure.recording
        add = builder.add if chat_key is not None else None  # nothing to store: no message to build
        encode = codec.text_of if text_protocol else codec.frame
        try:
            for chunk in codec.chunks(events, message_id, resolved.metadata(), client_tools):
                if add is not None:
                    add(chunk)
                data = encode(chunk)
                if data:
                    if recording is not None:
                        recording.append(data)
                    yield data
            if not text_protocol:
                if recording is not None:
                    recording.append(sse.DONE)
                yield sse.DONE
        finally:
            departure.finished = True
            if recording is not None:
                recording.close()
            if chat_key is not None:
                failure = first.failure
                if failure is not None:  # answered with its status before any content
                    builder.error = codec.encode.error_text(failure)
                finished = builder.finish_reason is not None and builder.error is None
                status = None if finished else ("aborted" if chat.cancelled else "failed")
                state.save_exchange(store, who, chat_key, history, builder.message(status))

    return respond(chat, first, departure, produce, names, text_protocol)


def open_recording(names: list[str]):
    """Where the reply is kept for resuming; a broken Redis costs the resume, not the reply."""
    if not names:
        return None
    try:
        return hub().open(names)
    except Exception:
        log.exception("the reply cannot be kept for resuming")
        return None


def respond(chat, first: FirstEvent, departure: Departure, produce, names: list[str], text_protocol: bool) -> Response:
    """The runner's stream_response, with the reply recorded for resuming
    (registered before the response starts: a resume right after the POST
    finds it), the grace period on departure, and the text protocol's body."""
    def record() -> None:
        departure.recording = open_recording(names)

    return chat.stream_response(produce, codec.TEXT_HEADERS if text_protocol else codec.HEADERS, first=first,
                                cancel=departure, on_open=record, plain_text=text_protocol)


def apply(chat_request, resolved, overrides):
    """The resolved preset, with the request's own values laid over it."""
    chat_request.model = resolved.model
    chat_request.temperature = resolved.temperature
    chat_request.max_tokens = resolved.max_tokens
    if resolved.system and overrides.system is None:
        chat_request.messages.insert(0, Message("system", (TextPart(resolved.system),)))
    # the other preset fields fill what the request left unset, as a model's params do
    return apply_params(chat_request, resolved.params)


# --------------------------------------------------------------------------
# resume
# --------------------------------------------------------------------------


class _Nothing:
    def cancel(self) -> None:
        pass


def replay(name: str) -> Response:
    try:
        frames = hub().replay(name)
    except Exception as error:  # Redis unreachable: say so in this surface's shape
        raise ProxyError(f"resuming is unavailable: {error}", status=503, code="store_unavailable") from None
    if frames is None:
        return Response(status=204)
    return sse_response(frames, _Nothing(), switchboard().settings.heartbeat_seconds, headers=codec.HEADERS)


@blueprint.get("/api/ai/chat/<block_id>/stream")
def resume_block(block_id: str) -> Response:
    return replay(f"{g.ui_owner}|block:{block_id}")


@blueprint.get("/api/ai/chat/<block_id>/<chat_id>/stream")
def resume_block_chat(block_id: str, chat_id: str) -> Response:
    return replay(f"{g.ui_owner}|block:{block_id}|chat:{chat_id}")


@blueprint.get("/api/chat/<chat_id>/stream")
def resume_chat(chat_id: str) -> Response:
    return replay(f"{g.ui_owner}|chat:{chat_id}")


# --------------------------------------------------------------------------
# blocks and settings
# --------------------------------------------------------------------------


@blueprint.get("/api/ai/blocks/<block_id>")
def get_block(block_id: str) -> Response:
    return json_response({"id": block_id, "meta": switchboard().store.get_meta(g.ui_owner, state.BLOCK, block_id)})


@blueprint.put("/api/ai/blocks/<block_id>")
def put_block(block_id: str) -> Response:
    body = state.require_map(read_json(), "the request body")
    changes = state.require_map(body.get("meta"), "meta")
    meta = switchboard().store.merge_meta(g.ui_owner, state.BLOCK, block_id, changes)
    return json_response({"id": block_id, "meta": meta})


@blueprint.get("/api/ai/settings")
def get_settings() -> Response:
    return json_response(state.current_settings(switchboard(), g.ui_owner))


@blueprint.put("/api/ai/settings")
def put_settings() -> Response:
    changes = state.require_map(read_json(), "the request body")
    return json_response(state.put_settings(switchboard(), g.ui_owner, changes))


# --------------------------------------------------------------------------
# conversations
# --------------------------------------------------------------------------


@blueprint.post("/api/ai/conversations/<block_id>")
def save_conversation(block_id: str) -> Response:
    body = state.require_map(read_json(), "the request body")
    messages = state.require_ui_messages(body.get("messages"))
    switchboard().store.put_ui_messages(g.ui_owner, block_id, messages)
    return json_response({"messages": messages})


@blueprint.get("/api/ai/conversations/<block_id>")
def get_conversation(block_id: str) -> Response:
    return json_response({"messages": switchboard().store.get_ui_messages(g.ui_owner, block_id) or []})


@blueprint.delete("/api/ai/conversations/<block_id>")
def delete_conversation(block_id: str) -> Response:
    return json_response({"deleted": switchboard().store.delete_ui_messages(g.ui_owner, block_id)})
