"""Fake upstreams that hold the demo models' conversation in each vendor's own wire format.

    SDK -> Switchboard /v1/chat/completions -> provider -> FakeUpstream(default=<vendor>_responder)
        responder: read the vendor request -> Turn -> demo_answer(turn) -> vendor bytes

The cross-provider SDK tests (tests/test_openai_sdk.py) run the same
conversation through the demo provider and through each provider's fake, and
expect the same SDK results. So these fakes answer like the demo models do
(the same texts, the same tool call, the same reasoning), but every byte is
the vendor's: the events are the transcripts of tests/transcripts/<vendor>/
with their content swapped, non-streaming bodies likewise, and mid-stream
failures are the vendor's own error transcripts replayed as they are.

Upstream model names (the part after `vendor/`):
    chat   -> the `mock` text            tools  -> get_weather({"city": prompt}), then quotes the result
    think  -> reasoning, then an answer  broken -> the vendor's mid-stream error transcript
    auto   -> like the demo `mock`: calls the first declared tool (unless tool choice is none) with
              its required arguments filled in, quotes a tool result, else the `mock` text
any other name -> the vendor's 404 for an unknown model.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Callable

from . import anthropic as anthropic_fake
from . import gemini as gemini_fake
from . import openai as openai_fake
from .upstream import Received, Reply, split_events, transcript

# The demo models' texts (proxy/providers/demo.py), which every fake repeats.
REASONING = ["Analyzing the request...\n", "Identifying key concepts...\n"]


def mock_text(prompt: str) -> str:
    return f"This is a response from the mock model. I received your message: {prompt}"


def reflection_text(prompt: str) -> str:
    return f"After deep reflection, I have concluded that {prompt} is indeed interesting."


def quote_text(tool: str, result: str) -> str:
    return f"The tool {tool} returned: {result}"


@dataclass
class Turn:
    """What a fake reads from one vendor request."""

    model: str
    stream: bool
    prompt: str  # the last user text
    tool_result: tuple[str, str] | None = None  # (tool name, result text) when the last turn returns one
    # (name, required argument names) of the tools the model may call (none when tool choice is none)
    tools: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass
class Answer:
    text: str = ""
    reasoning: tuple[str, ...] = ()
    call: tuple[str, dict] | None = None  # (name, arguments)


def demo_answer(turn: Turn) -> Answer | None:
    """The demo models' behaviour; None for a model the fake does not serve."""
    if turn.model == "chat":
        return Answer(mock_text(turn.prompt))
    if turn.model == "think":
        return Answer(reflection_text(turn.prompt), reasoning=tuple(REASONING))
    if turn.model == "auto":
        if turn.tool_result:
            return Answer(quote_text(*turn.tool_result))
        if turn.tools:
            name, required = turn.tools[0]
            return Answer(call=(name, {argument: turn.prompt for argument in required}))
        return Answer(mock_text(turn.prompt))
    if turn.model == "tools":
        if turn.tool_result:
            return Answer(quote_text(*turn.tool_result))
        return Answer(call=("get_weather", {"city": turn.prompt}))
    return None


def pieces(text: str) -> list[str]:
    """Stream text word by word, as upstreams do."""
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + [words[-1]]


def argument_fragments(arguments: dict) -> list[str]:
    encoded = json.dumps(arguments)
    return [encoded[:2], encoded[2:10], encoded[10:]]


def template(vendor: str, name: str) -> list[tuple[str | None, dict]]:
    """A transcript's events as (event name, data object), to copy and fill."""
    out = []
    for raw in split_events(transcript(vendor, name)):
        event, data = None, None
        for line in raw.decode().splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and line[5:].strip() != "[DONE]":
                data = json.loads(line[5:])
        if data is not None:
            out.append((event, data))
    return out


def sse(events: list[tuple[str | None, Any]], done: bool = False) -> bytes:
    lines = []
    for event, data in events:
        head = f"event: {event}\n" if event else ""
        lines.append(f"{head}data: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n")
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def filled(obj: dict, **changes: Any) -> dict:
    out = copy.deepcopy(obj)
    out.update(changes)
    return out


# -- OpenAI Chat Completions ----------------------------------------------------


def openai_turn(received: Received) -> Turn:
    body = received.json
    messages = body["messages"]
    calls = {c["id"]: c["function"]["name"] for m in messages for c in m.get("tool_calls") or ()}
    last = messages[-1]
    turn = Turn(body["model"], bool(body.get("stream")), _openai_text(last_of(messages, "user")))
    if body.get("tool_choice") != "none":
        turn.tools = tuple((t["function"]["name"], _required(t["function"].get("parameters")))
                           for t in body.get("tools") or ())
    if last["role"] == "tool":
        turn.tool_result = (calls.get(last["tool_call_id"], "?"), _openai_text(last))
    return turn


