"""The built-in demo provider: deterministic models that need no key.

    router -> DemoProvider.open(request, route) -> UpstreamStream of scripted events

The first five reproduce the AI Workbench example server (docs/demo.md); `agent-demo` shows every Workbench event type (plan, todos, reasoning,
text); `tool-demo` calls the request's first tool (and quotes the result it
gets back), and so does `mock` when the request declares function tools;
a request's `max_tokens` cuts any demo answer short with a `length` finish; `error-demo` fails mid-stream with an in-band UpstreamError. Pauses are scaled by `Settings.demo_delay` (0 in tests: instant).
A cancelled stream stops at its next pause, and records when it stopped, so
tests can observe that a departed client stopped its provider.
"""
from __future__ import annotations

import collections
import json
import time
import uuid
from typing import Callable, Iterator

from ..canonical import (
    ChatRequest,
    Error,
    File,
    Finish,
    Message,
    PlanStep,
    PlanUpdate,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    ResponseMetadata,
    TextDelta,
    TextEnd,
    TextStart,
    TodoUpdate,
    Tool,
    ToolCall,
    ToolInputDelta,
    ToolInputEnd,
    ToolInputStart,
    ToolResultPart,
    Usage,
)
from ..errors import UpstreamError
from . import demo_images
from .base import ModelRoute, Provider, UpstreamStream, capabilities

# One scripted step: ("text" | "reasoning" | "plan" | "todo" | "image" | "tool-start" | "tool-delta"
# | "tool-end" | "fail", payload, pause before it)
Step = tuple[str, object, float]
Script = Callable[[ChatRequest, str], list[Step]]

TEXT_PAUSE = 0.05
THINK_PAUSE = 1.0

HTML_DOCUMENT = (
    "<!DOCTYPE html>\n<html>\n<body>\n<h1>Hello World</h1>\n"
    "<p>This is a hardcoded HTML document.</p>\n</body>\n</html>\n"
)


def _last(request: ChatRequest) -> Message | None:
    return request.messages[-1] if request.messages else None


def _last_text(request: ChatRequest) -> str | None:
    """The last message's text when it is text only (the example's `isText`)."""
    last = _last(request)
    return last.text if last is not None and last.is_text_only else None


def mock(request: ChatRequest, model_id: str) -> list[Step]:
    """Echoes the last message; with function tools (and tool_choice not
    "none") it calls one, and given tool results it answers with them, as
    tool-demo does: every surface's tool loop can be tried without a key."""
    if _trailing_tool_results(request) or (request.tools and request.tool_choice != "none"):
        return tool_demo(request, model_id)
    text = _last_text(request)
    return [
        ("text", "This is a response from the mock model. I received your message: ", TEXT_PAUSE),
        ("text", text if text is not None else "Multimedia content", TEXT_PAUSE),
    ]


def text_in_image_out(request: ChatRequest, _: str) -> list[Step]:
    return [
        ("text", "Here is your generated image:\n", TEXT_PAUSE),
        ("image", "sunset", TEXT_PAUSE),
    ]


def text_img_in_text_img_out(request: ChatRequest, _: str) -> list[Step]:
    text = _last_text(request)
    if text is not None and "get me an image" in text.lower():
        return [("text", "Here is the image you requested:\n", TEXT_PAUSE), ("image", "sunset", TEXT_PAUSE)]
    return [
        ("text", "I can process images and text. Try asking 'get me an image' or sending an image.", TEXT_PAUSE),
        ("text", "\n", TEXT_PAUSE),
        ("image", "mosaic", TEXT_PAUSE),
    ]


def reflection_and_thinking(request: ChatRequest, _: str) -> list[Step]:
    text = _last_text(request)
    return [
        ("reasoning", "Analyzing the request...\n", TEXT_PAUSE),
        ("reasoning", "Identifying key concepts...\n", THINK_PAUSE),
        ("text", "After deep reflection, I have concluded that ", THINK_PAUSE),
        ("text", text if text is not None else "this input", TEXT_PAUSE),
        ("text", " is indeed interesting.", TEXT_PAUSE),
    ]


def text_in_html_out(request: ChatRequest, _: str) -> list[Step]:
    return [
        ("text", "Here is the HTML document you requested:\n", TEXT_PAUSE),
        ("text", "```html\n", TEXT_PAUSE),
        ("text", HTML_DOCUMENT, TEXT_PAUSE),
        ("text", "```", TEXT_PAUSE),
    ]


