"""A fake Coze API (api.coze.com) on top of FakeUpstream: real sockets, the
real framing and the real quirks.

    CozeUpstream(key=KEY)       checks `Authorization: Bearer` first (HTTP 200 +
                                {"code":4100|4101,...} like Coze), then answers:
    POST /v3/chat               streamed chat events, `event:x` / `data:{...}`
                                without spaces, `data:"[DONE]"` (quoted) at the end
    POST /v3/chat/submit_tool_outputs, /v3/chat/cancel
    POST /v1/conversation/create, /v1/conversation/message/list,
    DELETE /v1/conversations/<id>, POST /v1/files/upload
    POST /v1/workflow/stream_run, /v1/workflow/stream_resume
                                `id: n` / `event: Name` / `data: {...}` with spaces

State is real: conversations keep their messages (question + answer), one
chat may run per conversation (a second gets 4016), uploaded files have ids
a chat may reference, interrupted workflow runs wait for their event id.
What a bot does is chosen by its id (BOTS), what a workflow does by its id
(WORKFLOWS); the answer text is derived from the question and the number of
user turns Coze has seen in the conversation, so a test can tell whether the
history lives upstream. Scripted replies (`fake.reply(...)`, e.g. a recorded
transcript) take precedence for /v3/chat and the workflow streams.
Every answer carries an `x-tt-logid` header; errors carry `detail.logid`.
The chat routes are in coze_chat.py, the workflow routes in coze_workflows.py,
the ids, texts and framing in coze_wire.py.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from werkzeug.wrappers import Request

from .coze_chat import ChatRoutes
from .coze_wire import (  # the constants and helpers tests use as fake_coze.X
    BASE_ID,
    BOTS,
    CARD_BOT,
    CHAT_STREAMS,
    CUT_BOT,
    DONE,
    END_WORKFLOW,
    ERROR_BOT,
    ERROR_WORKFLOW,
    FAILING_BOT,
    INTERRUPT_QUESTION,
    INTERRUPT_WORKFLOW,
    KEY,
    LOCAL_PLUGIN_BOT,
    OUTPUT_WORKFLOW,
    PLAIN_BOT,
    PLUGIN_BOT,
    RATE_LIMITED_BOT,
    REASONING_BOT,
    SLOW_BOT,
    UNPUBLISHED_WORKFLOW,
    WORKFLOWS,
    answer_text,
    chat_event,
    sse,
    workflow_event,
    workflow_text,
)
from .coze_workflows import WorkflowRoutes
from .upstream import FakeUpstream, Received, Reply

__all__ = ["CozeUpstream", "make_app", "BASE_ID", "BOTS", "CARD_BOT", "CHAT_STREAMS", "CUT_BOT", "DONE", "END_WORKFLOW", "ERROR_BOT", "ERROR_WORKFLOW", "FAILING_BOT", "INTERRUPT_QUESTION", "INTERRUPT_WORKFLOW", "KEY", "LOCAL_PLUGIN_BOT", "OUTPUT_WORKFLOW", "PLAIN_BOT", "PLUGIN_BOT", "RATE_LIMITED_BOT", "REASONING_BOT", "SLOW_BOT", "UNPUBLISHED_WORKFLOW", "WORKFLOWS", "answer_text", "chat_event", "sse", "workflow_event", "workflow_text"]


class CozeUpstream(ChatRoutes, WorkflowRoutes, FakeUpstream):
    def __init__(self, key: str = KEY, delay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.delay = delay  # seconds between streamed events (SLOW_BOT: at least 0.2)
        self._ids = itertools.count(BASE_ID)
        self._logids = itertools.count(1)
        self.conversations: dict[str, dict] = {}  # id -> {bot_id, messages, running, created_at}
        self.chats: dict[str, dict] = {}  # chat id -> {conversation_id, status, ...}
        self.files: dict[str, dict] = {}
        self.interrupts: dict[str, dict] = {}  # event id -> {workflow_id, value}
        self.cancelled: list[dict] = []
        self.orphan_seconds = 3.0  # how long a chat whose client left keeps running
        self.state = threading.Lock()

    # -- helpers --------------------------------------------------------

    def new_id(self) -> str:
        return str(next(self._ids))

    def logid(self) -> str:
        return f"20261201{next(self._logids):012d}FAKE"

    def envelope(self, code: int = 0, msg: str = "", data: Any = None, **extra: Any) -> Reply:
        """Coze's JSON envelope, HTTP 200 whatever the code (as Coze does)."""
        logid = self.logid()
        body: dict[str, Any] = {"code": code, "msg": msg}
        if code == 0:
            body["data"] = data if data is not None else {}
        body.update(extra)
        body["detail"] = {"logid": logid}
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return Reply.json(None, raw=raw, headers={"x-tt-logid": logid})

    def error(self, code: int, msg: str) -> Reply:
        return self.envelope(code, msg)

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    # -- dispatch -------------------------------------------------------

    def _next_reply(self, received: Received) -> Reply:
        with self._lock:
            self.received.append(received)
            scripted = self.script.pop(0) if self.script and received.path in CHAT_STREAMS else None
        reply = self._auth(received)
        if reply is None and scripted is not None:
            reply = scripted(received) if callable(scripted) else scripted
        if reply is None:
            reply = self._route(received)
        if "x-tt-logid" not in reply.headers:
            reply.headers = {**reply.headers, "x-tt-logid": self.logid()}
        return reply

    def _auth(self, received: Received) -> Reply | None:
        header = received.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            return self.error(4100, "authentication is invalid: the Authorization header must be 'Bearer <token>'")
        if header[7:] != self.key:
            return self.error(4101, "The token you entered is incorrect. Please double-check and try again. "
                                    "For more information, refer to https://www.coze.com/docs/developer_guides/authentication")
        return None

    def _route(self, received: Received) -> Reply:
        path, method = received.path, received.method
        try:
            if method == "POST" and path == "/v3/chat":
                return self.chat(received)
            if method == "POST" and path == "/v3/chat/submit_tool_outputs":
                return self.submit_tool_outputs(received)
            if method == "POST" and path == "/v3/chat/cancel":
                return self.cancel(received)
            if method == "POST" and path == "/v1/conversation/create":
                return self.create_conversation(received)
            if method == "POST" and path == "/v1/conversation/message/list":
                return self.message_list(received)
            if method == "DELETE" and path.startswith("/v1/conversations/"):
                return self.delete_conversation(path.rsplit("/", 1)[1])
            if method == "POST" and path == "/v1/files/upload":
                return self.upload(received)
            if method == "POST" and path in ("/v1/workflow/stream_run", "/v1/workflow/stream_resume"):
                return self.workflow(received, resume=path.endswith("resume"))
        except (ValueError, KeyError, TypeError) as problem:
            return self.error(4000, f"Request parameter error: {problem}")
        return Reply(chunks=[b"404 page not found"], status=404, content_type="text/plain")

    # -- conversations and files ----------------------------------------

    def create_conversation(self, received: Received) -> Reply:
        body = received.json if received.body else {}
        messages = body.get("messages") or []
        if len(messages) > 16:
            return self.error(4000, "Request parameter error: messages has more than 16 items")
        problem = self.check_messages(messages)
        if problem:
            return self.error(4000, f"Request parameter error: {problem}")
        with self.state:
            conversation_id = self.new_id()
            self.conversations[conversation_id] = {
                "bot_id": body.get("bot_id"), "running": None, "created_at": int(time.time()),
                "messages": [self.stored(m, conversation_id, None) for m in messages]}
        return self.envelope(data={"id": conversation_id, "created_at": int(time.time()), "meta_data": body.get("meta_data") or {},
                                   "last_section_id": self.new_id()})

    def message_list(self, received: Received) -> Reply:
        conversation_id = parse_qs(received.query)["conversation_id"][0]
        body = received.json if received.body else {}
        with self.state:
            conversation = self.conversations.get(conversation_id)
            if conversation is None:
                return self.error(4200, f"Requested resource conversation_id={conversation_id} does not exist.")
            messages = [m for m in conversation["messages"] if m["type"] in ("question", "answer")]
        if body.get("order", "desc") == "desc":
            messages = messages[::-1]
        after = body.get("after_id")
        if after:  # the page after the message with this id, in the requested order
            ids = [m["id"] for m in messages]
            messages = messages[ids.index(after) + 1:] if after in ids else []
        limit = int(body.get("limit") or 50)
        page = messages[:limit]
        logid = self.logid()
        raw = json.dumps({"code": 0, "msg": "", "data": page, "first_id": page[0]["id"] if page else "",
                          "last_id": page[-1]["id"] if page else "", "has_more": len(messages) > limit,
                          "detail": {"logid": logid}}, ensure_ascii=False, separators=(",", ":")).encode()
        return Reply.json(None, raw=raw, headers={"x-tt-logid": logid})

    def delete_conversation(self, conversation_id: str) -> Reply:
        with self.state:
            if self.conversations.pop(conversation_id, None) is None:
                return self.error(4200, f"Requested resource conversation_id={conversation_id} does not exist.")
        return self.envelope(data={})

    def _app(self, environ: dict, start_response):
        # multipart uploads: keep the parsed file where upload() can see it
        request = Request(environ)
        if request.path == "/v1/files/upload" and request.method == "POST":
            upload = request.files.get("file")
            environ["fake.upload"] = (upload.filename, upload.mimetype, upload.read()) if upload else None
            request.close()  # closes the parsed file's spooled temporary file
            environ["wsgi.input"] = _empty()
            environ["CONTENT_LENGTH"] = "0"
            _uploads.current = environ["fake.upload"]
        return super()._app(environ, start_response)

    def upload(self, received: Received) -> Reply:
        upload = getattr(_uploads, "current", None)
        _uploads.current = None
        if upload is None:
            return self.error(4000, "Request parameter error: multipart field 'file' is required")
        filename, mimetype, data = upload
        file_id = self.new_id()
        with self.state:
            self.files[file_id] = {"file_name": filename, "mimetype": mimetype, "bytes": data}
        return self.envelope(data={"id": file_id, "bytes": len(data), "file_name": filename, "created_at": int(time.time())})


_uploads = threading.local()  # the file of the upload request this server thread handles


def _empty():
    import io

    return io.BytesIO(b"")


def make_app(fake: CozeUpstream, bot_id: str | None = PLAIN_BOT, workflow_id: str | None = OUTPUT_WORKFLOW,
             options: dict | None = None, **settings: Any):
    """A Switchboard app whose coze provider reaches `fake`."""
    from proxy import create_app
    from proxy.config import ProviderSettings

    values = {"bot_id": bot_id, "workflow_id": workflow_id, **(options or {})}
    coze = ProviderSettings(api_key=fake.key, base_url=fake.url, key_variable="COZE_API_KEY",
                            options={k: v for k, v in values.items() if v is not None})
    return create_app({"demo_delay": 0, "max_retries": 0, "providers": {"coze": coze}, **settings})
