"""The fake Coze's constants and wire framing (tests/fakes/coze.py serves them).

    bot / workflow ids -> behaviours; answer texts tests can predict;
    chat_event (no space after the colons, quoted "[DONE]"), workflow_event (id: lines, spaces)
"""
from __future__ import annotations

import json
from typing import Any

from .upstream import Reply, transcript

KEY = "pat_fake0123456789abcdefCOZE"
BASE_ID = 7382159487131697202  # Coze ids: 19-digit numeric strings

# bot id -> behaviour
PLAIN_BOT = "7379462189365198898"
REASONING_BOT = "7502231907154296870"
PLUGIN_BOT = "7379462189365190001"  # function_call + tool_response + answer, follow_ups, knowledge
CARD_BOT = "7379462189365190002"  # two answer messages, the second a card without deltas
LOCAL_PLUGIN_BOT = "7372825967855173676"  # requires_action, then submit_tool_outputs
FAILING_BOT = "7379462189365190003"  # answers a little, then conversation.chat.failed
ERROR_BOT = "7379462189365190004"  # event:error mid-stream
CUT_BOT = "7379462189365190005"  # the stream stops without done
SLOW_BOT = "7379462189365190006"  # paced deltas (disconnects, serialisation)
RATE_LIMITED_BOT = "7379462189365190007"  # HTTP 200 {"code":4013}
BOTS = {
    PLAIN_BOT: "plain", REASONING_BOT: "reasoning", PLUGIN_BOT: "plugin", CARD_BOT: "card",
    LOCAL_PLUGIN_BOT: "local_plugin", FAILING_BOT: "failed", ERROR_BOT: "error", CUT_BOT: "cut",
    SLOW_BOT: "slow", RATE_LIMITED_BOT: "rate_limited",
}

# workflow id -> behaviour
OUTPUT_WORKFLOW = "7366468917055100001"  # output node streams, then the end node repeats it as JSON
END_WORKFLOW = "7366468917055100002"  # end node only: {"output": ...} JSON in a string
INTERRUPT_WORKFLOW = "7366468917055100003"  # question node: Interrupt, then resume
ERROR_WORKFLOW = "7366468917055100004"  # Error event
UNPUBLISHED_WORKFLOW = "7366468917055100005"  # HTTP 200 {"code":4200}
WORKFLOWS = {
    OUTPUT_WORKFLOW: "output", END_WORKFLOW: "end", INTERRUPT_WORKFLOW: "interrupt",
    ERROR_WORKFLOW: "error", UNPUBLISHED_WORKFLOW: "unpublished",
}
INTERRUPT_QUESTION = "Which city, and which day?"

CHAT_STREAMS = ("/v3/chat", "/v3/chat/submit_tool_outputs", "/v1/workflow/stream_run", "/v1/workflow/stream_resume")


def answer_text(question: str, turn: int) -> str:
    """What the fake bots say: the question and how many user turns Coze saw."""
    return f"You asked: {question} (turn {turn})"


def workflow_text(value: str) -> str:
    return f"Workflow result for {value}"


def chat_event(name: str, data: Any) -> bytes:
    """One /v3/chat event exactly as Coze frames it: no space after the colons."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event:{name}\ndata:{payload}\n\n".encode()


def workflow_event(number: int, name: str, data: Any) -> bytes:
    """One workflow event: `id:` line, and spaces after the colons."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {number}\nevent: {name}\ndata: {payload}\n\n".encode()


DONE = chat_event("done", '"[DONE]"')


def sse(name: str, **kwargs: Any) -> Reply:
    """A scripted reply replaying tests/transcripts/coze/<name>."""
    return Reply.sse(transcript("coze", name), **kwargs)
