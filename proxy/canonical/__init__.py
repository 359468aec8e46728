"""The canonical model in the middle of every flow.

Surfaces decode client requests into a `ChatRequest` (request.py); providers
turn it into upstream calls and yield the canonical events (events.py);
surfaces encode those events into their own wire format. Non-streaming
responses fold the same events with `accumulate()` (result.py).

Pure: imports neither flask nor requests (tests/test_purity.py checks it).
"""
from .events import (
    CONTENT_EVENTS,
    FINISH_REASONS,
    Error,
    Event,
    File,
    Finish,
    PlanStep,
    PlanUpdate,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    ResponseMetadata,
    Source,
    TextDelta,
    TextEnd,
    TextStart,
    TodoUpdate,
    ToolCall,
    ToolInputDelta,
    ToolInputEnd,
    ToolInputStart,
    Usage,
)
from .request import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    ReasoningPart,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    split_data_url,
)
from .result import Accumulator, ChatResult, accumulate

__all__ = [
    "CONTENT_EVENTS", "FINISH_REASONS", "Error", "Event", "File", "Finish", "PlanStep", "PlanUpdate",
    "ReasoningDelta", "ReasoningEnd", "ReasoningStart", "ResponseMetadata", "Source", "TextDelta", "TextEnd",
    "TextStart", "TodoUpdate", "ToolCall", "ToolInputDelta", "ToolInputEnd", "ToolInputStart", "Usage",
    "ChatRequest", "ImagePart", "Message", "Part", "ReasoningPart", "TextPart", "Tool", "ToolCallPart",
    "ToolResultPart", "split_data_url", "Accumulator", "ChatResult", "accumulate",
]
