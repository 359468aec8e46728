"""The Google Gemini provider (generativelanguage.googleapis.com, v1beta).

    router -> GeminiProvider.open(request, route)
        -> request.build_payload -> POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse
                                    (or :generateContent when the client did not ask to stream)
        -> SSEReader events -> decode.ResponseDecoder -> canonical events

The key goes in the `x-goog-api-key` header, never in the URL where access
logs would keep it. Error bodies are classified by errors.refine (an invalid
key is a 400, the retry delay sits in the body). See docs/gemini.md.
"""
from __future__ import annotations

import base64
import time
from typing import Callable, Iterator
from urllib.parse import quote

import requests
import urllib3.exceptions

from ...canonical import ChatRequest, Event
from ...errors import BadRequest
from ..base import ModelRoute, Provider, UpstreamStream
from ..http import SSEReader, UpstreamClient, check_fetchable, transport_error
from .decode import ResponseDecoder
from .errors import PROVIDER, refine
from .request import build_payload

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # Gemini's inline request limit


class GeminiProvider(Provider):
    name = PROVIDER

    def __init__(self, credentials, settings) -> None:
        super().__init__(credentials, settings)
        self.client = UpstreamClient(PROVIDER, settings)

    def url(self, base_url: str | None, model: str, stream: bool) -> str:
        base = (base_url or DEFAULT_BASE_URL).rstrip("/")
        if base.endswith("/v1beta"):
            base = base[: -len("/v1beta")]
        model = model.removeprefix("models/")  # `models/models/...` is a 404
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{base}/v1beta/models/{quote(model, safe='.-_')}:{method}"

    def open(self, request: ChatRequest, route: ModelRoute) -> UpstreamStream:
        credentials = route.credentials or self.credentials
        key = credentials.api_key or ""
        body = build_payload(request, route.upstream_model, route.params, self.download_image)
        url = self.url(credentials.base_url, route.upstream_model, request.stream)
        response = self.client.post(
            url, body, {"x-goog-api-key": key}, stream=True, secrets=(key,), refine_error=refine
        )
        decoder = ResponseDecoder(route.upstream_model)

        def finished() -> None:
            stream.finished_at = time.monotonic()

        if request.stream:
            reader = SSEReader(response, PROVIDER, self.settings)
            stream = UpstreamStream(self._stream_events(reader, decoder, finished), on_cancel=reader.cancel)
        else:
            whole = WholeBody(response, self.settings)
            stream = UpstreamStream(self._whole_events(whole, decoder, finished), on_cancel=whole.cancel)
        return stream

    @staticmethod
    def _stream_events(reader: SSEReader, decoder: ResponseDecoder, finished: Callable[[], None]) -> Iterator[Event]:
        try:
            for event in reader.events():
                if event.data:
                    yield from decoder.feed_bytes(event.data)
            if not reader.cancelled:
                yield from decoder.end()
        finally:
            finished()

    @staticmethod
    def _whole_events(body: "WholeBody", decoder: ResponseDecoder, finished: Callable[[], None]) -> Iterator[Event]:
        try:
            data = body.read()
            if not body.cancelled:
                yield from decoder.feed_bytes(data)
                yield from decoder.end()
        finally:
            finished()

    def download_image(self, url: str) -> tuple[str, str]:
        """Fetch a web image to send inline: Gemini does not fetch arbitrary URLs."""
        settings = self.settings
        check_fetchable(url, settings.fetch_private_urls)
        try:
            # No redirects: a redirect could lead past check_fetchable.
            with self.client.session.get(
                url, stream=True, allow_redirects=False, timeout=(settings.connect_timeout, settings.idle_timeout)
            ) as response:
                if response.is_redirect:
                    raise BadRequest(f"image URL {url[:200]!r} redirects: send the final URL", param="messages")
                if response.status_code >= 400:
                    raise BadRequest(f"could not download image {url[:200]!r}: HTTP {response.status_code}", param="messages")
                mime = (response.headers.get("Content-Type") or "").split(";")[0].strip()
                if not mime.startswith("image/"):
                    raise BadRequest(f"{url[:200]!r} is not an image (content type {mime or 'missing'!r})", param="messages")
                data = response.raw.read(MAX_IMAGE_BYTES + 1, decode_content=True)
        except requests.RequestException:
            raise BadRequest(f"could not download image {url[:200]!r}", param="messages") from None
        if len(data) > MAX_IMAGE_BYTES:
            raise BadRequest(f"image {url[:200]!r} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB", param="messages")
        return mime, base64.b64encode(data).decode()


class WholeBody:
    """The non-streaming answer, read inside the event iteration (so the
    idle timeout applies per read and a departed client can cut it short)."""

    __slots__ = ("response", "settings", "cancelled")

    def __init__(self, response: requests.Response, settings) -> None:
        self.response = response
        self.settings = settings
        self.cancelled = False

    def read(self) -> bytes:
        chunks = []
        try:
            while chunk := self.response.raw.read1(65536, decode_content=True):
                chunks.append(chunk)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if not self.cancelled:
                raise transport_error(exc, PROVIDER, self.settings) from None
        finally:
            self.response.close()
        return b"".join(chunks)

    def cancel(self) -> None:
        self.cancelled = True
        try:
            self.response.raw.shutdown()
        except Exception:  # already closed
            pass
