"""Every canonical event through the Workbench codec, and guard(): a stream
never ends as a clean [DONE] unless the provider said it finished."""
from __future__ import annotations

import pytest

from proxy.canonical import (
    Error,
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
from proxy.errors import RateLimited, UpstreamError
from proxy.streaming import guard
from proxy.surfaces import workbench_codec as codec

from .helpers import content_of, named, register, split_frames, text_then

pytestmark = pytest.mark.integration


def encode(events) -> list[str]:
    return split_frames(b"".join(codec.encode_stream(guard(iter(events)))))


STEPS = (PlanStep("s1", "Plan", "running"), PlanStep("s2", "Do", "pending"))


@pytest.mark.unit
def test_every_event_type():
    frames = encode([
        ResponseMetadata("r", "m", 1),
        ReasoningStart("r1"), ReasoningDelta("r1", "hmm"), ReasoningEnd("r1"),
        PlanUpdate("task-9", STEPS),
        TodoUpdate((PlanStep("s1", "Plan", "completed"),)),
        TextStart("t1"), TextDelta("t1", "Hello"), TextDelta("t1", " world"), TextEnd("t1"),
        File("image/png", "https://img.example/a.png"),
        File("application/pdf", "https://files.example/a.pdf"),
        ToolInputStart("c1", "lookup"), ToolInputDelta("c1", "{}"), ToolInputEnd("c1"), ToolCall("c1", "lookup", "{}"),
        Source("https://a.example", "A"), Source("https://b.example"),
        Usage(3, 4),
        Finish("stop", "stop"),
    ])
    assert frames == [
        'event: thinking\ndata: {"content":"hmm"}',
        'event: plan_update\ndata: {"current_task_id":"task-9","steps":[{"id":"s1","status":"running","title":"Plan"},'
        '{"id":"s2","status":"pending","title":"Do"}]}',
        'event: todo_update\ndata: {"items":[{"id":"s1","status":"completed","title":"Plan"}]}',
        'data: {"content":"Hello"}',
        'data: {"content":" world"}',
        'data: {"content":"![Generated image](https://img.example/a.png)"}',
        'data: {"content":"[Download file](https://files.example/a.pdf)"}',
        'data: {"content":"\\n\\nSources:\\n1. [A](https://a.example)\\n2. [https://b.example](https://b.example)"}',
        "data: [DONE]",
    ]


@pytest.mark.unit
def test_error_event_is_visible_content_then_error_event_then_done():
    frames = encode([TextStart("t"), TextDelta("t", "par"), Error(RateLimited("slow down", code="rate_limited"))])
    assert frames == [
        'data: {"content":"par"}',
        'data: {"content":"\\n\\n[Error: slow down]"}',
        'event: error\ndata: {"message":"slow down","code":"rate_limited"}',
        "data: [DONE]",
    ]


@pytest.mark.unit
def test_stream_without_finish_becomes_an_in_band_error():
    frames = encode([TextStart("t"), TextDelta("t", "cut")])
    assert frames[0] == 'data: {"content":"cut"}'
    assert frames[1].startswith('data: {"content":"\\n\\n[Error: ')
    assert named(frames) == [("error", {"message": "the upstream stream ended before it finished",
                                        "code": "stream_incomplete"})]
    assert frames[-1] == "data: [DONE]"


@pytest.mark.unit
def test_empty_stream_is_an_error_not_a_clean_done():
    frames = encode([])
    assert frames != ["data: [DONE]"]
    assert named(frames)[0][0] == "error"


def failing(exc):
    def events():
        yield TextStart("t")
        yield TextDelta("t", "a")
        raise exc
    return events()


@pytest.mark.unit
@pytest.mark.parametrize("exc, code", [(UpstreamError("upstream hung up", code="upstream_cut"), "upstream_cut"),
                                      (RuntimeError("bug"), "internal_error")])
def test_provider_raising_mid_stream_becomes_an_in_band_error(exc, code):
    frames = split_frames(b"".join(codec.encode_stream(guard(failing(exc)))))
    assert content_of(frames)[0] == "a"
    (name, payload), = named(frames)
    assert name == "error" and payload["code"] == code
    assert "Traceback" not in "".join(frames) and "bug" not in payload["message"]
    assert frames[-1] == "data: [DONE]"


@pytest.mark.unit
def test_guard_drops_events_after_finish_and_after_error():
    events = list(guard(iter([TextDelta("t", "a"), Finish(), TextDelta("t", "late")])))
    assert [e.type for e in events] == ["text-delta", "finish"]
    events = list(guard(iter([Error(UpstreamError("x")), TextDelta("t", "late")])))
    assert [e.type for e in events] == ["error"]


@pytest.mark.unit
def test_socket_messages_mapping():
    out = list(codec.messages(guard(iter([ReasoningDelta("r", "t"), TextDelta("t", "x"), Finish()]))))
    assert out == [("thinking", {"content": "t"}), ("content", {"content": "x"}), ("complete", None)]


@pytest.mark.unit
def test_decode_request_accepts_part_shapes():
    request = codec.decode_request({"model": "m", "extra": 1, "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": "https://x/a.png"}},
                                     {"type": "image_url", "image_url": "https://x/b.png"},
                                     {"type": "image", "image": "QUJD", "mediaType": "image/jpeg"}]},
    ]}, "mock")
    assert request.model == "m"
    parts = request.messages[1].parts
    assert [p.url for p in parts[1:]] == ["https://x/a.png", "https://x/b.png", "data:image/jpeg;base64,QUJD"]


# --- the same over the live endpoint, with a test-only provider -------------

def test_http_in_band_error_when_provider_raises(app, client):
    def tail():
        raise UpstreamError("upstream died", code="upstream_died")
        yield  # pragma: no cover
    register(app, "dies", text_then(tail))
    response = client.post("/api/chat", json={"model": "dies", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 200
    frames = split_frames(response.get_data())
    assert content_of(frames) == ["partial", "\n\n[Error: upstream died]"]
    assert named(frames) == [("error", {"message": "upstream died", "code": "upstream_died"})]
    assert frames[-1] == "data: [DONE]"


def test_http_in_band_error_when_stream_stops_without_finish(app, client):
    register(app, "cut", text_then(lambda: iter(())))
    response = client.post("/api/chat", json={"model": "cut", "messages": [{"role": "user", "content": "x"}]})
    frames = split_frames(response.get_data())
    assert content_of(frames)[0] == "partial"
    assert named(frames)[0][1]["code"] == "stream_incomplete"
    assert frames[-1] == "data: [DONE]"


@pytest.mark.unit
def test_guard_closes_the_provider_generator_after_finish():
    closed = []

    def provider():
        try:
            yield TextDelta("t", "a")
            yield Finish()
            yield Usage(1, 1)  # never reached: guard stops at Finish
        finally:
            closed.append(True)

    events = list(guard(provider()))
    assert [e.type for e in events] == ["text-delta", "finish"]
    assert closed == [True]  # released at once, not left to the garbage collector
