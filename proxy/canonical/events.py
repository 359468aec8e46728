"""The canonical event vocabulary: what providers yield and surfaces encode.

    providers/<vendor> -> events -> surfaces/<surface>_codec.encode_stream

Names follow the AI SDK stream parts (`<noun>-<verb>`); events are small
immutable objects. `provider_metadata` carries data that must round-trip
unchanged (Anthropic thinking signatures, Gemini thought signatures).
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from ..errors import ProxyError


@dataclass(slots=True, frozen=True)
class ResponseMetadata:
    id: str | None = None
    model: str | None = None
    created: int | None = None
    type: ClassVar[str] = "response-metadata"


@dataclass(slots=True, frozen=True)
class TextStart:
    id: str
    type: ClassVar[str] = "text-start"


@dataclass(slots=True, frozen=True)
class TextDelta:
    id: str
    delta: str
    type: ClassVar[str] = "text-delta"


@dataclass(slots=True, frozen=True)
class TextEnd:
    id: str
    type: ClassVar[str] = "text-end"


@dataclass(slots=True, frozen=True)
class ReasoningStart:
    id: str
    provider_metadata: Mapping[str, Any] | None = None
    type: ClassVar[str] = "reasoning-start"


@dataclass(slots=True, frozen=True)
class ReasoningDelta:
    id: str
    delta: str
    type: ClassVar[str] = "reasoning-delta"


@dataclass(slots=True, frozen=True)
class ReasoningEnd:
    """End of a reasoning block; `provider_metadata` holds e.g. its signature."""

    id: str
    provider_metadata: Mapping[str, Any] | None = None
    type: ClassVar[str] = "reasoning-end"


@dataclass(slots=True, frozen=True)
class ToolInputStart:
    id: str
    name: str
    type: ClassVar[str] = "tool-input-start"


@dataclass(slots=True, frozen=True)
class ToolInputDelta:
    id: str
    delta: str
    type: ClassVar[str] = "tool-input-delta"


@dataclass(slots=True, frozen=True)
class ToolInputEnd:
    id: str
    type: ClassVar[str] = "tool-input-end"


@dataclass(slots=True, frozen=True)
class ToolCall:
    """A complete tool call; `input` is JSON text (`{}` when empty)."""

    id: str
    name: str
    input: str
    provider_metadata: Mapping[str, Any] | None = None
    type: ClassVar[str] = "tool-call"


@dataclass(slots=True, frozen=True)
class File:
    """Generated media: `url` is an http(s) or data URL."""

    media_type: str
    url: str
    type: ClassVar[str] = "file"


@dataclass(slots=True, frozen=True)
class Source:
    url: str
    title: str | None = None
    id: str | None = None
    type: ClassVar[str] = "source"


@dataclass(slots=True, frozen=True)
class PlanStep:
    id: str
    title: str
    status: str  # pending | running | completed (the Workbench vocabulary)


@dataclass(slots=True, frozen=True)
class PlanUpdate:
    """Defines or replaces the whole plan."""

    current_task_id: str
    steps: tuple[PlanStep, ...]
    type: ClassVar[str] = "plan-update"


@dataclass(slots=True, frozen=True)
class TodoUpdate:
    """Updates the status of existing steps, by id."""

    items: tuple[PlanStep, ...]
    type: ClassVar[str] = "todo-update"


@dataclass(slots=True, frozen=True)
class Usage:
    """Final totals for one response (never running totals)."""

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int | None = None
    cached_input_tokens: int | None = None
    type: ClassVar[str] = "usage"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


FINISH_REASONS = ("stop", "length", "content-filter", "tool-calls", "error", "other")


@dataclass(slots=True, frozen=True)
class Finish:
    unified: str = "stop"
    raw: str | None = None
    type: ClassVar[str] = "finish"


@dataclass(slots=True, frozen=True)
class Error:
    """A failure after the stream started; the stream ends after it."""

    error: ProxyError
    type: ClassVar[str] = "error"


Event = (
    ResponseMetadata | TextStart | TextDelta | TextEnd | ReasoningStart | ReasoningDelta
    | ReasoningEnd | ToolInputStart | ToolInputDelta | ToolInputEnd | ToolCall | File | Source
    | PlanUpdate | TodoUpdate | Usage | Finish | Error
)

# Events that mean the client has started receiving an answer: after one of
# these was delivered, retries and fallbacks are no longer allowed.
CONTENT_EVENTS = (TextDelta, ReasoningDelta, ToolInputStart, ToolCall, File, PlanUpdate, TodoUpdate)
