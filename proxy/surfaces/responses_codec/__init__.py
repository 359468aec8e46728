"""The Open Responses codec (`/v1/responses`): pure decode and encode.

    request JSON -> decode.decode_request -> ChatRequest   (+ decode_options -> ResponseOptions)
    stored chain items + new items -> decode.build_messages -> canonical messages
    canonical events -> encode.stream_events -> event dicts -> encode_stream (SSE) | WebSocket
    ChatResult -> encode.encode_result -> the Response object

Items (messages, function calls and their outputs, reasoning) are the unit
of this protocol; the canonical model has messages and parts, so decoding
groups consecutive assistant-side items into one assistant message, and
encoding turns parts back into items. Provider data that must round-trip
(thinking and thought signatures) rides opaquely in a reasoning item's
`encrypted_content` (opaque.py). Pure: imports neither flask nor requests.
"""
from . import decode, encode, opaque  # noqa: F401  (the submodules, for callers that name them)
from .decode import (
    ResponseOptions,
    build_messages,
    decode_options,
    decode_request,
    input_items,
    require_model,
)
from .encode import (
    REASONING_NAMINGS,
    ResponseState,
    encode_result,
    encode_stream,
    error_body,
    failed_response,
    incomplete_response,
    output_items,
    stream_events,
)

__all__ = [
    "ResponseOptions", "build_messages", "decode_options", "decode_request", "input_items", "require_model",
    "REASONING_NAMINGS", "ResponseState", "encode_result", "encode_stream", "error_body", "failed_response",
    "incomplete_response", "output_items", "stream_events",
]
