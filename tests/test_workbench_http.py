"""POST /api/chat, /health, /, /v1/models over the Flask test client:
every demo model frame by frame (docs/demo.md), bad input, sizes."""
from __future__ import annotations

import json

import pytest

from proxy import create_app

from .helpers import content_of, named, split_frames

pytestmark = pytest.mark.integration

HTML = (
    "<!DOCTYPE html>\n<html>\n<body>\n<h1>Hello World</h1>\n"
    "<p>This is a hardcoded HTML document.</p>\n</body>\n</html>\n"
)
SUNSET = "![Generated image](http://localhost/demo/images/sunset.png)"
MOSAIC = "![Generated image](http://localhost/demo/images/mosaic.png)"


@pytest.fixture
def app(tmp_path):
    # Demo image links are absolute only under a configured public URL.
    return create_app({"demo_delay": 0, "database_path": str(tmp_path / "switchboard.db"),
                       "public_url": "http://localhost"})


def test_demo_images_never_reflect_the_host_header(tmp_path):
    plain = create_app({"demo_delay": 0, "database_path": str(tmp_path / "plain.db")}).test_client()
    body = {"model": "text-in-image-out", "messages": [{"role": "user", "content": "draw"}]}
    response = plain.post("/api/chat", json=body, headers={"Host": "evil.example"})
    text = response.get_data(as_text=True)
    assert "evil.example" not in text
    assert "](data:image/png;base64," in text  # self-contained without SWITCHBOARD_PUBLIC_URL


