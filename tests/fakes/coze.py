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
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any, Iterator
from urllib.parse import parse_qs

from werkzeug.wrappers import Request

from .upstream import FakeUpstream, Received, Reply, transcript

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


class CozeUpstream(FakeUpstream):
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

    # -- chat -----------------------------------------------------------

    def chat(self, received: Received) -> Reply:
        body = received.json
        query = parse_qs(received.query)
        bot_id = body.get("bot_id")
        if not isinstance(bot_id, str) or not bot_id:
            return self.error(4000, "Request parameter error: bot_id is required")
        if not body.get("user_id"):
            return self.error(4000, "Request parameter error: user_id is required")
        behaviour = BOTS.get(bot_id)
        if behaviour is None:
            return self.error(4200, f"Requested resource bot_id={bot_id} does not exist. "
                                    "Ensure you are the correct resource owner and that the bot is published.")
        if behaviour == "rate_limited":
            return self.error(4013, "Request rate exceed limit. Please try again later.")
        messages = body.get("additional_messages") or []
        if len(messages) > 100:
            return self.error(4000, "Request parameter error: additional_messages has more than 100 items")
        problem = self.check_messages(messages)
        if problem:
            return self.error(4000, f"Request parameter error: {problem}")
        if not body.get("stream"):
            return self.error(4000, "Request parameter error: this fake only streams (stream must be true)")
        with self.state:
            conversation_id = (query.get("conversation_id") or [None])[0]
            if conversation_id is None:
                conversation_id = self.new_id()
                self.conversations[conversation_id] = {"bot_id": bot_id, "messages": [], "running": None,
                                                       "created_at": int(time.time())}
            conversation = self.conversations.get(conversation_id)
            if conversation is None:
                return self.error(4200, f"Requested resource conversation_id={conversation_id} does not exist.")
            if conversation["running"] is not None:
                return self.error(4016, "Another chat is in progress in this conversation. "
                                        "Wait for it to finish or cancel it before starting a new one.")
            chat_id = self.new_id()
            conversation["running"] = chat_id
            self.chats[chat_id] = {"conversation_id": conversation_id, "bot_id": bot_id, "status": "created"}
            if body.get("auto_save_history", True):
                for message in messages:
                    conversation["messages"].append(self.stored(message, conversation_id, chat_id))
            turn = sum(1 for m in conversation["messages"] if m["type"] == "question")
            if not body.get("auto_save_history", True):
                turn += sum(1 for m in messages if m.get("role") == "user")
        question = self.question_text(messages[-1]) if messages else ""
        chat = {"id": chat_id, "conversation_id": conversation_id, "bot_id": bot_id}
        events = self.chat_events(behaviour, chat, question, turn)
        return self.stream(events, chat, slow=behaviour == "slow")

    def check_messages(self, messages: list) -> str | None:
        """Coze's composition rules for object_string content (spec'd in chat_v3)."""
        for message in messages:
            if message.get("role") not in ("user", "assistant"):
                return f"role must be user or assistant, got {message.get('role')!r}"
            if message.get("content_type", "text") == "object_string":
                items = json.loads(message["content"])  # a JSON string inside the JSON
                texts = [i for i in items if i.get("type") == "text"]
                others = [i for i in items if i.get("type") != "text"]
                if len(texts) > 1:
                    return "object_string allows at most one text item"
                if texts and not others:
                    return "a text-only message must use content_type text"
                for item in others:
                    if item.get("file_id") and item["file_id"] not in self.files:
                        return f"file_id {item['file_id']} does not exist"
                    if not item.get("file_id") and not str(item.get("file_url", "")).startswith("http"):
                        return "file_url must be a public URL (upload data with /v1/files/upload)"
            elif not isinstance(message.get("content"), str):
                return "content must be a string"
        return None

    @staticmethod
    def question_text(message: dict) -> str:
        if message.get("content_type") == "object_string":
            items = json.loads(message["content"])
            return " ".join(i.get("text", "") for i in items if i.get("type") == "text")
        return message.get("content", "")

    def stored(self, message: dict, conversation_id: str, chat_id: str | None) -> dict:
        role = message.get("role", "user")
        return {"id": self.new_id(), "conversation_id": conversation_id, "chat_id": chat_id, "role": role,
                "type": message.get("type") or ("question" if role == "user" else "answer"),
                "content": message.get("content", ""), "content_type": message.get("content_type", "text"),
                "created_at": int(time.time()), "updated_at": int(time.time())}

    def chat_object(self, chat: dict, status: str, usage: tuple[int, int] = (0, 0), **extra: Any) -> dict:
        input_count, output_count = usage
        return {**chat, "created_at": int(time.time()), "completed_at": int(time.time()),
                "last_error": extra.pop("last_error", {"code": 0, "msg": ""}), "status": status,
                **extra, "usage": {"token_count": input_count + output_count, "output_count": output_count,
                                   "input_count": input_count}}

    def message(self, chat: dict, message_id: str, kind: str, content: str, **extra: Any) -> dict:
        return {"id": message_id, "conversation_id": chat["conversation_id"], "bot_id": chat["bot_id"],
                "role": "assistant", "type": kind, "content": content, "content_type": extra.pop("content_type", "text"),
                **extra, "chat_id": chat["id"]}

    def answer_events(self, chat: dict, text: str, reasoning: str = "") -> list[bytes]:
        """Deltas, then the full answer again in message.completed (the trap)."""
        message_id = self.new_id()
        out = []
        if reasoning:
            half = len(reasoning) // 2
            for piece in (reasoning[:half], reasoning[half:]):
                out.append(chat_event("conversation.message.delta",
                                      self.message(chat, message_id, "answer", "", reasoning_content=piece)))
        words = text.split(" ")
        for index, word in enumerate(words):
            piece = word if index == len(words) - 1 else word + " "
            out.append(chat_event("conversation.message.delta", self.message(chat, message_id, "answer", piece)))
        completed = self.message(chat, message_id, "answer", text, **({"reasoning_content": reasoning} if reasoning else {}))
        out.append(chat_event("conversation.message.completed", completed))
        self.save_answer(chat, text)
        return out

    def save_answer(self, chat: dict, text: str) -> None:
        with self.state:
            conversation = self.conversations.get(chat["conversation_id"])
            if conversation is not None:
                conversation["messages"].append(self.stored({"role": "assistant", "type": "answer", "content": text},
                                                            chat["conversation_id"], chat["id"]))

    def verbose(self, chat: dict) -> bytes:
        content = json.dumps({"msg_type": "generate_answer_finish", "data": "", "from_module": None, "from_unit": None})
        return chat_event("conversation.message.completed", self.message(chat, self.new_id(), "verbose", content))

    def chat_events(self, behaviour: str, chat: dict, question: str, turn: int) -> list[bytes]:
        text = answer_text(question, turn)
        head = [chat_event("conversation.chat.created", self.chat_object(chat, "created")),
                chat_event("conversation.chat.in_progress", self.chat_object(chat, "in_progress"))]
        usage = (600 + 10 * turn, len(text.split()))
        completed = [chat_event("conversation.chat.completed", self.chat_object(chat, "completed", usage)), DONE]
        if behaviour in ("plain", "slow"):
            return head + self.answer_events(chat, text) + [self.verbose(chat)] + completed
        if behaviour == "reasoning":
            return head + self.answer_events(chat, text, reasoning=f"The user asks: {question}. Answer plainly.") + completed
        if behaviour == "plugin":
            call = json.dumps({"name": "toutiaosousuo-search", "arguments": {"q": question}, "plugin_id": 7379227414322217010,
                               "api_id": 7379227414322233394, "plugin_type": 1, "thought": "search first"})
            result = json.dumps({"content_type": 1, "response_for_model": "SEARCH RESULT", "type_for_model": 1})
            knowledge = json.dumps([{"slice": "KNOWLEDGE SLICE", "score": 0.9}])
            middle = [
                chat_event("conversation.message.completed", self.message(chat, self.new_id(), "function_call", call)),
                chat_event("conversation.message.completed", self.message(chat, self.new_id(), "tool_response", result)),
                chat_event("conversation.message.completed", self.message(chat, self.new_id(), "knowledge", knowledge)),
            ]
            follow = [chat_event("conversation.message.completed", self.message(chat, self.new_id(), "follow_up", f"FOLLOW UP {n}?"))
                      for n in (1, 2)]
            return head + middle + self.answer_events(chat, text) + [self.verbose(chat)] + follow + completed
        if behaviour == "card":
            card = json.dumps({"card_type": 2, "template_id": "7344", "title": "CARD"})
            card_message = self.message(chat, self.new_id(), "answer", card, content_type="card")
            return head + self.answer_events(chat, text) + [chat_event("conversation.message.completed", card_message)] + completed
        if behaviour == "local_plugin":
            call_id = "BUJJF0dAQ0NAEBVeQkVKEV5HFURFXhFCEhFeFxdHShcSQEtFSxYRSUI="
            arguments = json.dumps({"location": question, "type": 0}, ensure_ascii=False)
            function_call = json.dumps({"name": "local_weather", "arguments": {"location": question, "type": 0}},
                                       ensure_ascii=False)
            with self.state:
                self.chats[chat["id"]].update(status="requires_action", tool_call_id=call_id, question=question, turn=turn)
            required = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "local_weather", "arguments": arguments}}]}}
            return head + [
                chat_event("conversation.message.completed", self.message(chat, self.new_id(), "function_call", function_call)),
                chat_event("conversation.chat.requires_action", self.chat_object(chat, "requires_action", required_action=required)),
                DONE,
            ]
        if behaviour == "failed":
            failed = self.chat_object(chat, "failed", last_error={"code": 5000, "msg": "event interval error"})
            return head + self.answer_events(chat, text)[:2] + [chat_event("conversation.chat.failed", failed)]
        if behaviour == "error":
            return head + self.answer_events(chat, text)[:2] + [chat_event("error", {"code": 5000, "msg": "internal error"})]
        if behaviour == "cut":
            return head + self.answer_events(chat, text)[:2]
        raise ValueError(f"unknown behaviour {behaviour}")

    def stream(self, events: list[bytes], chat: dict, slow: bool = False) -> Reply:
        """Stream the events; the conversation is free again when the stream ends."""
        delay = max(self.delay, 0.2) if slow else self.delay

        def finish() -> None:
            with self.state:
                record = self.chats.get(chat["id"])
                if record is None or record["status"] == "canceled":
                    return
                conversation = self.conversations.get(chat["conversation_id"])
                if conversation is not None and conversation["running"] == chat["id"]:
                    conversation["running"] = None
                if record["status"] != "requires_action":
                    record["status"] = "completed"

        def chunks() -> Iterator[bytes]:
            with self.state:
                record = self.chats[chat["id"]]
                if record["status"] == "created":
                    record["status"] = "in_progress"
            try:
                for event in events:
                    if self.chats.get(chat["id"], {}).get("status") == "canceled":
                        return
                    yield event
            except GeneratorExit:
                # The client left; like Coze, the chat runs on (the
                # conversation stays busy) until it ends or is cancelled.
                timer = threading.Timer(self.orphan_seconds, finish)
                timer.daemon = True
                timer.start()
                raise
            finish()

        return Reply(chunks=chunks(), delay=delay, headers={"x-tt-logid": self.logid()})

    def submit_tool_outputs(self, received: Received) -> Reply:
        query = parse_qs(received.query)
        chat_id = query["chat_id"][0]
        conversation_id = query["conversation_id"][0]
        body = received.json
        with self.state:
            record = self.chats.get(chat_id)
            if record is None or record["conversation_id"] != conversation_id:
                return self.error(4200, f"Requested resource chat_id={chat_id} does not exist.")
            if record["status"] != "requires_action":
                return self.error(4000, "Request parameter error: the chat is not waiting for tool outputs")
            outputs = {o["tool_call_id"]: o["output"] for o in body.get("tool_outputs") or []}
            if record["tool_call_id"] not in outputs:
                return self.error(4000, f"Request parameter error: missing output for tool call {record['tool_call_id']}")
            record["status"] = "in_progress"
            self.conversations[conversation_id]["running"] = chat_id
        chat = {"id": chat_id, "conversation_id": conversation_id, "bot_id": record["bot_id"]}
        text = f"The weather in {record['question']}: {outputs[record['tool_call_id']]}"
        usage = (700, len(text.split()))
        events = ([chat_event("conversation.chat.in_progress", self.chat_object(chat, "in_progress"))]
                  + self.answer_events(chat, text)
                  + [chat_event("conversation.chat.completed", self.chat_object(chat, "completed", usage)), DONE])
        return self.stream(events, chat)

    def cancel(self, received: Received) -> Reply:
        body = received.json
        with self.state:
            record = self.chats.get(body["chat_id"])
            if record is None or record["conversation_id"] != body["conversation_id"]:
                return self.error(4200, f"Requested resource chat_id={body['chat_id']} does not exist.")
            if record["status"] in ("completed", "requires_action"):
                return self.error(4104, "The chat cannot be cancelled: it is not in progress")
            record["status"] = "canceled"
            conversation = self.conversations.get(body["conversation_id"])
            if conversation is not None and conversation["running"] == body["chat_id"]:
                conversation["running"] = None
            self.cancelled.append(dict(body))
        chat = {"id": body["chat_id"], "conversation_id": body["conversation_id"], "bot_id": record["bot_id"]}
        return self.envelope(data=self.chat_object(chat, "canceled"))

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

    # -- workflows ------------------------------------------------------

    def workflow(self, received: Received, resume: bool) -> Reply:
        body = received.json
        workflow_id = body.get("workflow_id")
        behaviour = WORKFLOWS.get(workflow_id)
        if behaviour is None:
            return self.error(4200, f"Requested resource workflow_id={workflow_id} does not exist.")
        if behaviour == "unpublished":
            return self.error(4200, f"The workflow {workflow_id} is not published. Publish it before calling the API.")
        if body.get("bot_id") and body.get("app_id"):
            return self.error(4000, "Request parameter error: bot_id and app_id cannot both be set")
        if resume:
            with self.state:
                waiting = self.interrupts.pop(body.get("event_id"), None)
            if waiting is None or waiting["workflow_id"] != workflow_id:
                return self.error(4000, f"Request parameter error: no interrupted run with event_id {body.get('event_id')}")
            if body.get("interrupt_type") != 2:
                return self.error(4000, "Request parameter error: interrupt_type does not match")
            text = workflow_text(f"{waiting['value']} / {body.get('resume_data')}")
            events = [("Message", {"content": text, "content_type": "text", "node_is_finish": True, "node_seq_id": "0",
                                   "node_title": "Answer"}),
                      ("Done", {"debug_url": "https://www.coze.com/work_flow?execute_id=1"})]
            return self.workflow_stream(events)
        parameters = body.get("parameters") or {}
        if isinstance(parameters, str):
            parameters = json.loads(parameters)
        value = parameters.get("input")
        if value is None:
            return self.workflow_stream([("Error", {"error_code": 4000, "error_message": "Request parameter error: "
                                                   "the start node needs the parameter 'input'"})])
        text = workflow_text(value)
        usage = {"input_count": 40, "output_count": 12, "token_count": 52}
        end = {"content": json.dumps({"output": text}, ensure_ascii=False), "cost": "0.00", "node_is_finish": True,
               "node_seq_id": "0", "node_title": "", "token": 0, "usage": usage}
        if behaviour == "output":
            words = text.split(" ")
            events: list[tuple[str, dict]] = []
            for index, word in enumerate(words):
                piece = word if index == len(words) - 1 else word + " "
                events.append(("Message", {"content": piece, "node_is_finish": index == len(words) - 1,
                                           "node_seq_id": str(index), "node_title": "Message"}))
                if index == 1:
                    events.append(("PING", {}))
            return self.workflow_stream(events + [("Message", end), ("Done", {})])
        if behaviour == "end":
            return self.workflow_stream([("PING", {}), ("Message", end), ("Done", {})])
        if behaviour == "interrupt":
            event_id = f"{self.new_id()}/{self.new_id()}"
            with self.state:
                self.interrupts[event_id] = {"workflow_id": workflow_id, "value": value}
            return self.workflow_stream([
                ("Message", {"content": INTERRUPT_QUESTION, "content_type": "text", "node_is_finish": True,
                             "node_seq_id": "0", "node_title": "问答"}),
                ("Interrupt", {"interrupt_data": {"data": "", "event_id": event_id, "type": 2}, "node_title": "问答"}),
            ])
        if behaviour == "error":
            return self.workflow_stream([
                ("Message", {"content": "partial ", "node_is_finish": False, "node_seq_id": "0", "node_title": "Message"}),
                ("Error", {"error_code": 5000, "error_message": "node execution failed: the code node raised",
                           "debug_url": "https://www.coze.com/work_flow?execute_id=2"})])
        raise ValueError(f"unknown workflow behaviour {behaviour}")

    def workflow_stream(self, events: list[tuple[str, dict]]) -> Reply:
        chunks = [workflow_event(number, name, data) for number, (name, data) in enumerate(events)]
        return Reply(chunks=chunks, delay=self.delay, headers={"x-tt-logid": self.logid()})


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
