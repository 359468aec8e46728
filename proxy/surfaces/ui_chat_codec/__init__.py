"""The Vercel AI SDK UI message stream codec (`useChat`, `ai` 5-7): pure functions.

    DefaultChatTransport body -> decode.decode_request -> ChatRequest (+ decode_overrides)
    canonical events          -> encode.chunks -> UI message chunks -> encode.frame -> SSE bytes
    UI message chunks         -> message.MessageBuilder -> the assistant UIMessage (to store)
    canonical events          -> text.encode_text -> plain text (TextStreamChatTransport)

Pure: imports neither flask nor requests.
"""
from .decode import Overrides, decode_overrides, decode_request, is_ui_request
from .encode import HEADERS, TEXT_HEADERS, chunks, encode_stream, error_body, error_chunk, frame
from .message import MessageBuilder
from .text import encode_text, text_of

__all__ = [
    "Overrides", "decode_overrides", "decode_request", "is_ui_request",
    "HEADERS", "TEXT_HEADERS", "chunks", "encode_stream", "error_body", "error_chunk", "frame",
    "MessageBuilder", "encode_text", "text_of",
]
