"""The OpenAI Chat Completions codec (docs/openai-chat.md): pure functions.

    POST /v1/chat/completions body -> decode.decode_request -> ChatRequest
    canonical events               -> encode.encode_stream  -> chunk SSE frames
    ChatResult                     -> encode.encode_result  -> `chat.completion`

Pure: imports neither flask nor requests.
"""
from .decode import (
    THINKING_HEADER,
    THINKING_MODES,
    EncodeOptions,
    decode,
    decode_messages,
    decode_options,
    decode_request,
)
from .encode import Completion, encode_result, encode_stream, error_body, finish_reason, usage_object

__all__ = [
    "THINKING_HEADER", "THINKING_MODES", "EncodeOptions", "decode", "decode_messages", "decode_options", "decode_request",
    "Completion", "encode_result", "encode_stream", "error_body", "finish_reason", "usage_object",
]
