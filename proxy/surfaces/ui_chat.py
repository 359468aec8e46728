"""The Vercel AI SDK `useChat` surface: the UI message stream, server-side
configuration, saved conversations and resumable replies.

    POST /api/ai/chat/<blockId>[?preset=&protocol=text]   (and POST /api/chat with a useChat body)
        -> ui_chat_codec.decode_request + presets.resolve (query, block meta, settings, default)
        -> router.open -> guard -> ui_chat_codec.chunks -> MessageBuilder (stored when it ends)
                                                     -> frames -> resume hub + SSE response
    GET  /api/ai/chat/<blockId>[/<chatId>]/stream, /api/chat/<chatId>/stream -> replay or 204
    GET|PUT /api/ai/blocks/<blockId>    GET|PUT /api/ai/settings
    POST|GET|DELETE /api/ai/conversations/<blockId>

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
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, g, request

from .. import sse
from ..errors import BadRequest, ProxyError
from ..store import StoreError
from ..streaming import guard, relay, sse_response
from . import ui_chat_codec as codec
from .common import error_response, json_response, read_json, server_url, switchboard
from .ui_chat_codec import presets as preset_config
from .ui_chat_resume import open_hub

log = logging.getLogger(__name__)

blueprint = Blueprint("ui_chat", __name__)

BLOCK = "block"
SETTINGS = ("settings", "global")
SEEDED = "switchboard:seeded"  # marks a settings record that already holds the YAML initial values


@blueprint.errorhandler(ProxyError)
def handle_error(error: ProxyError) -> Response:
    return error_response(error, codec.error_body)


@blueprint.errorhandler(StoreError)
def handle_store_error(error: StoreError) -> Response:
    log.error("store failed: %s", error)
    return error_response(ProxyError(f"the store is unavailable: {error}", status=503, code="store_unavailable"),
                          codec.error_body)


def owner() -> str:
    """The store owner of this request: the runner's caller when it set one,
    else the key digest the conversation endpoints use."""
    caller = getattr(g, "caller", None)
    if caller is not None and getattr(caller, "owner", None) is not None:
        return caller.owner
    from .conversations import caller_owner

    return caller_owner(switchboard().settings)


@blueprint.before_request
def authenticate() -> None:
    if request.method != "OPTIONS":
        g.ui_owner = owner()


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
    presets = getattr(board.router, "presets", None)
    if presets is None:
        presets = board.settings.extra.get("presets") or {}
    return dict(presets)


def default_preset(settings) -> str | None:
    return getattr(settings, "default_preset", None) or settings.extra.get("default_preset")


def current_settings(who: str) -> dict:
    board = switchboard()
    stored = board.store.get_meta(who, *SETTINGS)
    if SEEDED not in stored:
        return dict(board.settings.extra.get("settings") or {})
    return {k: v for k, v in stored.items() if k != SEEDED}


def require_map(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object; a null value removes that key", param=what)
    return value


# --------------------------------------------------------------------------
# chat
# --------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class DecodeContext:
    default_model: str
    server_url: str | None


class Departure:
    """What relay() cancels when the response ends: at once without a grace
    period; with one, only after nobody has read the reply for that long."""

    def __init__(self, stream, grace: float) -> None:
        self.stream = stream
        self.grace = grace
        self.recording = None
        self.finished = False
        self.cancelled = False

    def cancel(self) -> None:
        if self.finished:
            return
        if self.grace <= 0 or self.recording is None:
            self._stop()
            return
        left = time.time()

        def watch() -> None:
            while not self.finished:
                if time.time() - max(left, self.recording.last_read()) > self.grace:
                    self._stop()
                    return
                time.sleep(min(0.5, self.grace))

        threading.Thread(target=watch, daemon=True).start()

    def _stop(self) -> None:
        self.cancelled = True
        self.stream.cancel()


@blueprint.post("/api/ai/chat/<block_id>")
def block_chat(block_id: str) -> Response:
    return serve(read_json(), block_id=block_id)


def serve(body: Any, block_id: str | None = None) -> Response:
    """Answer a useChat body (also for POST /api/chat, where `block_id` is None
    and the chat id is the conversation's name)."""
    board = switchboard()
    who = owner()
    headers = request.headers
    chat_request = codec.decode_request(body, headers, DecodeContext(board.settings.default_model, server_url()))
    overrides = codec.decode_overrides(body, headers)
    resolved = preset_config.resolve(
        available_presets(board), board.settings.default_model, overrides,
        query=request.args.get("preset"),
        block=board.store.get_meta(who, BLOCK, block_id) if block_id is not None else None,
        settings=current_settings(who),
        default_preset=default_preset(board.settings))
    apply(chat_request, resolved, overrides)

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
    names = resume_names(who, block_id, chat_id) if not text_protocol else []

    stream = board.router.open(chat_request)  # errors before the stream: JSON with their status
    from .workbench import _recent_streams

    _recent_streams(board).append(stream)  # /health counts streams still holding their upstream
    departure = Departure(stream, grace_seconds(board.settings))
    client_tools = [tool.name for tool in chat_request.tools]
    store = board.store
    # registered before the response starts: a resume right after the POST finds it
    recording = hub().open(names) if names else None
    departure.recording = recording

    def produce():
        try:
            for chunk in codec.chunks(guard(stream), message_id, resolved.metadata(), client_tools):
                builder.add(chunk)
                data = codec.text_of(chunk) if text_protocol else codec.frame(chunk)
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
                finished = builder.finish_reason is not None and builder.error is None
                status = None if finished else ("aborted" if departure.cancelled else "failed")
                save_exchange(store, who, chat_key, history, builder.message(status))

    if text_protocol:
        return Response(relay(produce(), departure, board.settings.total_timeout), mimetype="text/plain",
                        headers=codec.TEXT_HEADERS, direct_passthrough=True)
    return sse_response(produce(), departure, board.settings.heartbeat_seconds, headers=codec.HEADERS)


def apply(chat_request, resolved, overrides) -> None:
    """The resolved preset, with the request's own values laid over it."""
    from ..canonical import Message, TextPart
    from ..router import REQUEST_PARAMS

    chat_request.model = resolved.model
    chat_request.temperature = resolved.temperature
    chat_request.max_tokens = resolved.max_tokens
    if resolved.system and overrides.system is None:
        chat_request.messages.insert(0, Message("system", (TextPart(resolved.system),)))
    for name, value in resolved.params.items():
        if name in REQUEST_PARAMS:
            if getattr(chat_request, name) in (None, []):
                setattr(chat_request, name, value)
        else:
            chat_request.extra.setdefault(name, value)


def resume_names(who: str, block_id: str | None, chat_id: str | None) -> list[str]:
    if block_id is not None:
        names = [f"{who}|block:{block_id}"]
        if chat_id:
            names.append(f"{who}|block:{block_id}|chat:{chat_id}")
        return names
    return [f"{who}|chat:{chat_id}"] if chat_id else []


def save_exchange(store, who: str, chat_key: str, history: list[dict], reply: dict) -> None:
    """Keep the exchange without waiting for the client to save it. The body
    normally holds the whole history: then the stored chat becomes exactly
    what the client shows. A body trimmed by the app only adds or updates."""
    try:
        messages = [m for m in history if isinstance(m.get("id"), str) and m["id"] != reply["id"]] + [reply]
        stored = store.get_ui_messages(who, chat_key)
        if stored is None or (len(messages) > 1 and stored[0].get("id") == messages[0]["id"]):
            store.put_ui_messages(who, chat_key, unique(messages))
        else:
            store.upsert_ui_messages(who, chat_key, unique(messages))
    except Exception:
        log.exception("storing a UI chat exchange failed")


def unique(messages: list[dict]) -> list[dict]:
    """The last message with each id, in the order ids first appear."""
    by_id: dict[str, dict] = {}
    for message in messages:
        by_id[message["id"]] = message
    return list(by_id.values())


# --------------------------------------------------------------------------
# resume
# --------------------------------------------------------------------------


class _Nothing:
    def cancel(self) -> None:
        pass


def replay(name: str) -> Response:
    frames = hub().replay(name)
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
    return json_response({"id": block_id, "meta": switchboard().store.get_meta(g.ui_owner, BLOCK, block_id)})


@blueprint.put("/api/ai/blocks/<block_id>")
def put_block(block_id: str) -> Response:
    body = require_map(read_json(), "the request body")
    changes = require_map(body.get("meta"), "meta")
    meta = switchboard().store.merge_meta(g.ui_owner, BLOCK, block_id, changes)
    return json_response({"id": block_id, "meta": meta})


@blueprint.get("/api/ai/settings")
def get_settings() -> Response:
    return json_response(current_settings(g.ui_owner))


@blueprint.put("/api/ai/settings")
def put_settings() -> Response:
    changes = require_map(read_json(), "the request body")
    if SEEDED in changes:
        raise BadRequest(f"{SEEDED!r} is reserved", param=SEEDED)
    store = switchboard().store
    if SEEDED not in store.get_meta(g.ui_owner, *SETTINGS):
        changes = {**current_settings(g.ui_owner), **changes, SEEDED: True}
    merged = store.merge_meta(g.ui_owner, *SETTINGS, changes)
    return json_response({k: v for k, v in merged.items() if k != SEEDED})


# --------------------------------------------------------------------------
# conversations
# --------------------------------------------------------------------------


def require_ui_messages(value: Any) -> list[dict]:
    if not isinstance(value, list):
        raise BadRequest("'messages' must be an array of UIMessages {id, role, parts}", param="messages")
    seen: set[str] = set()
    for index, message in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(message, dict) or not isinstance(message.get("id"), str) or not message["id"]:
            raise BadRequest(f"{where} must be a UIMessage with a string id", param=f"{where}.id")
        if message.get("role") not in codec.decode.ROLES:
            raise BadRequest(f"{where}.role must be one of system, user, assistant", param=f"{where}.role")
        if not isinstance(message.get("parts"), list):
            raise BadRequest(f"{where}.parts must be an array", param=f"{where}.parts")
        if message["id"] in seen:
            raise BadRequest(f"{where}.id {message['id']!r} appears twice", param=f"{where}.id")
        seen.add(message["id"])
    return value


@blueprint.post("/api/ai/conversations/<block_id>")
def save_conversation(block_id: str) -> Response:
    body = require_map(read_json(), "the request body")
    messages = require_ui_messages(body.get("messages"))
    switchboard().store.put_ui_messages(g.ui_owner, block_id, messages)
    return json_response({"messages": messages})


@blueprint.get("/api/ai/conversations/<block_id>")
def get_conversation(block_id: str) -> Response:
    return json_response({"messages": switchboard().store.get_ui_messages(g.ui_owner, block_id) or []})


@blueprint.delete("/api/ai/conversations/<block_id>")
def delete_conversation(block_id: str) -> Response:
    return json_response({"deleted": switchboard().store.delete_ui_messages(g.ui_owner, block_id)})
