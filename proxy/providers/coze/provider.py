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

import base64
import logging
import os
import threading
import time
from typing import Any, Callable, Iterator, Mapping

import orjson
import requests
import urllib3.exceptions

from ...canonical import ChatRequest, Event, ImagePart
from ...errors import BadRequest, NotFound, ProxyError, UpstreamError
from ..base import ModelRoute, Provider, UpstreamStream, capabilities
from ..http import SSEReader, UpstreamClient, error_from_response, redact, transport_error
from .decode import PROVIDER, ChatDecoder, WorkflowDecoder, envelope_error, parse_envelope
from .request import (
    MAX_CREATE_MESSAGES,
    MODES,
    CozeConfig,
    Target,
    chat_body,
    conversation_body,
    data_url_images,
    enter_messages,
    last_user_text,
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


def config_from(options: Mapping[str, Any], environ: Mapping[str, str]) -> CozeConfig:
    """YAML values win over the environment (as for the key and base URL)."""
    values: dict[str, Any] = {}
    for name, variable in OPTIONS.items():
        value = options.get(name)
        if value is None and name == "default_model_type":
            value = options.get("model_type")
        if value is None:
            value = environ.get(variable) or None
        if value is not None:
            values[name] = str(value)
    mode = values.pop("default_model_type", "chat").strip().lower()
    if mode not in MODES:
        raise ValueError(f"DEFAULT_MODEL_TYPE (providers.coze.default_model_type) must be one of "
                         f"{', '.join(MODES)}; got {mode!r}")
    return CozeConfig(default_mode=mode, **values)


class ConversationLocks:
    """One running chat per Coze conversation in this process."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, list] = {}  # id -> [lock, users]

    def acquire(self, conversation_id: str, timeout: float) -> Callable[[], None] | None:
        """A release function (idempotent), or None after `timeout` seconds."""
        with self._guard:
            entry = self._locks.setdefault(conversation_id, [threading.Lock(), 0])
            entry[1] += 1
        if not entry[0].acquire(timeout=timeout):
            self._forget(conversation_id, entry)
            return None
        released = threading.Event()

        def release() -> None:
            with self._guard:
                if released.is_set():
                    return
                released.set()
            entry[0].release()
            self._forget(conversation_id, entry)

        return release

    def _forget(self, conversation_id: str, entry: list) -> None:
        with self._guard:
            entry[1] -= 1
            if entry[1] == 0 and self._locks.get(conversation_id) is entry:
                del self._locks[conversation_id]


class CozeProvider(Provider):
    name = "coze"
    key_variables = ("COZE_API_KEY",)
    base_url_variable = "COZE_BASE_URL"
    settings_read = OPTIONS

    def __init__(self, credentials, settings, store=None, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(credentials, settings)
        self.store = store
        self.config = config_from(credentials.options, os.environ if environ is None else environ)
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

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def fail(self, error: ProxyError, path: str, logid: str | None, key: str) -> ProxyError:
        """Log a Coze error with its logid (the key never: messages are redacted)."""
        error.message = redact(error.message, (key,))
        error.args = (error.message,)
        log.warning("coze %s failed: %s (status %s, logid %s)", path, error.message, error.status, logid or "-")
        return error

    def call(self, method: str, path: str, key: str, base: str, *, params: dict | None = None, body: Any = None,
             files: dict | None = None) -> Any:
        """One JSON API call; returns the envelope's `data`, raises ProxyError."""
        url = f"{base}{path}"
        kwargs: dict[str, Any] = {"params": params, "headers": self.headers(key),
                                  "timeout": (self.settings.connect_timeout, self.settings.idle_timeout)}
        if files is not None:
            kwargs["files"] = files
        elif body is not None:
            kwargs["data"] = orjson.dumps(body)
            kwargs["headers"]["Content-Type"] = "application/json"
        try:
            response = self.client.session.request(method, url, allow_redirects=False, **kwargs)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise transport_error(exc, self.name, self.settings) from None
        logid = response.headers.get("x-tt-logid")
        try:
            if response.status_code >= 400:
                raise self.fail(error_from_response(response, self.name, (key,)), path, logid, key)
            envelope = parse_envelope(response.content, logid)
        finally:
            response.close()
        if envelope.code != 0:
            raise self.fail(envelope_error(envelope), path, envelope.logid, key)
        return envelope

    def open_stream(self, path: str, key: str, base: str, body: dict, params: dict | None = None) -> requests.Response:
        """POST a streaming call; a JSON answer (Coze's HTTP-200 errors) raises."""
        query = "&".join(f"{name}={value}" for name, value in (params or {}).items())
        url = f"{base}{path}" + (f"?{query}" if query else "")
        headers = {**self.headers(key), "Accept": "text/event-stream"}
        response = self.client.post(url, body, headers, stream=True, secrets=(key,))
        content_type = response.headers.get("Content-Type", "")
        if "text/event-stream" in content_type:
            return response
        logid = response.headers.get("x-tt-logid")
        try:
            raw = response.raw.read(64 * 1024, decode_content=True)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise transport_error(exc, self.name, self.settings) from None
        finally:
            response.close()
        envelope = parse_envelope(raw, logid)
        if envelope.code != 0:
            raise self.fail(envelope_error(envelope), path, envelope.logid, key)
        raise self.fail(UpstreamError(f"{PROVIDER} answered a streaming call with {content_type or 'no content type'}",
                                      code="malformed_response", provider=PROVIDER), path, logid, key)

    def upload_images(self, request: ChatRequest, key: str, base: str) -> dict[str, str]:
        """data: URL images -> Coze file ids (Coze accepts only public URLs or files)."""
        file_ids: dict[str, str] = {}
        for url in data_url_images(request.messages):
            if url in file_ids:
                continue
            try:
                media_type, data = ImagePart(url).data()
                content = base64.b64decode(data, validate=True)
            except ValueError:
                raise BadRequest("an image data URL is not valid base64 (data:<type>;base64,<data>)",
                                 param="messages") from None
            extension = media_type.rsplit("/", 1)[-1] or "bin"
            envelope = self.call("POST", "/v1/files/upload", key, base,
                                 files={"file": (f"image.{extension}", content, media_type)})
            file_ids[url] = str((envelope.data or {}).get("id"))
        return file_ids

    # -- open -----------------------------------------------------------

    def open(self, request: ChatRequest, route: ModelRoute) -> UpstreamStream:
        key, base = self.key(route), self.base_url(route)
        target = resolve_target(request, route.upstream_model, self.config)
        if target.mode == "workflow":
            return self.open_workflow(request, target, key, base)
        outputs = pending_tool_outputs(request.messages)
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
        return self.open_conversation(request, target, file_ids, key, base)

    def owner(self, target: Target) -> str:
        return str(target.hints.get("owner") or "")

    def require_store(self):
        if self.store is None:
            raise UpstreamError("this mode needs the Switchboard store, which is not available", code="store_unavailable",
                                retryable=False)
        return self.store

    def open_conversation(self, request: ChatRequest, target: Target, file_ids: dict, key: str, base: str) -> UpstreamStream:
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
                target.bot_id = stored.metadata["bot_id"]
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
                "provider": "coze", "coze_conversation_id": coze_id, "bot_id": target.bot_id})
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
        decoder = ChatDecoder()

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

    def cancel_chat(self, conversation_id: str, chat_id: str, key: str, base: str) -> None:
        try:
            self.call("POST", "/v3/chat/cancel", key, base, body={"conversation_id": conversation_id, "chat_id": chat_id})
            log.info("coze chat %s cancelled (client gone)", chat_id)
        except ProxyError as error:  # finished meanwhile (4104), or unreachable: nothing more to do
            log.info("coze chat %s not cancelled: %s", chat_id, error.message)

    def pump(self, reader: SSEReader, decode: Callable, stream: UpstreamStream,
             release: Callable[[], None] | None = None, on_end: Callable[[BaseException | None], None] | None = None
             ) -> Iterator[Event]:
        events = reader.events()
        problem: BaseException | None = None
        try:
            for event in decode(events):
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
            summary.update(status_detail=None, resumes=int(summary.get("resumes") or 0) + 1, last_input=text)
            for name in ("event_id", "interrupt_type", "question"):
                summary.pop(name, None)
            session = store.update_session(session.id, owner, "running", summary) or session
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

    # -- conversation management (the /v1/conversations endpoints) --------

    def conversation_history(self, coze_conversation_id: str) -> list[dict]:
        """Questions and answers of a Coze conversation, oldest first."""
        key, base = self.key(), self.base_url()
        messages: list[dict] = []
        after: str | None = None
        for _ in range(100):  # 50 a page: 5,000 messages at most
            body: dict[str, Any] = {"order": "asc", "limit": 50}
            if after:
                body["after_id"] = after
            envelope = self.call("POST", "/v1/conversation/message/list", key, base,
                                 params={"conversation_id": coze_conversation_id}, body=body)
            page = envelope.data or []
            for message in page:
                if message.get("type") not in ("question", "answer"):
                    continue
                messages.append({"id": str(message.get("id")), "role": message.get("role"),
                                 "content": message.get("content"), "content_type": message.get("content_type"),
                                 "created_at": int(message.get("created_at") or 0)})
            if not envelope.body.get("has_more") or not page:
                break
            after = str(envelope.body.get("last_id") or page[-1].get("id"))
        return messages

    def delete_conversation(self, coze_conversation_id: str) -> None:
        """Deletes the conversation on Coze (not only its context)."""
        self.call("DELETE", f"/v1/conversations/{coze_conversation_id}", self.key(), self.base_url())
