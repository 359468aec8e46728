"""The Google Gemini provider (generativelanguage.googleapis.com, v1beta).

    router -> GeminiProvider.open(request, route)
        -> request.build_payload -> POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse
                                    (or :generateContent when the client did not ask to stream)
        -> open_upstream: SSE events (or the whole body) -> decode.ResponseDecoder -> canonical events

The key goes in the `x-goog-api-key` header, never in the URL where access
logs would keep it. Error bodies are classified by errors.refine (an invalid
key is a 400, the retry delay sits in the body).
"""
from __future__ import annotations

import base64
from urllib.parse import quote

import requests
import urllib3.exceptions

from ...canonical import ChatRequest
from ...errors import BadRequest
from ..base import ModelRoute, Provider, UpstreamStream
from ..http import UpstreamClient, check_fetchable, fetch_session, open_upstream
from .decode import ResponseDecoder
from .errors import PROVIDER, refine
from .request import build_payload

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # Gemini's inline request limit


class GeminiProvider(Provider):
    name = PROVIDER
    key_variables = ("GEMINI_API_KEY",)
    base_url_variable = "GEMINI_BASE_URL"

    def __init__(self, credentials, settings, store=None) -> None:
        super().__init__(credentials, settings, store)
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
        return open_upstream(self.client, url, body, {"x-goog-api-key": key}, ResponseDecoder(route.upstream_model),
                             stream=request.stream, secrets=(key,), refine_error=refine)

    def download_image(self, url: str) -> tuple[str, str]:
        """Fetch a web image to send inline: Gemini does not fetch arbitrary URLs."""
        settings = self.settings
        check_fetchable(url, settings.fetch_private_urls)
        try:
            # No redirects: a redirect could lead past check_fetchable.
            with fetch_session(settings.fetch_private_urls).get(
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
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError):
            raise BadRequest(f"could not download image {url[:200]!r}", param="messages") from None
        if len(data) > MAX_IMAGE_BYTES:
            raise BadRequest(f"image {url[:200]!r} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB", param="messages")
        return mime, base64.b64encode(data).decode()

