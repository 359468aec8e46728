"""The OpenAI Chat Completions surface (specs/openai-chat.md).

    POST /v1/chat/completions -> openai_chat_codec.decode_request -> router.open
        stream: true  -> encode_stream -> SSE (streaming.sse_response)
        stream: false -> accumulate -> encode_result -> JSON

Errors before the first byte are OpenAI error objects with their status
(and Retry-After on 429); after it, the codec's in-band error event. With
`api_keys` configured, `Authorization: Bearer <key>` is required.
The reasoning field is chosen per request by the `X-Switchboard-Thinking`
header, else per deployment by the YAML setting `openai_chat: {thinking: ...}`.
"""
from __future__ import annotations

import time
import uuid

from flask import Blueprint, Response, request

from ..canonical import accumulate
from ..errors import ProxyError
from ..streaming import guard, sse_response
from . import openai_chat_codec as codec
from . import operations
from .api_keys import require_api_key
from .common import error_response, json_response, read_json, server_url, switchboard

blueprint = Blueprint("openai_chat", __name__)
blueprint.before_request(require_api_key)


@blueprint.errorhandler(ProxyError)
def handle_error(error: ProxyError) -> Response:
    return error_response(error, codec.error_body)


def default_thinking(settings) -> str:
    section = settings.extra.get("openai_chat") or {}
    return section.get("thinking") or "reasoning_content"


@blueprint.record_once
def check_settings(state) -> None:
    """A mistyped thinking mode fails at start-up, not on every request."""
    mode = default_thinking(state.app.extensions["switchboard"].settings)
    if mode not in codec.THINKING_MODES:
        raise ValueError(f"openai_chat.thinking must be one of {', '.join(codec.THINKING_MODES)}; got {mode!r}")


@blueprint.post("/v1/chat/completions")
@blueprint.post("/v1/chat/completions/")
def chat_completions() -> Response:
    board = switchboard()
    body = read_json()
    chat_request = codec.decode_request(body, board.settings.default_model, server_url())
    options = codec.decode_options(body, request.headers, default_thinking(board.settings))
    ticket = operations.admit("openai_chat", chat_request)
    stream = operations.open_tracked(ticket, board.router, chat_request)
    completion = codec.Completion(f"chatcmpl-{uuid.uuid4().hex}", chat_request.model, int(time.time()))
    if chat_request.stream:
        frames = codec.encode_stream(ticket.track(stream, guard(stream)), completion, options)
        return sse_response(frames, stream, board.settings.heartbeat_seconds)
    try:
        result = accumulate(ticket.track(stream, guard(stream)))  # raises the stream's error: answered with its status
    finally:
        stream.cancel()
    return json_response(codec.encode_result(result, completion, options))
