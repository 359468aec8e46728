"""The canonical model in the middle of every flow.

Surfaces decode client requests into a `ChatRequest`; providers turn it into
upstream calls and yield the canonical events defined here; surfaces encode
those events into their own wire format. Non-streaming responses fold the same
events with `accumulate()`.

Pure: imports neither flask nor requests (tests/test_purity.py checks it).
Event names follow the AI SDK stream parts (`<noun>-<verb>`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Mapping

from .errors import ProxyError, UpstreamError

# --------------------------------------------------------------------------
# Request side: messages and their parts
# --------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class TextPart:
    text: str
    type: ClassVar[str] = "text"


@dataclass(slots=True, frozen=True)
class ImagePart:
    """An image by `http(s)://` URL or `data:` URL."""

    url: str
    media_type: str | None = None
    detail: str | None = None
    type: ClassVar[str] = "image"

    @property
    def is_data_url(self) -> bool:
        return self.url.startswith("data:")

    def data(self) -> tuple[str, str]:
        """(media_type, base64 payload) of a data URL; ValueError otherwise."""
        return split_data_url(self.url)


@dataclass(slots=True, frozen=True)
class ReasoningPart:
    """Reasoning an assistant produced earlier, sent back on the next turn.

    `provider_metadata` carries what must round-trip unchanged (Anthropic
    thinking signatures, redacted thinking, Gemini thought signatures).
    """

    text: str
    provider_metadata: Mapping[str, Any] | None = None
    type: ClassVar[str] = "reasoning"


@dataclass(slots=True, frozen=True)
class ToolCallPart:
    """An assistant's request to call a tool; `arguments` is JSON text."""

    id: str
    name: str
    arguments: str
    provider_metadata: Mapping[str, Any] | None = None
    type: ClassVar[str] = "tool-call"


@dataclass(slots=True, frozen=True)
class ToolResultPart:
    """The result of a tool call, sent back by the client."""

    tool_call_id: str
    content: str
    name: str | None = None
    is_error: bool = False
    type: ClassVar[str] = "tool-result"


Part = TextPart | ImagePart | ReasoningPart | ToolCallPart | ToolResultPart

ROLES = ("system", "user", "assistant", "tool")


@dataclass(slots=True, frozen=True)
class Message:
    role: str
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        """The concatenated text parts (what text-only code paths need)."""
        return "".join(part.text for part in self.parts if isinstance(part, TextPart))

    @property
    def is_text_only(self) -> bool:
        return all(isinstance(part, TextPart) for part in self.parts)


@dataclass(slots=True, frozen=True)
class Tool:
    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(slots=True)
class ChatRequest:
    """What every surface decodes into and every provider consumes.

    `tool_choice` is "auto", "none", "required", or {"name": tool name}.
    `extra` carries provider-specific fields a client asked to pass through.
    `server_url` is how clients reach this server (for links the demo serves).
    """

    model: str
    messages: list[Message]
    stream: bool = True
    tools: list[Tool] = field(default_factory=list)
    tool_choice: str | dict | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    response_format: Mapping[str, Any] | None = None
    reasoning_effort: str | None = None
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    server_url: str | None = None

    @property
    def system_text(self) -> str:
        """All system messages joined: for providers with one system slot."""
        return "\n\n".join(m.text for m in self.messages if m.role == "system")

    @property
    def last_user_message(self) -> Message | None:
        for message in reversed(self.messages):
            if message.role == "user":
                return message
        return None


def split_data_url(url: str) -> tuple[str, str]:
    """`data:image/png;base64,AAAA` -> ("image/png", "AAAA")."""
    if not url.startswith("data:") or "," not in url:
        raise ValueError("not a data URL")
    header, payload = url[5:].split(",", 1)
    media_type, _, encoding = header.partition(";")
    if encoding != "base64":
        raise ValueError("only base64 data URLs are supported")
    return media_type or "application/octet-stream", payload


