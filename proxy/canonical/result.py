"""Folding a canonical event stream into one result (the non-streaming path).

    events -> Accumulator / accumulate() -> ChatResult -> surfaces encode_result

Also used by recorders that must keep whatever a stream produced, even when
it was cut short. Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..errors import ProxyError, UpstreamError
from .events import Event, File, Finish, PlanUpdate, Source, TodoUpdate, Usage
from .request import Message, Part, ReasoningPart, TextPart, ToolCallPart


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
    def complete(self) -> bool:
        return self.finish is not None and self.error is None

    def message(self) -> Message:
        """The assistant turn to send back on the next request."""
        return Message("assistant", tuple(self.parts))

    @property
    def reasoning(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, ReasoningPart))

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if isinstance(p, ToolCallPart)]


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
