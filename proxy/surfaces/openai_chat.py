"""The OpenAI Chat Completions surface (docs/openai-chat.md).

    POST /v1/chat/completions -> openai_chat_codec.decode_request -> router.open
        stream: true  -> encode_stream -> SSE (streaming.sse_response)
        stream: false -> accumulate -> encode_result -> JSON

Errors before the first byte are OpenAI error objects with their status
(and Retry-After on 429); after it, the codec's in-band error event. The
chat runner (proxy/chat.py) does the rest: the caller's key, the request id,
the open-stream count, disconnects.
The reasoning field is chosen per request by the `X-Switchboard-Thinking`
header, else per deployment by the YAML setting `openai_chat: {thinking: ...}`.
"""
from __future__ import annotations

import time
import uuid

from flask import Blueprint, Response

from .. import chat as chat_runner
from ..chat import Surface
from ..errors import ProxyError
from . import coze_routes
from . import openai_chat_codec as codec
from .common import error_response, json_response, switchboard

blueprint = Blueprint("openai_chat", __name__)
# the hook: Coze route hints and x-model-type: conversation (surfaces/coze_routes.py)
SURFACE = Surface("openai_chat", codec.decode, codec.error_body, prefixes=("/v1/",),
                  hooks=(coze_routes.conversation_mode,))


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
    chat = chat_runner.start(SURFACE)
    options = codec.decode_options(chat.body, chat.headers, default_thinking(switchboard().settings))
    completion = codec.Completion(f"chatcmpl-{uuid.uuid4().hex}", chat.request.model, int(time.time()))
    if chat.request.stream:
        return chat.stream_response(lambda events: codec.encode_stream(events, completion, options))
    result = chat.result()
    return json_response(codec.encode_result(result, completion, options), headers=chat.response_headers)