# --------------------------------------------------------------------------
# Response side: canonical events
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Folding a stream into one result (the non-streaming path)
# --------------------------------------------------------------------------


@dataclass(slots=True)
class ChatResult:
    """Everything a stream said, folded; `parts` keeps the order of output."""

    id: str | None = None
    model: str | None = None
    created: int | None = None
    parts: list[Part] = field(default_factory=list)
    files: list[File] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    plan: PlanUpdate | None = None
    usage: Usage | None = None
    finish: Finish | None = None
    error: ProxyError | None = None

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def reasoning(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, ReasoningPart))

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if isinstance(p, ToolCallPart)]

    @property
    def complete(self) -> bool:
        return self.finish is not None and self.error is None

    def message(self) -> Message:
        return Message("assistant", tuple(self.parts))


class Accumulator:
    """Folds events one at a time; used by accumulate() and by recorders
    that must keep whatever a stream produced even if it is cut short."""

    __slots__ = ("result", "_text", "_reasoning", "_reasoning_meta")

    def __init__(self) -> None:
        self.result = ChatResult()
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._reasoning_meta: Mapping[str, Any] | None = None

    def add(self, event: Event) -> None:
        kind = event.type
        if kind == "text-delta":
            if self._reasoning:
                self._flush_reasoning()
            self._text.append(event.delta)
        elif kind == "reasoning-delta":
            if self._text:
                self._flush_text()
            self._reasoning.append(event.delta)
        elif kind == "reasoning-start":
            self._flush_text()
            self._reasoning_meta = event.provider_metadata
        elif kind == "reasoning-end":
            if event.provider_metadata is not None:
                self._reasoning_meta = event.provider_metadata
            self._flush_reasoning(force=self._reasoning_meta is not None)
        elif kind == "text-end":
            self._flush_text()
        elif kind == "tool-call":
            self._flush()
            self.result.parts.append(ToolCallPart(event.id, event.name, event.input, event.provider_metadata))
        elif kind == "response-metadata":
            result = self.result
            result.id = event.id or result.id
            result.model = event.model or result.model
            result.created = event.created or result.created
        elif kind == "file":
            self.result.files.append(event)
        elif kind == "source":
            self.result.sources.append(event)
        elif kind == "plan-update":
            self.result.plan = event
        elif kind == "todo-update":
            self._apply_todo(event)
        elif kind == "usage":
            self.result.usage = event
        elif kind == "finish":
            self._flush()
            self.result.finish = event
        elif kind == "error":
            self._flush()
            self.result.error = event.error

    def _apply_todo(self, event: TodoUpdate) -> None:
        plan = self.result.plan
        if plan is None:
            self.result.plan = PlanUpdate(event.items[0].id if event.items else "", tuple(event.items))
            return
        updates = {item.id: item for item in event.items}
        steps = tuple(updates.pop(step.id, step) for step in plan.steps) + tuple(updates.values())
        self.result.plan = PlanUpdate(plan.current_task_id, steps)

    def _flush_text(self) -> None:
        if self._text:
            self.result.parts.append(TextPart("".join(self._text)))
            self._text = []

    def _flush_reasoning(self, force: bool = False) -> None:
        if self._reasoning or force:
            self.result.parts.append(ReasoningPart("".join(self._reasoning), self._reasoning_meta))
            self._reasoning = []
            self._reasoning_meta = None

    def _flush(self) -> ChatResult:
        self._flush_text()
        self._flush_reasoning()
        return self.result

    def finish(self) -> ChatResult:
        """The result so far (call once the stream ended or was cut)."""
        return self._flush()


def accumulate(events: Iterable[Event]) -> ChatResult:
    """Fold a whole stream; raises the stream's error instead of returning it."""
    accumulator = Accumulator()
    for event in events:
        accumulator.add(event)
        if event.type == "error":
            raise event.error
    result = accumulator.finish()
    if result.finish is None:
        raise UpstreamError("the upstream stream ended without finishing", code="stream_incomplete")
    return result