def _required(schema: dict | None) -> tuple[str, ...]:
    return tuple((schema or {}).get("required") or ())


def last_of(messages: list[dict], role: str) -> dict:
    return next((m for m in reversed(messages) if m.get("role") == role), {})


def _openai_text(message: dict) -> str:
    content = message.get("content") or ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


def openai_stream(answer: Answer) -> bytes:
    (_, first), _, _, (_, finish), (_, usage) = template("openai", "text.sse")
    (_, call_start), (_, call_delta), *_ = template("openai", "tool_calls_parallel.sse")

    def chunk(delta: dict, base: dict = first) -> tuple[None, dict]:
        out = filled(base)
        out["choices"][0]["delta"] = delta
        return None, out

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": None, "reasoning_content": piece}) for piece in answer.reasoning]
    if answer.text:
        events += [chunk({"content": piece}) for piece in pieces(answer.text)]
    reason = "stop"
    if answer.call:
        name, arguments = answer.call
        start = filled(call_start["choices"][0]["delta"]["tool_calls"][0], function={"name": name, "arguments": ""})
        events.append(chunk({"tool_calls": [start]}, call_start))
        for fragment in argument_fragments(arguments):
            events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}, call_delta))
        reason = "tool_calls"
    end = filled(finish)
    end["choices"][0]["finish_reason"] = reason
    return sse(events + [(None, end), (None, usage)], done=True)


def openai_completion(answer: Answer) -> dict:
    body = json.loads(transcript("openai", "nonstream_text.json"))
    message = body["choices"][0]["message"]
    message["content"] = answer.text or None
    if answer.reasoning:
        message["reasoning_content"] = "".join(answer.reasoning)
    if answer.call:
        name, arguments = answer.call
        message["tool_calls"] = [{"id": "call_2Uzw0AEZQeOex2CP2TKjcLKc", "type": "function",
                                  "function": {"name": name, "arguments": json.dumps(arguments)}}]
        body["choices"][0]["finish_reason"] = "tool_calls"
    return body


def openai_responder(received: Received) -> Reply:
    if received.headers.get("Authorization") != f"Bearer {openai_fake.KEY}":
        return Reply.json(None, status=401, raw=transcript("openai", "error_invalid_api_key.json"))
    turn = openai_turn(received)
    if turn.model == "broken":
        return Reply.sse(transcript("openai", "midstream_error.sse"))
    answer = demo_answer(turn)
    if answer is None:
        return openai_fake.error(404, f"The model `{turn.model}` does not exist or you do not have access to it.",
                                 "invalid_request_error", "model_not_found")
    if turn.stream:
        return Reply.sse(openai_stream(answer))
    return Reply.json(openai_completion(answer))


# -- Anthropic Messages -----------------------------------------------------------


def anthropic_turn(received: Received) -> Turn:
    body = received.json
    messages = body["messages"]
    calls = {b["id"]: b["name"] for m in messages if isinstance(m["content"], list)
             for b in m["content"] if b.get("type") == "tool_use"}
    last = messages[-1]["content"]
    blocks = [{"type": "text", "text": last}] if isinstance(last, str) else last
    turn = Turn(body["model"], bool(body.get("stream")), "".join(b.get("text", "") for b in blocks if b["type"] == "text"))
    if (body.get("tool_choice") or {}).get("type") != "none":
        turn.tools = tuple((t["name"], _required(t.get("input_schema"))) for t in body.get("tools") or ())
    result = next((b for b in blocks if b["type"] == "tool_result"), None)
    if result is not None:
        content = result.get("content")
        text = content if isinstance(content, str) else "".join(b.get("text", "") for b in content or ())
        turn.tool_result = (calls.get(result["tool_use_id"], "?"), text)
    return turn


def anthropic_stream(answer: Answer) -> bytes:
    events = template("anthropic", "basic_text.sse")
    start, text_start, ping, text_delta, stop, message_delta, message_stop = (events[i] for i in (0, 1, 2, 3, 6, 7, 8))
    thinking = template("anthropic", "thinking_signature.sse")
    signature = thinking[5]
    tool = template("anthropic", "tool_use_input_json_delta.sse")
    tool_start, json_delta = tool[6], tool[7]

    out = [start]
    index = 0

    def block(opening: tuple, deltas: list[tuple]) -> None:
        nonlocal index
        for event, data in [opening, *deltas, stop]:
            out.append((event, filled(data, index=index) if "index" in data else data))  # not on pings
        index += 1

    def delta(base: tuple, **fields: Any) -> tuple:
        return base[0], filled(base[1], delta={**base[1]["delta"], **fields})

    if answer.reasoning:
        thinking_start = thinking[1]
        thinking_deltas = [delta(thinking[3], thinking=piece) for piece in answer.reasoning]
        block(thinking_start, thinking_deltas + [signature])
    if answer.text:
        block(text_start, [ping] + [delta(text_delta, text=piece) for piece in pieces(answer.text)])
    if answer.call:
        name, arguments = answer.call
        opening = (tool_start[0], filled(tool_start[1], content_block={**tool_start[1]["content_block"], "name": name}))
        block(opening, [delta(json_delta, partial_json=f) for f in argument_fragments(arguments)])
    final = filled(message_delta[1], delta={"stop_reason": "tool_use" if answer.call else "end_turn", "stop_sequence": None})
    return sse(out + [(message_delta[0], final), message_stop])