def chat(client, model, content="Tell me about owls", **extra):
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    response = client.post("/api/chat", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/event-stream"
    return split_frames(response.get_data())


EXACT = [
    ("mock", "Tell me about owls",
     ["This is a response from the mock model. I received your message: ", "Tell me about owls"]),
    ("mock", [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
     ["This is a response from the mock model. I received your message: ", "Multimedia content"]),
    ("text-in-image-out", "draw", ["Here is your generated image:\n", SUNSET]),
    ("text-img-in-text-img-out", "Please GET ME AN IMAGE now", ["Here is the image you requested:\n", SUNSET]),
    ("text-img-in-text-img-out", "hello",
     ["I can process images and text. Try asking 'get me an image' or sending an image.", "\n", MOSAIC]),
    ("text-in-html-out", "x", ["Here is the HTML document you requested:\n", "```html\n", HTML, "```"]),
]


@pytest.mark.parametrize("model, content, fragments", EXACT, ids=[f"{m}-{i}" for i, (m, *_) in enumerate(EXACT)])
def test_example_models_stream_exact_fragments(client, model, content, fragments):
    frames = chat(client, model, content)
    expected = [f"data: {json.dumps({'content': f}, ensure_ascii=False, separators=(',', ':'))}" for f in fragments]
    assert frames == expected + ["data: [DONE]"]


def test_reflection_and_thinking_streams_thinking_then_content(client):
    frames = chat(client, "reflection-and-thinking", "owls")
    assert frames == [
        'event: thinking\ndata: {"content":"Analyzing the request...\\n"}',
        'event: thinking\ndata: {"content":"Identifying key concepts...\\n"}',
        'data: {"content":"After deep reflection, I have concluded that "}',
        'data: {"content":"owls"}',
        'data: {"content":" is indeed interesting."}',
        "data: [DONE]",
    ]


def test_reflection_with_multimodal_input_says_this_input(client):
    content = [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    assert content_of(chat(client, "reflection-and-thinking", content))[1] == "this input"


def test_demo_image_links_are_served(client):
    response = client.get("/demo/images/sunset.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert client.get("/demo/images/nope.png").status_code == 404


def test_agent_demo_shows_plan_thinking_todos_and_content(client):
    frames = chat(client, "agent-demo", "owls")
    events = named(frames)
    names = [name for name, _ in events]
    assert names[0] == "plan_update"
    assert {"thinking", "todo_update"} <= set(names)
    plan = events[0][1]
    assert plan["current_task_id"] == "task-1"
    assert [s["status"] for s in plan["steps"]] == ["running", "pending", "pending"]
    assert all(set(s) == {"id", "status", "title"} for s in plan["steps"])
    todos = [payload for name, payload in events if name == "todo_update"]
    assert [i["status"] for i in todos[-1]["items"]] == ["completed"] * 3
    assert [i["id"] for i in todos[-1]["items"]] == [s["id"] for s in plan["steps"]]
    thinking = "".join(payload["content"] for name, payload in events if name == "thinking")
    assert "owls" in thinking
    assert "".join(content_of(frames)) == "Here is my answer about owls: every step of the plan is done."
    assert frames[-1] == "data: [DONE]"
    assert not any(name == "error" for name in names)


def test_default_model_when_model_absent(client):
    response = client.post("/api/chat", json={"messages": [{"role": "user", "content": "hi"}]})
    assert content_of(split_frames(response.get_data()))[0].startswith("This is a response from the mock model")


def test_sse_headers(client):
    response = client.post("/api/chat", json={"messages": [{"role": "user", "content": "hi"}]})
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert "Content-Length" not in response.headers


# --- bad input: 4xx JSON error saying what to fix, never a 500 -------------

BAD = [
    ("malformed JSON", b'{"messages": [', "not valid JSON", 400),
    ("empty body", b"", "empty", 400),
    ("not an object", b"[1, 2]", "JSON object", 400),
    ("messages missing", b"{}", "'messages' is required", 400),
    ("messages empty", b'{"messages": []}', "must not be empty", 400),
    ("messages not a list", b'{"messages": "hi"}', "must be an array", 400),
    ("message not an object", b'{"messages": ["hi"]}', "messages[0]", 400),
    ("content a number", b'{"messages": [{"role": "user", "content": 5}]}', "messages[0].content", 400),
    ("bad role", b'{"messages": [{"role": "wizard", "content": "x"}]}', "messages[0].role", 400),
    ("content missing", b'{"messages": [{"role": "user"}]}', "messages[0].content", 400),
    ("bad part type", b'{"messages": [{"role": "user", "content": [{"type": "video"}]}]}', "type", 400),
    ("model not a string", b'{"model": 7, "messages": [{"role": "user", "content": "x"}]}', "'model'", 400),
    ("unknown model", b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}', "unknown model 'nope'", 404),
]


@pytest.mark.parametrize("case, body, says, status", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_json_4xx_saying_what_to_fix(client, case, body, says, status):
    response = client.post("/api/chat", data=body, content_type="application/json")
    assert response.status_code == status
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert says in error["message"]
    assert error["type"] and "Traceback" not in response.get_data(as_text=True)


def test_oversize_body_is_413_json():
    app = create_app({"demo_delay": 0, "max_body_bytes": 1000})
    client = app.test_client()
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 5000}]})
    response = client.post("/api/chat", data=body, content_type="application/json")
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert "larger than 1000 bytes" in error["message"]
    # just under the limit still works
    small = json.dumps({"messages": [{"role": "user", "content": "x" * 100}]})
    assert client.post("/api/chat", data=small, content_type="application/json").status_code == 200


def test_wrong_method_and_unknown_path_are_json(client):
    response = client.get("/api/chat")
    assert response.status_code == 405 and response.get_json()["error"]["message"]
    response = client.get("/nope")
    assert response.status_code == 404 and response.get_json()["error"]["type"] == "not_found_error"


# --- health, index, models -------------------------------------------------

def test_health_text_and_json(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.data == b"OK"
    assert response.mimetype == "text/plain"
    for response in (client.get("/health?format=json"), client.get("/health", headers={"Accept": "application/json"})):
        assert response.status_code == 200
        body = response.get_json()
        assert body["status"] == "ok" and isinstance(body["version"], str) and body["version"]


def test_head_and_get_index(client):
    assert client.head("/").status_code == 200
    response = client.get("/")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


CAPABILITIES = {"imageInput", "imageOutput", "thinking", "textInput", "textOutput", "internetBrowsing",
                "fileOutput", "videoInput", "videoOutput"}


def test_models_listing_shape(client):
    body = client.get("/v1/models").get_json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    for model in ("mock", "text-in-image-out", "text-img-in-text-img-out", "reflection-and-thinking",
                  "text-in-html-out", "agent-demo"):
        assert model in ids
    for model in body["data"]:
        assert model["object"] == "model" and isinstance(model["owned_by"], str)
        assert isinstance(model["created"], int) and 1_500_000_000 < model["created"] < 10_000_000_000  # seconds
        assert set(model["capabilities"]) == CAPABILITIES
        assert all(isinstance(v, bool) for v in model["capabilities"].values())
    by_id = {m["id"]: m["capabilities"] for m in body["data"]}
    assert by_id["reflection-and-thinking"]["thinking"] is True
    assert by_id["mock"]["thinking"] is False and by_id["mock"]["textInput"] is True
    assert by_id["text-img-in-text-img-out"]["imageInput"] is True
    assert by_id["text-in-image-out"]["imageOutput"] is True


def test_single_model_and_unknown_model(client):
    assert client.get("/v1/models/mock").get_json()["id"] == "mock"
    response = client.get("/v1/models/nope")
    assert response.status_code == 404 and "nope" in response.get_json()["error"]["message"]