def agent_demo(request: ChatRequest, _: str) -> list[Step]:
    subject = _last_text(request) or "your request"
    titles = ["Analyze request", "Gather facts", "Write answer"]

    def steps(*statuses: str) -> tuple[PlanStep, ...]:
        return tuple(PlanStep(f"step-{i + 1}", title, status) for i, (title, status) in enumerate(zip(titles, statuses, strict=True)))

    return [
        ("plan", PlanUpdate("task-1", steps("running", "pending", "pending")), TEXT_PAUSE),
        ("reasoning", f"The user asked about: {subject}\n", TEXT_PAUSE),
        ("reasoning", "I will break this into three steps.\n", THINK_PAUSE / 2),
        ("todo", TodoUpdate(steps("completed", "running", "pending")), THINK_PAUSE / 2),
        ("reasoning", "Collecting what I know...\n", THINK_PAUSE / 2),
        ("todo", TodoUpdate(steps("completed", "completed", "running")), THINK_PAUSE / 2),
        ("text", "Here is my answer about ", TEXT_PAUSE),
        ("text", subject, TEXT_PAUSE),
        ("text", ": every step of the plan is done.", TEXT_PAUSE),
        ("todo", TodoUpdate(steps("completed", "completed", "completed")), TEXT_PAUSE),
    ]