def anthropic_message(answer: Answer) -> dict:
    body = json.loads(transcript("anthropic", "message.json"))
    content = []
    if answer.reasoning:
        content.append({"type": "thinking", "thinking": "".join(answer.reasoning), "signature": "EqQBCgIYAhIM1gbcDa9GJw=="})
    if answer.text:
        content.append({"type": "text", "text": answer.text})
    if answer.call:
        name, arguments = answer.call
        content.append({"type": "tool_use", "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn", "name": name, "input": arguments})
    body["content"] = content
    body["stop_reason"] = "tool_use" if answer.call else "end_turn"
    return body


def anthropic_responder(received: Received) -> Reply:
    """Behind AnthropicUpstream, which has already checked key, version and body."""
    turn = anthropic_turn(received)
    if turn.model == "broken":
        return Reply.sse(transcript("anthropic", "overloaded_midstream.sse"))
    answer = demo_answer(turn)
    if answer is None:
        return anthropic_fake.error_reply(404, "not_found_error", f"model: {turn.model}")
    if turn.stream:
        return Reply.sse(anthropic_stream(answer))
    return Reply.json(anthropic_message(answer))


# -- Gemini generateContent -------------------------------------------------------


def gemini_turn(received: Received) -> Turn:
    route = gemini_fake.ROUTE.match(received.path)
    contents = received.json["contents"]
    parts = contents[-1]["parts"]
    users = [c for c in contents if c["role"] == "user" and any("text" in p for p in c["parts"])]
    prompt = "".join(p.get("text", "") for p in users[-1]["parts"]) if users else ""
    turn = Turn(route["model"], route["method"] == "streamGenerateContent", prompt)
    mode = ((received.json.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    if mode != "NONE":
        turn.tools = tuple((d["name"], _required(d.get("parameters") or d.get("parametersJsonSchema")))
                           for t in received.json.get("tools") or () for d in t.get("functionDeclarations") or ())
    response = next((p["functionResponse"] for p in parts if "functionResponse" in p), None)
    if response is not None:
        value = response["response"]
        turn.tool_result = (response["name"], value.get("result", json.dumps(value)))
    return turn


def gemini_candidates(answer: Answer) -> list[list[dict]]:
    """The answer as the parts of successive stream chunks."""
    chunks = [[{"text": piece, "thought": True}] for piece in answer.reasoning]
    chunks += [[{"text": piece}] for piece in pieces(answer.text)] if answer.text else []
    if answer.call:
        name, arguments = answer.call
        chunks.append([{"functionCall": {"name": name, "args": arguments}, "thoughtSignature": "CtwBAdHtim9..."}])
    return chunks


def gemini_stream(answer: Answer) -> bytes:
    (_, first), (_, last) = template("gemini", "plain_text.sse")
    chunks = gemini_candidates(answer)
    events = []
    for number, parts in enumerate(chunks):
        base = last if number == len(chunks) - 1 else first
        data = filled(base)
        data["candidates"][0]["content"]["parts"] = parts
        events.append((None, data))
    return sse(events)


def gemini_response(answer: Answer) -> dict:
    body = json.loads(transcript("gemini", "generate_content.json"))
    body["candidates"][0]["content"]["parts"] = [part for parts in gemini_candidates(answer) for part in parts]
    return body


def _gemini_answer(received: Received) -> Reply:
    turn = gemini_turn(received)
    if turn.model == "broken":
        return Reply.sse(transcript("gemini", "midstream_error.sse"))
    answer = demo_answer(turn)
    if answer is None:
        return gemini_fake.error_reply(404, "NOT_FOUND", f"models/{turn.model} is not found for API version v1beta, "
                                       "or is not supported for generateContent.")
    if turn.stream:
        return Reply.sse(gemini_stream(answer))
    return Reply.json(gemini_response(answer))


gemini_responder: Callable[[Received], Reply] = gemini_fake.gemini(_gemini_answer)
