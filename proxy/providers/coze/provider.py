"""The Coze provider's IO: bots and workflows over Coze API v3 (docs/coze.md).

    router -> CozeProvider.open(request, route)
        chat:          [upload data: images] -> POST /v3/chat (stream)
        conversation:  [POST /v1/conversation/create] -> POST /v3/chat?conversation_id=  (new turn only)
        tool results:  POST /v3/chat/submit_tool_outputs?conversation_id=&chat_id=
        workflow:      POST /v1/workflow/stream_run | /v1/workflow/stream_resume
        -> SSEReader.events() -> decode.ChatDecoder / WorkflowDecoder -> canonical events

All IO is here and in providers/http.py; request.py and decode.py are pure.
Coze answers most errors with HTTP 200 and a JSON `{code, msg}` body, also to
streaming requests: the content type is checked before any SSE parsing, and
the code is mapped to the error tree with Coze's logid logged (never the key).

State: a conversation-mode request without `x-conversation-id` creates a Coze
conversation and a Switchboard conversation (owned by the caller's key) that
points at it; its Switchboard id is the `x-conversation-id` response header.
Workflow runs are workflow sessions in the store (`x-workflow-session-id`);
an Interrupt leaves the session `interrupted` until a request resumes it.
Chats on one conversation are serialized in this process (Coze allows one
running chat per conversation, 4016) and a 4016 from another process is
waited out briefly; a client that leaves cancels its Coze chat.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterator, Mapping

import requests

from ...canonical import ChatRequest, Event
from ...errors import BadRequest, NotFound, ProxyError, StoreUnavailable, UpstreamError
from ...store.base import StoreError
from ..base import ModelRoute, Provider, UpstreamStream, capabilities
from ..http import SSEReader, UpstreamClient
from .client import ConversationLocks, CozeCalls
from .decode import ChatDecoder, WorkflowDecoder
from .errors import PROVIDER
from .request import (
    MAX_CREATE_MESSAGES,
    MODES,
    CozeConfig,
    Target,
    chat_body,
    conversation_body,
    enter_messages,
    last_user_text,
    missing_bot,
    pending_tool_outputs,
    require_user_turn,
    resolve_target,
    resume_body,
    split_history,
    workflow_body,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.coze.com"
CONVERSATION_HEADER = "x-conversation-id"
SESSION_HEADER = "x-workflow-session-id"
BUSY_WAIT = 10.0  # seconds to wait for a conversation's running chat (ours or another process's)
BUSY_RETRY = 0.25
CANCEL_TIMEOUT = 5.0

# option name in YAML `providers: {coze: ...}` -> environment variable
OPTIONS = {
    "bot_id": "COZE_BOT_ID",
    "workflow_id": "COZE_WORKFLOW_ID",
    "space_id": "COZE_SPACE_ID",
    "default_model_type": "DEFAULT_MODEL_TYPE",
    "input_key": "COZE_WORKFLOW_INPUT_KEY",
    "app_id": "COZE_APP_ID",
    "workflow_bot_id": "COZE_WORKFLOW_BOT_ID",
    "user_id": "COZE_USER_ID",
    "connector_id": "COZE_CONNECTOR_ID",
}


def config_from(options: Mapping[str, Any]) -> CozeConfig:
    """The provider's options: the environment variables of OPTIONS, then the
    YAML `providers: {coze: ...}` values over them (proxy/config.py)."""
    values: dict[str, Any] = {}
    for name in OPTIONS:
        value = options.get(name)
        if value is None and name == "default_model_type":
            value = options.get("model_type")
        if value is not None and value != "":
            values[name] = str(value)
    mode = values.pop("default_model_type", "chat").strip().lower()
    if mode not in MODES:
        raise ValueError(f"DEFAULT_MODEL_TYPE (providers.coze.default_model_type) must be one of "
                         f"{', '.join(MODES)}; got {mode!r}")
    return CozeConfig(default_mode=mode, **values)


class CozeProvider(CozeCalls, Provider):
    name = "coze"
    key_variables = ("COZE_API_KEY",)
    base_url_variable = "COZE_BASE_URL"
    settings_read = OPTIONS

    def __init__(self, credentials, settings, store=None) -> None:
        super().__init__(credentials, settings, store)
        self.config = config_from(credentials.options)
        self.client = UpstreamClient(self.name, settings)
        self.locks = ConversationLocks()

    def models(self) -> list[ModelRoute]:
        if not self.config.bot_id:
            return []
        bot = self.config.bot_id
        return [ModelRoute(f"coze/{bot}", self.name, bot, "coze", capabilities({"imageInput": True}))]

    # -- plumbing -------------------------------------------------------

    def base_url(self, route: ModelRoute | None = None) -> str:
        credentials = (route.credentials if route is not None else None) or self.credentials
        return (credentials.base_url or DEFAULT_BASE_URL).rstrip("/")

    def key(self, route: ModelRoute | None = None) -> str:
        credentials = (route.credentials if route is not None else None) or self.credentials
        return credentials.api_key or ""

    # -- open -----------------------------------------------------------

    def open(self, request: ChatRequest, route: ModelRoute) -> UpstreamStream:
        try:
            return self.open_mode(request, route)
        except StoreError as error:  # conversations and workflow sessions live in the store
            raise StoreUnavailable(f"the conversation store is unavailable: {error}") from error

    def open_mode(self, request: ChatRequest, route: ModelRoute) -> UpstreamStream:
        key, base = self.key(route), self.base_url(route)
        target = resolve_target(request, route.upstream_model, self.config)
        if target.mode == "workflow":
            return self.open_workflow(request, target, key, base)
        outputs = pending_tool_outputs(request.messages, key)
        if outputs is not None:
            response = self.open_stream("/v3/chat/submit_tool_outputs", key, base, outputs.body,
                                        {"conversation_id": outputs.conversation_id, "chat_id": outputs.chat_id})
            return self.chat_stream(response, key, base)
        file_ids = self.upload_images(request, key, base)
        if target.mode == "chat":
            messages = enter_messages(request.messages, file_ids)
            require_user_turn(messages)
            response = self.open_stream("/v3/chat", key, base, chat_body(target, messages, self.config))
            return self.chat_stream(response, key, base)
        return self.open_conversation(request, target, file_ids, key, base, route)

    def owner(self, target: Target) -> str:
        return str(target.hints.get("owner") or "")

    def require_store(self):
        if self.store is None:
            raise UpstreamError("this mode needs the Switchboard store, which is not available", code="store_unavailable",
                                retryable=False)
        return self.store

    def open_conversation(self, request: ChatRequest, target: Target, file_ids: dict, key: str, base: str,
                          route: ModelRoute) -> UpstreamStream:
        store = self.require_store()
        owner = self.owner(target)
        prior, turn = split_history(request.messages)
        if target.conversation_id:
            stored = store.get_conversation(target.conversation_id, owner, with_messages=False)
            if stored is None:
                raise NotFound(f"no conversation {target.conversation_id!r} for this API key: omit "
                               f"{CONVERSATION_HEADER} to start one", code="conversation_not_found", param=CONVERSATION_HEADER)
            coze_id = (stored.metadata or {}).get("coze_conversation_id")
            if not coze_id:
                raise BadRequest(f"conversation {target.conversation_id} is kept by Switchboard, not by Coze: continue it "
                                 "with the model it started with", param=CONVERSATION_HEADER)
            if not target.hints.get("bot_id") and stored.metadata.get("bot_id"):
                target.bot_id = stored.metadata["bot_id"]  # the bot the conversation started with
            if not target.bot_id:
                raise missing_bot()
            conversation_id = target.conversation_id
            additional = enter_messages(turn, file_ids, include_system=False)
            require_user_turn(additional)
        else:
            has_prior_user = any(m.role == "user" for m in prior)
            prior_entered = enter_messages(prior, file_ids) if has_prior_user else []
            additional = enter_messages(turn if has_prior_user else prior + turn, file_ids, include_system=not has_prior_user)
            require_user_turn(additional)
            create = prior_entered if len(prior_entered) <= MAX_CREATE_MESSAGES else []
            if not create:  # a long history goes with the first chat (auto-saved into the conversation)
                additional = prior_entered + additional
                require_user_turn(additional)
            envelope = self.call("POST", "/v1/conversation/create", key, base, body=conversation_body(target.bot_id, create))
            coze_id = str((envelope.data or {}).get("id") or "")
            if not coze_id:
                raise UpstreamError(f"{PROVIDER} created a conversation without an id", provider=PROVIDER)
            title = next((m.text for m in turn if m.text), None) or None
            stored = store.create_conversation(owner, title[:80] if title else None, {
                "provider": "coze", "coze_conversation_id": coze_id, "bot_id": target.bot_id,
                # a declared model may have its own token and base URL: history and deletion use them too
                "model": route.id if route.credentials is not None else None})
            conversation_id = stored.id
        created = not target.conversation_id
        release = self.locks.acquire(coze_id, BUSY_WAIT)
        if release is None:
            raise UpstreamError(f"conversation {conversation_id} is still answering another request; try again when it "
                                "has finished", status=409, code="conversation_busy", retryable=True)
        try:
            body = chat_body(target, additional, self.config)
            deadline = time.monotonic() + BUSY_WAIT
            while True:
                try:
                    response = self.open_stream("/v3/chat", key, base, body, {"conversation_id": coze_id})
                    break
                except ProxyError as error:
                    # another process's chat on this conversation: wait it out briefly
                    if error.code != "conversation_busy" or time.monotonic() > deadline:
                        raise
                    time.sleep(BUSY_RETRY)
            stream = self.chat_stream(response, key, base, release)
        except BaseException:
            release()
            if created:  # nothing was said in it: leave no empty conversation behind
                self.forget_conversation(store, conversation_id, owner, coze_id, key, base)
            raise
        stream.response_headers[CONVERSATION_HEADER] = conversation_id
        return stream

    def forget_conversation(self, store, conversation_id: str, owner: str, coze_id: str, key: str, base: str) -> None:
        try:
            store.delete_conversation(conversation_id, owner)
            self.call("DELETE", f"/v1/conversations/{coze_id}", key, base)
        except Exception as error:  # best effort: the request's own error is what the client must see
            log.info("could not remove the unused conversation %s: %s", conversation_id, error)

    def chat_stream(self, response: requests.Response, key: str, base: str,
                    release: Callable[[], None] | None = None) -> UpstreamStream:
        reader = SSEReader(response, self.name, self.settings)
        decoder = ChatDecoder(key)

        def cancel() -> None:
            reader.cancel()
            if decoder.chat_id and decoder.conversation_id and not decoder.finished:
                # Closing the socket does not stop a Coze chat: cancel it, off
                # the caller's thread (a departing client must not wait for it).
                threading.Thread(target=self.cancel_chat, args=(decoder.conversation_id, decoder.chat_id, key, base),
                                 daemon=True).start()
            if release is not None:
                release()

        stream = UpstreamStream((), on_cancel=cancel)
        stream._events = self.pump(reader, decoder.decode, stream, release)
        return stream

    def pump(self, reader: SSEReader, decode: Callable, stream: UpstreamStream,
             release: Callable[[], None] | None = None, on_end: Callable[[BaseException | None], None] | None = None
             ) -> Iterator[Event]:
        events = reader.events()
        problem: BaseException | None = None
        try:
            for event in decode(events):
                if event.type == "error":
                    # Coze accepted the call: the chat or run happened (and is
                    # saved in its conversation). Repeating it would run it twice.
                    event.error.retryable = False
                if event.type == "finish" or event.type == "error":
                    events.close()
                    stream.finished_at = time.monotonic()
                    if release is not None:
                        release()
                    if on_end is not None:  # before the client sees the end, not after
                        on_end(event.error if event.type == "error" else None)
                yield event
        except ProxyError as error:
            problem = error
            error.retryable = False  # as above: never start the chat again
            if not stream.cancelled.is_set():
                raise
        except GeneratorExit as exit_:
            problem = exit_
            raise
        finally:
            events.close()
            if stream.finished_at is None:
                stream.finished_at = time.monotonic()
            if release is not None:
                release()
            if on_end is not None:
                on_end(problem)

    # -- workflows ------------------------------------------------------

    def open_workflow(self, request: ChatRequest, target: Target, key: str, base: str) -> UpstreamStream:
        store = self.require_store()
        owner = self.owner(target)
        text = last_user_text(request.messages)
        if target.session_id:
            session = store.get_session(target.session_id, owner)
            if session is None:
                raise NotFound(f"no workflow session {target.session_id!r} for this API key",
                               code="workflow_session_not_found", param=SESSION_HEADER)
            if session.status != "interrupted":
                raise BadRequest(f"workflow session {session.id} is {session.status}, not waiting for an answer; "
                                 f"omit {SESSION_HEADER} to start a new run", param=SESSION_HEADER,
                                 code="workflow_session_not_interrupted")
            summary = dict(session.summary)
            body = resume_body(session.workflow_id, summary.get("event_id", ""), int(summary.get("interrupt_type") or 0), text)
            response = self.open_stream("/v1/workflow/stream_resume", key, base, body)
            summary.update(resumes=int(summary.get("resumes") or 0) + 1, last_input=text)
            for name in ("event_id", "interrupt_type", "question", "node_title"):
                summary.pop(name, None)
            try:
                session = store.update_session(session.id, owner, "running", summary) or session
            except BaseException:
                response.close()
                raise
        else:
            body = workflow_body(target, text, self.config)
            response = self.open_stream("/v1/workflow/stream_run", key, base, body)
            try:
                session = store.create_session(owner, target.workflow_id, "running", {"input": text, "last_input": text})
            except BaseException:
                response.close()
                raise
        reader = SSEReader(response, self.name, self.settings)
        decoder = WorkflowDecoder()
        session_id = session.id
        base_summary = dict(session.summary)
        ended = threading.Event()

        def on_end(problem: BaseException | None) -> None:
            if ended.is_set():
                return
            ended.set()
            summary = dict(base_summary)
            if decoder.interrupt is not None:
                status = "interrupted"
                summary.update(event_id=decoder.interrupt.event_id, interrupt_type=decoder.interrupt.interrupt_type,
                               question=decoder.interrupt.question, node_title=decoder.interrupt.node_title)
            elif decoder.finished and not decoder.failed:
                status = "completed"
                summary["output"] = "".join(decoder.text)
            else:
                status = "failed"
                summary["error"] = (getattr(problem, "message", None) or decoder.error
                                    or "cancelled: the client went away")
            try:
                store.update_session(session_id, owner, status, summary)
            except Exception:  # the answer already went out; the session shows the last state it could
                log.exception("could not update workflow session %s", session_id)

        def cancel() -> None:
            reader.cancel()
            if not started.is_set():  # never read: the pump's own ending will not run
                response.close()
                on_end(None)

        started = threading.Event()

        def events() -> Iterator[Event]:
            started.set()
            yield from self.pump(reader, decoder.decode, stream, on_end=on_end)

        stream = UpstreamStream((), on_cancel=cancel)
        stream._events = events()
        stream.response_headers[SESSION_HEADER] = session_id
        return stream
