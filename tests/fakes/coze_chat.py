"""The fake Coze's chat routes (a mixin of CozeUpstream, tests/fakes/coze.py).

    POST /v3/chat                        a chat run by the bot's behaviour (coze_wire.BOTS)
    POST /v3/chat/submit_tool_outputs    continues a chat that required action
    POST /v3/chat/cancel                 stops a running chat, frees its conversation

A conversation runs one chat at a time (4016 for a second); a chat whose
client left keeps running for `orphan_seconds`, as on Coze.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Iterator
from urllib.parse import parse_qs

from .coze_wire import BOTS, DONE, answer_text, chat_event
from .upstream import Received, Reply


class ChatRoutes:

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
