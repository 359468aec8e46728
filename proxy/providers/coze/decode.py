"""Coze answers -> canonical events and errors (pure).

    SSEReader.events() of POST /v3/chat (or submit_tool_outputs)
        -> ChatDecoder.decode -> ResponseMetadata, reasoning / text / tool events, Usage, Finish | Error
    SSEReader.events() of POST /v1/workflow/stream_run (or stream_resume)
        -> WorkflowDecoder.decode -> text events, Usage, Finish | Error (+ .interrupt)
    (Coze's error codes, in a stream or a JSON envelope: errors.py)

The traps (docs/coze.md): `message.completed` repeats a streamed answer in
full (skipped), while an answer that never had deltas (a card) arrives only
there (emitted once); messages other than `answer` (function_call,
tool_response, knowledge, verbose, follow_up) are never text;
`requires_action` is the only tool call a client sees; usage comes from
`chat.completed`; `chat.failed` and `error` are in-band errors; a stream
that stops before its final status is an error. Workflow streams repeat the
output node's text in the end node's JSON (`{"output": ...}`), skipped when
text was already streamed.
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import orjson

from ...canonical import (
    Error,
    Event,
    Finish,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    ResponseMetadata,
    TextDelta,
    TextEnd,
    TextStart,
    ToolCall,
    ToolInputDelta,
    ToolInputEnd,
    ToolInputStart,
    Usage,
)
from ...errors import UpstreamError
from .errors import PROVIDER, coze_error, incomplete, malformed
from .request import tool_call_id


def _json(data: str) -> Any:
    try:
        return orjson.loads(data) if data else {}
    except orjson.JSONDecodeError:
        raise malformed(f"not JSON: {data[:200]!r}") from None


def _usage(usage: Any) -> Usage | None:
    """Coze counts: input_count -> input, output_count -> output (totals, final)."""
    if not isinstance(usage, dict):
        return None
    input_tokens = int(usage.get("input_count") or usage.get("input_tokens") or 0)
    output_tokens = int(usage.get("output_count") or usage.get("output_tokens") or 0)
    details = usage.get("output_tokens_details") or {}
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
    return Usage(input_tokens, output_tokens, details.get("reasoning_tokens"), cached)


# --------------------------------------------------------------------------
# /v3/chat streams
# --------------------------------------------------------------------------


class ChatDecoder:
    """Decodes one chat stream; `chat_id` / `conversation_id` stay readable
    (the provider cancels a chat it knows by them). `secret` signs the ids of
    tool calls (request.tool_call_id)."""

    def __init__(self, secret: str = "") -> None:
        self.secret = secret
        self.chat_id: str | None = None
        self.conversation_id: str | None = None
        self.finished = False
        self.streamed: set[str] = set()  # answer message ids that had content deltas
        self.reasoned: set[str] = set()  # ... that had reasoning deltas
        self.text_id: str | None = None
        self.reasoning_id: str | None = None
        self.usage: Usage | None = None
        self.follow_ups: list[str] = []

    def decode(self, events: Iterable[Any]) -> Iterator[Event]:
        for sse_event in events:
            name = sse_event.event
            if name == "done":
                # done after a final status is the normal end; a bare done
                # (chat-flow) is a clean end too
                yield from self._close()
                self.finished = True
                yield self.usage or Usage()
                yield Finish("stop", "done")
                return
            payload = _json(sse_event.data)
            if name == "conversation.message.delta":
                yield from self._delta(payload)
            elif name == "conversation.message.completed":
                yield from self._completed(payload)
            elif name in ("conversation.chat.created", "conversation.chat.in_progress"):
                metadata = self._chat(payload)
                if metadata is not None:
                    yield metadata
            elif name == "conversation.chat.completed":
                self._chat(payload)
                yield from self._close()
                self.finished = True
                yield _usage(payload.get("usage")) or Usage()
                yield Finish("stop", "completed")
                return
            elif name == "conversation.chat.requires_action":
                self._chat(payload)
                yield from self._close()
                yield from self._tool_calls(payload)
                self.finished = True
                yield Usage()
                yield Finish("tool-calls", "requires_action")
                return
            elif name == "conversation.chat.failed":
                yield from self._close()
                error = payload.get("last_error") or {}
                self.finished = True
                yield Error(coze_error(error.get("code"), error.get("msg") or "the chat failed"))
                return
            elif name == "conversation.chat.canceled":
                yield from self._close()
                self.finished = True
                yield Error(UpstreamError(f"{PROVIDER}: the chat was cancelled", code="cancelled", provider=PROVIDER,
                                          retryable=False))
                return
            elif name == "error":
                yield from self._close()
                self.finished = True
                code = payload.get("code") if isinstance(payload, dict) else None
                msg = payload.get("msg") if isinstance(payload, dict) else None
                yield Error(coze_error(code, msg or "error event without details"))
                return
            # conversation.audio.delta, unknown events: ignored (the SDKs map them to "unknown")
        raise incomplete("before the chat completed (no final status, no done)")

    def _chat(self, payload: dict) -> ResponseMetadata | None:
        first = self.chat_id is None
        self.chat_id = str(payload.get("id") or self.chat_id or "") or None
        self.conversation_id = str(payload.get("conversation_id") or self.conversation_id or "") or None
        return ResponseMetadata(id=self.chat_id) if first and self.chat_id else None

    def _delta(self, message: dict) -> Iterator[Event]:
        if message.get("type", "answer") != "answer":
            return
        message_id = str(message.get("id") or "answer")
        reasoning = message.get("reasoning_content")
        if reasoning:
            if self.text_id is not None:
                yield from self._close_text()
            if self.reasoning_id != message_id:
                yield from self._close_reasoning()
                self.reasoning_id = message_id
                yield ReasoningStart(f"{message_id}:reasoning")
            self.reasoned.add(message_id)
            yield ReasoningDelta(f"{message_id}:reasoning", reasoning)
        content = message.get("content")
        if content:
            yield from self._text(message_id, content)

    def _text(self, message_id: str, content: str) -> Iterator[Event]:
        yield from self._close_reasoning()
        if self.text_id != message_id:
            yield from self._close_text()
            self.text_id = message_id
            yield TextStart(message_id)
        self.streamed.add(message_id)
        yield TextDelta(message_id, content)

    def _completed(self, message: dict) -> Iterator[Event]:
        kind = message.get("type")
        if kind == "follow_up":
            self.follow_ups.append(str(message.get("content") or ""))
            return
        if kind != "answer":
            return  # function_call, tool_response, knowledge, verbose: never text
        message_id = str(message.get("id") or "answer")
        reasoning = message.get("reasoning_content")
        if reasoning and message_id not in self.reasoned and message_id not in self.streamed:
            yield from self._close_text()
            self.reasoned.add(message_id)
            yield ReasoningStart(f"{message_id}:reasoning")
            yield ReasoningDelta(f"{message_id}:reasoning", reasoning)
            yield ReasoningEnd(f"{message_id}:reasoning")
        if message_id in self.streamed:
            if self.text_id == message_id:
                yield from self._close_text()
            return  # the full text again: already sent as deltas
        content = message.get("content")
        if content:
            # an answer without deltas (cards: their JSON as is) is sent once
            yield from self._text(message_id, content if isinstance(content, str) else orjson.dumps(content).decode())
            yield from self._close_text()

    def _tool_calls(self, chat: dict) -> Iterator[Event]:
        action = chat.get("required_action") or {}
        calls = ((action.get("submit_tool_outputs") or {}).get("tool_calls")) or []
        for call in calls:
            function = call.get("function") or {}
            arguments = function.get("arguments")
            if not isinstance(arguments, str):
                arguments = orjson.dumps(arguments or {}).decode()
            call_id = tool_call_id(self.conversation_id or "0", self.chat_id or "0", str(call.get("id") or ""),
                                   self.secret)
            name = str(function.get("name") or call.get("type") or "reply_message")
            yield ToolInputStart(call_id, name)
            if arguments:
                yield ToolInputDelta(call_id, arguments)
            yield ToolInputEnd(call_id)
            yield ToolCall(call_id, name, arguments or "{}", {PROVIDER: {"conversation_id": self.conversation_id,
                                                                          "chat_id": self.chat_id}})

    def _close_text(self) -> Iterator[Event]:
        if self.text_id is not None:
            yield TextEnd(self.text_id)
            self.text_id = None

    def _close_reasoning(self) -> Iterator[Event]:
        if self.reasoning_id is not None:
            yield ReasoningEnd(f"{self.reasoning_id}:reasoning")
            self.reasoning_id = None

    def _close(self) -> Iterator[Event]:
        yield from self._close_reasoning()
        yield from self._close_text()


# --------------------------------------------------------------------------
# Workflow streams
# --------------------------------------------------------------------------


@dataclass(slots=True)
class Interrupt:
    event_id: str
    interrupt_type: int
    question: str
    node_title: str | None = None


def unwrap_output(content: str) -> str | None:
    """The text of an end node's JSON (`{"output": "..."}` -> "..."); None
    when `content` is not a JSON object (plain text from an output node)."""
    stripped = content.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("output"), str):
        return value["output"]
    strings = [v for v in value.values() if isinstance(v, str)]
    if len(value) == 1 and strings:
        return strings[0]
    return orjson.dumps(value).decode()  # several return variables: their JSON


class WorkflowDecoder:
    """Decodes one stream_run / stream_resume; `interrupt` is set when the
    workflow paused for the user, `failed` when it ended in an error."""

    TEXT_ID = "workflow"

    def __init__(self) -> None:
        self.started = False
        self.streamed = False
        self.text: list[str] = []
        self.usage: Usage | None = None
        self.interrupt: Interrupt | None = None
        self.failed = False
        self.error: str | None = None
        self.finished = False

    def decode(self, events: Iterable[Any]) -> Iterator[Event]:
        for sse_event in events:
            name = sse_event.event
            if name == "PING":
                continue
            payload = _json(sse_event.data)
            if not isinstance(payload, dict):
                payload = {}
            if name == "Message":
                yield from self._message(payload)
            elif name == "Interrupt":
                data = payload.get("interrupt_data") or {}
                question = "".join(self.text) or str(data.get("data") or "")
                if not self.text and question:
                    yield from self._emit(question)
                self.interrupt = Interrupt(str(data.get("event_id") or ""), int(data.get("type") or 0), question,
                                           payload.get("node_title"))
                yield from self._end()
                self.finished = True
                yield self.usage or Usage()
                yield Finish("stop", "interrupt")
                return
            elif name == "Error":
                yield from self._end()
                self.failed = self.finished = True
                error = coze_error(payload.get("error_code"), str(payload.get("error_message") or "the workflow failed"))
                self.error = error.message
                yield Error(error)
                return
            elif name == "Done":
                yield from self._end()
                self.finished = True
                yield self.usage or Usage()
                yield Finish("stop", "done")
                return
        raise incomplete("before the workflow was done (no Done event)")

    def _message(self, payload: dict) -> Iterator[Event]:
        usage = _usage(payload.get("usage"))
        if usage is not None:
            self.usage = usage
        content = payload.get("content")
        if not isinstance(content, str) or not content:
            return
        output = unwrap_output(content)
        if output is None:  # an output node's text piece
            yield from self._emit(content)
        elif not self.streamed:  # the end node's JSON: only when nothing else was said
            yield from self._emit(output)

    def _emit(self, text: str) -> Iterator[Event]:
        if not self.started:
            self.started = True
            yield TextStart(self.TEXT_ID)
        self.streamed = True
        self.text.append(text)
        yield TextDelta(self.TEXT_ID, text)

    def _end(self) -> Iterator[Event]:
        if self.started:
            self.started = False
            yield TextEnd(self.TEXT_ID)
