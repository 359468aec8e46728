"""The Coze provider's HTTP calls (IO): JSON API calls, streaming calls,
uploads, chat cancels and conversation management, with Coze's error
handling in one place.

    CozeProvider (provider.py) -> CozeCalls.call / open_stream / upload_images / cancel_chat
                               -> UpstreamClient (providers/http.py) -> Coze
    /v1/conversations endpoints -> CozeCalls.conversation_history / delete_conversation

Coze answers most errors with HTTP 200 and a JSON `{code, msg}` body, also to
streaming requests: the content type is checked before any SSE parsing and
the code mapped (errors.py); every failure is logged with Coze's logid, and
the key is redacted from every message. Redirects are never followed.
"""
from __future__ import annotations

import base64
import logging
import threading
from typing import Any, Callable
from urllib.parse import urlencode

import orjson
import requests
import urllib3.exceptions

from ...canonical import ChatRequest, ImagePart
from ...errors import BadRequest, ProxyError, UpstreamError
from ..http import error_from_response, redact, transport_error
from .errors import PROVIDER, envelope_error, parse_envelope
from .request import data_url_images

log = logging.getLogger("proxy.providers.coze.provider")


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


class CozeCalls:
    """Mixed into CozeProvider: needs `self.client` (an UpstreamClient),
    `self.settings`, `self.name`, `self.key()` and `self.base_url()`."""

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
            if 300 <= response.status_code < 400:  # never followed: the key must not go elsewhere
                raise self.fail(UpstreamError(f"{PROVIDER} answered with a redirect (HTTP {response.status_code}), which is "
                                              "not followed: set COZE_BASE_URL to the final address",
                                              code="upstream_redirect", retryable=False, provider=PROVIDER),
                                path, logid, key)
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
        url = f"{base}{path}" + (f"?{urlencode(params)}" if params else "")
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

    def cancel_chat(self, conversation_id: str, chat_id: str, key: str, base: str) -> None:
        try:
            self.call("POST", "/v3/chat/cancel", key, base, body={"conversation_id": conversation_id, "chat_id": chat_id})
            log.info("coze chat %s cancelled (client gone)", chat_id)
        except ProxyError as error:  # finished meanwhile (4104), or unreachable: nothing more to do
            log.info("coze chat %s not cancelled: %s", chat_id, error.message)


    def conversation_history(self, coze_conversation_id: str, route=None) -> list[dict]:
        """Questions and answers of a Coze conversation, oldest first."""
        key, base = self.key(route), self.base_url(route)
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

    def delete_conversation(self, coze_conversation_id: str, route=None) -> None:
        """Deletes the conversation on Coze (not only its context)."""
        self.call("DELETE", f"/v1/conversations/{coze_conversation_id}", self.key(route), self.base_url(route))