def tool_demo(request: ChatRequest, _: str) -> list[Step]:
    """A tool call to the first tool (or the one tool_choice names), its
    arguments streamed in fragments; given tool results, text quoting them."""
    results = _trailing_tool_results(request)
    if results:
        steps: list[Step] = []
        for number, result in enumerate(results):
            lead = "The tool" if number == 0 else "\nThe tool"
            steps.append(("text", f"{lead} {result.name or result.tool_call_id} returned: ", TEXT_PAUSE))
            steps.append(("text", result.content, TEXT_PAUSE))
        return steps
    if not request.tools or request.tool_choice == "none":
        return [("text", "tool-demo calls a tool when the request declares tools; this one declares none.", TEXT_PAUSE)]
    tool = request.tools[0]
    if isinstance(request.tool_choice, dict):
        tool = next((t for t in request.tools if t.name == request.tool_choice.get("name")), tool)
    user = request.last_user_message
    arguments = json.dumps(sample_arguments(tool, user.text if user else ""))
    call_id = f"call_{uuid.uuid4().hex[:24]}"
    size = max(1, -(-len(arguments) // 4))  # about four fragments
    fragments = [arguments[i:i + size] for i in range(0, len(arguments), size)]
    return (
        [("tool-start", (call_id, tool.name), TEXT_PAUSE)]
        + [("tool-delta", (call_id, fragment), TEXT_PAUSE) for fragment in fragments]
        + [("tool-end", (call_id, tool.name, arguments), TEXT_PAUSE)]
    )


def _trailing_tool_results(request: ChatRequest) -> list[ToolResultPart]:
    results: list[ToolResultPart] = []
    for message in reversed(request.messages):
        if message.role != "tool":
            break
        results[:0] = [p for p in message.parts if isinstance(p, ToolResultPart)]
    return results


def sample_arguments(tool: Tool, text: str) -> dict:
    """A JSON object for the tool's declared parameters, filled from `text`.
    Any schema a client sends is accepted: what is malformed is skipped."""
    properties = tool.parameters.get("properties") if isinstance(tool.parameters, dict) else None
    return _sample(tool.parameters, text, 0) if isinstance(properties, dict) and properties else {}


def _sample(schema: object, text: str, depth: int) -> object:
    if not isinstance(schema, dict) or depth > 16:
        return text
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    properties = schema.get("properties")
    if kind == "object" or isinstance(properties, dict):
        return {str(name): _sample(sub, text, depth + 1)
                for name, sub in (properties if isinstance(properties, dict) else {}).items()}
    if kind == "array":
        return [_sample(schema.get("items"), text, depth + 1)]
    if kind in ("integer", "number"):
        return len(text.split())
    if kind == "boolean":
        return True
    return text


def error_demo(request: ChatRequest, _: str) -> list[Step]:
    return [
        ("text", "This answer starts well, ", TEXT_PAUSE),
        ("text", "and then the upstream fails.", TEXT_PAUSE),
        ("fail", "error-demo: the upstream failed in the middle of the answer (simulated)", TEXT_PAUSE),
    ]


# model id -> (script, capabilities beyond the defaults, description)
MODELS: dict[str, tuple[Script, dict[str, bool]]] = {
    "mock": (mock, {}),
    "text-in-image-out": (text_in_image_out, {"imageOutput": True}),
    "text-img-in-text-img-out": (text_img_in_text_img_out, {"imageInput": True, "imageOutput": True}),
    "reflection-and-thinking": (reflection_and_thinking, {"thinking": True}),
    "text-in-html-out": (text_in_html_out, {}),
    "agent-demo": (agent_demo, {"thinking": True}),
    "tool-demo": (tool_demo, {}),
    "error-demo": (error_demo, {}),
}

CREATED = 1_767_225_600  # 2026-01-01, fixed so /v1/models is stable


def estimate_tokens(text: str) -> int:
    """About four characters a token: the demo has no tokenizer."""
    return max(1, (len(text) + 3) // 4) if text else 0


class DemoProvider(Provider):
    name = "demo"

    def __init__(self, credentials, settings, store=None) -> None:
        super().__init__(credentials, settings, store)
        # The last streams opened, so tests can watch a cancelled one stop.
        self.recent: collections.deque[UpstreamStream] = collections.deque(maxlen=64)

    @classmethod
    def usable(cls, credentials) -> bool:
        return True  # no key: the answers are made up here

    def models(self) -> list[ModelRoute]:
        return [
            ModelRoute(model_id, self.name, model_id, "switchboard-demo", capabilities(extra), CREATED)
            for model_id, (_, extra) in MODELS.items()
        ]

    def open(self, request: ChatRequest, route: ModelRoute) -> UpstreamStream:
        script, _ = MODELS[route.upstream_model]
        steps = script(request, route.id)
        stream = UpstreamStream(())
        stream._events = self._play(request, route, steps, stream)
        self.recent.append(stream)
        return stream

    def _play(self, request: ChatRequest, route: ModelRoute, steps: list[Step], stream: UpstreamStream) -> Iterator:
        try:
            yield from self._events(request, route, steps, stream)
        finally:
            stream.finished_at = time.monotonic()

    def _events(self, request: ChatRequest, route: ModelRoute, steps: list[Step], stream: UpstreamStream) -> Iterator:
        scale = self.settings.demo_delay
        cancelled = stream.cancelled
        yield ResponseMetadata(f"demo-{id(stream):x}", route.id, int(time.time()))
        open_block = None  # ("text" | "reasoning", block id) of the block currently open
        blocks = 0
        produced: list[str] = []
        called_tools = False
        limit = request.max_tokens
        for kind, payload, pause in steps:
            if limit is not None and kind in ("text", "reasoning") and estimate_tokens("".join(produced)) >= limit:
                if open_block:
                    yield _end(open_block)
                prompt = "".join(message.text for message in request.messages)
                yield Usage(estimate_tokens(prompt), estimate_tokens("".join(produced)))
                yield Finish("length", "max_tokens")
                return
            if (scale and cancelled.wait(pause * scale)) or cancelled.is_set():
                return  # cancelled: stop at once, no further events
            if kind == "image":
                # Surfaces render a File in their own way (the Workbench as a
                # Markdown image in the content, as the example server does).
                yield File("image/png", demo_images.url(str(payload), request.server_url))
                continue
            block = kind if kind in ("text", "reasoning") else None
            if open_block and open_block[0] != block:
                yield _end(open_block)
                open_block = None
            if block and open_block is None:
                blocks += 1
                open_block = (block, f"{block}-{blocks}")
                yield TextStart(open_block[1]) if block == "text" else ReasoningStart(open_block[1])
            if kind == "text":
                produced.append(str(payload))
                yield TextDelta(open_block[1], str(payload))
            elif kind == "reasoning":
                produced.append(str(payload))
                yield ReasoningDelta(open_block[1], str(payload))
            elif kind == "tool-start":
                yield ToolInputStart(*payload)
            elif kind == "tool-delta":
                produced.append(payload[1])
                yield ToolInputDelta(*payload)
            elif kind == "tool-end":
                called_tools = True
                yield ToolInputEnd(payload[0])
                yield ToolCall(*payload)
            elif kind == "fail":
                # in-band, after content was sent: what a dying upstream looks like
                yield Error(UpstreamError(str(payload), code="upstream_error"))
                return
            else:
                yield payload  # a PlanUpdate or TodoUpdate
        if open_block:
            yield _end(open_block)
        prompt = "".join(message.text for message in request.messages)
        yield Usage(estimate_tokens(prompt), estimate_tokens("".join(produced)))
        yield Finish("tool-calls", "tool_calls") if called_tools else Finish("stop", "stop")


def _end(block: tuple[str, str]):
    kind, block_id = block
    return TextEnd(block_id) if kind == "text" else ReasoningEnd(block_id)
