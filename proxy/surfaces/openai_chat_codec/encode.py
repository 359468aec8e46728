"""Encoding canonical events as Chat Completions output (docs/openai-chat.md, "Streaming" and "Errors"): pure.

    canonical events -> encode_stream -> `chat.completion.chunk` SSE frames ... `data: [DONE]`
    ChatResult       -> encode_result -> one `chat.completion` object
    ProxyError       -> error_body    -> {"error": {message, type, param, code}}

A stream goes: a role chunk, content / reasoning / tool-call deltas, one
finishing chunk (`delta: {}` and the finish reason), the usage chunk
(`choices: []`) when `stream_options.include_usage` asked for it, then
`data: [DONE]`. A failure after the first byte is one `data: {"error": ...}`
event (the official SDKs raise APIError on it) and the stream ends there,
without `[DONE]`: a cut answer is never passed off as complete.

Renderings this surface chooses:
- reasoning: `delta.reasoning_content` (default), `delta.reasoning`, or the AI
  Workbench example's `delta: {"content", "type": "thinking"}` (`workbench`);
- signed reasoning (Anthropic thinking signatures, redacted thinking) also
  goes out as LiteLLM's `thinking_blocks` (thinking_blocks.py) so clients can
  send it back in a tool loop;
- generated files become Markdown in the content (`![Generated image](url)`,
  `[Download file](url)` for other media);
- cited sources become a Perplexity-style top-level `citations` list of URLs
  on the finishing chunk and on the completion;
- plan and todo updates have no OpenAI form and are left out.

Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from ... import sse
from ...canonical import ChatResult, Event, Usage
from ...errors import ProxyError
from ..markdown import file_markdown
from .decode import EncodeOptions
from .thinking_blocks import FIELD as THINKING_BLOCKS
from .thinking_blocks import thinking_block, thinking_blocks

# canonical unified finish reason -> OpenAI finish_reason
FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "content-filter": "content_filter",
    "tool-calls": "tool_calls",
    "error": "stop",
    "other": "stop",
}


@dataclass(slots=True, frozen=True)
class Completion:
    """What stays the same on every chunk of one answer."""

    id: str
    model: str
    created: int


def error_body(error: ProxyError) -> dict:
    return {"error": error.to_dict()}


def finish_reason(unified: str, called_tools: bool) -> str:
    reason = FINISH_REASONS.get(unified, "stop")
    # Some providers say "stop" after a tool call; OpenAI clients look for
    # "tool_calls" to run the tools.
    return "tool_calls" if called_tools and reason == "stop" else reason


def usage_object(usage: Usage) -> dict:
    body: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_input_tokens is not None:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cached_input_tokens}
    if usage.reasoning_tokens is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


def encode_stream(events: Iterable[Event], completion: Completion, options: EncodeOptions) -> Iterator[bytes]:
    """SSE frames for a streamed answer (events come through streaming.guard)."""
    header = {"id": completion.id, "object": "chat.completion.chunk", "created": completion.created,
              "model": completion.model}
    # Every chunk shares its opening and closing bytes: encode them once.
    head = sse.dumps(header)[:-1] + b',"choices":[{"index":0,"delta":'
    tail = b',"logprobs":null,"finish_reason":null}]' + (b',"usage":null}' if options.include_usage else b"}")

    def chunk(delta: dict) -> bytes:
        return sse.encode(head + sse.dumps(delta) + tail)

    thinking = options.thinking
    started = False
    tools: dict[str, list] = {}  # canonical tool call id -> [index, arguments streamed?]
    sources: list[str] = []
    usage: Usage | None = None
    reasoning: list[str] = []  # the open reasoning block's text, for its thinking_blocks entry
    reasoning_metadata = None
    signed_blocks = 0
    for event in events:
        kind = event.type
        if not started and kind in ("text-delta", "reasoning-delta", "tool-input-start", "tool-call", "file", "finish"):
            started = True
            first_is_tool = kind in ("tool-input-start", "tool-call")
            yield chunk({"role": "assistant", "content": None if first_is_tool else ""})
        if kind == "text-delta":
            if event.delta:
                yield chunk({"content": event.delta})
        elif kind == "reasoning-delta":
            if not event.delta:
                continue
            reasoning.append(event.delta)
            if thinking == "workbench":
                yield chunk({"content": event.delta, "type": "thinking"})
            else:
                yield chunk({thinking: event.delta})
        elif kind == "reasoning-start":
            reasoning = []
            reasoning_metadata = event.provider_metadata  # redacted thinking has it from the start
        elif kind == "reasoning-end":
            block = thinking_block(event.provider_metadata or reasoning_metadata, "".join(reasoning))
            reasoning = []
            if block is not None:
                if not started:  # redacted thinking can come before any delta
                    started = True
                    yield chunk({"role": "assistant", "content": ""})
                # whole, with an index: the openai SDK merges indexed lists across chunks
                yield chunk({THINKING_BLOCKS: [{"index": signed_blocks, **block}]})
                signed_blocks += 1
        elif kind == "tool-input-start":
            index = len(tools)
            tools[event.id] = [index, False]
            yield chunk({"tool_calls": [{"index": index, "id": event.id, "type": "function",
                                         "function": {"name": event.name, "arguments": ""}}]})
        elif kind == "tool-input-delta":
            state = tools.get(event.id)
            if state is not None and event.delta:
                state[1] = True
                yield chunk({"tool_calls": [{"index": state[0], "function": {"arguments": event.delta}}]})
        elif kind == "tool-call":
            state = tools.get(event.id)
            if state is None:  # a provider that only reports whole calls
                tools[event.id] = [len(tools), True]
                yield chunk({"tool_calls": [{"index": len(tools) - 1, "id": event.id, "type": "function",
                                             "function": {"name": event.name, "arguments": event.input}}]})
            elif not state[1]:  # started but no argument fragments: send them whole
                state[1] = True
                yield chunk({"tool_calls": [{"index": state[0], "function": {"arguments": event.input}}]})
        elif kind == "file":
            yield chunk({"content": file_markdown(event.media_type, event.url)})
        elif kind == "source":
            sources.append(event.url)
        elif kind == "usage":
            usage = event
        elif kind == "finish":
            final = {**header, "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                            "finish_reason": finish_reason(event.unified, bool(tools))}]}
            if options.include_usage:
                final["usage"] = None
            if sources:
                final["citations"] = sources
            yield sse.encode_json(final)
            if options.include_usage and usage is not None:
                yield sse.encode_json({**header, "choices": [], "usage": usage_object(usage)})
            yield sse.DONE
            return
        elif kind == "error":
            yield sse.encode_json(error_body(event.error))
            return


def encode_result(result: ChatResult, completion: Completion, options: EncodeOptions) -> dict:
    """The `chat.completion` object for a non-streaming request."""
    text = result.text + "".join(file_markdown(f.media_type, f.url) for f in result.files)
    calls = result.tool_calls
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None,
                               "refusal": None, "annotations": []}
    reasoning = result.reasoning
    if reasoning:
        # the Workbench variant is a streaming form; a whole message uses the field
        message["reasoning" if options.thinking == "reasoning" else "reasoning_content"] = reasoning
    blocks = thinking_blocks(result.parts)
    if blocks:
        message[THINKING_BLOCKS] = blocks
    if calls:
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in calls
        ]
    unified = result.finish.unified if result.finish else "stop"
    body: dict[str, Any] = {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason(unified, bool(calls))}],
    }
    if result.usage is not None:
        body["usage"] = usage_object(result.usage)
    if result.sources:
        body["citations"] = [source.url for source in result.sources]
    return body
