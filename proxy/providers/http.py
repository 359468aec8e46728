"""HTTP plumbing shared by the network providers (all provider IO goes here).

    provider.open() -> open_upstream(client, url, body, headers, decoder, stream=...)
        -> UpstreamClient.post(...)          connect, send, check status
        -> SSEReader(response).events()      SSE events, errors mapped   (streamed)
           BodyReader(response).read()       the whole body, per read     (not streamed)
        -> decoder.feed / end / whole         canonical events (the provider's pure decoder)
    client gone     -> UpstreamStream.cancel() -> reader.cancel()  shuts the socket down

One pooled `requests.Session` per upstream client and process, created on
first use (never in gunicorn's master). Timeouts: a connect timeout, an idle
timeout that resets on every byte (the socket read timeout), and a total
ceiling checked between events. Upstream keys never appear in errors or logs.
"""
from __future__ import annotations

import email.utils
import functools
import ipaddress
import os
import socket
import time
from typing import Any, Callable, Iterator, Mapping

import orjson
import requests
import urllib3.connection
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .. import sse
from ..canonical import Event
from ..config import Settings
from ..errors import (
    BadRequest,
    ProxyError,
    UpstreamError,
    UpstreamTimeout,
    from_upstream_status,
)
from .base import HOST_NAME, Decoder, UpstreamStream, pending_call
from .redaction import redact, scrub_error

MAX_ERROR_BODY = 64 * 1024
# A non-streamed answer larger than this is refused rather than held in memory
# (generated images come inline, so it is generous).
MAX_WHOLE_BODY = 64 * 1024 * 1024
# One streamed event may not grow past this (Gemini sends generated images as one line).
MAX_EVENT_BYTES = 64 * 1024 * 1024
DRAIN_TIMEOUT = 0.05  # seconds to wait for the end of a body after the last event
DRAIN_READS = 4


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: `retry-after-ms`, then `retry-after` (seconds or HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def error_message(body: bytes) -> tuple[str, str | None]:
    """(message, upstream error type or code) from any vendor's JSON error body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()[:500] or "no error body", None
    if isinstance(data, list) and data:  # Gemini sometimes wraps errors in a list
        data = data[0]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            kind = error.get("code") if isinstance(error.get("code"), str) else None
            return str(error.get("message") or error), error.get("type") or error.get("status") or kind
        return str(error), None
    return str(data), None


def error_from_response(
    response: requests.Response,
    provider: str,
    secrets: tuple[str, ...] = (),
    refine: Callable[[ProxyError, bytes], ProxyError] | None = None,
) -> ProxyError:
    """The ProxyError for a non-2xx answer; `refine(error, body)` lets a vendor
    whose error bodies say more than the status (Gemini: an invalid key is a
    400, the retry delay sits in the body) return a better-fitting error."""
    body = response.raw.read(MAX_ERROR_BODY, decode_content=True) if response.raw is not None else b""
    message, kind = error_message(body)
    headers = response.headers
    error = from_upstream_status(
        response.status_code,
        f"{provider} returned {response.status_code}: {redact(message, secrets)}",
        retry_after=parse_retry_after(headers),
        provider=provider,
    )
    should_retry = headers.get("x-should-retry")
    if should_retry in ("true", "false"):
        error.retryable = should_retry == "true"
    if kind == "insufficient_quota" or "insufficient_quota" in message:
        error.retryable = False  # a quota is not a transient rate limit
        error.code = "insufficient_quota"
    return refine(error, body) if refine is not None else error


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Anything but a public unicast address: private, loopback, link-local,
    multicast, reserved, unspecified, shared, documentation ranges."""
    mapped = getattr(address, "ipv4_mapped", None) or getattr(address, "sixtofour", None)
    if mapped is not None and _refused(mapped):
        return True
    return (not address.is_global or address.is_multicast or address.is_reserved or address.is_unspecified
            or address.is_loopback or address.is_link_local or address.is_private)


def check_fetchable(url: str, allow_private: bool, param: str = "messages") -> None:
    """Refuse to fetch a client-given URL that is malformed or resolves to a
    non-public address (server-side request forgery), unless the deployment
    allows private addresses (SWITCHBOARD_FETCH_PRIVATE_URLS)."""
    shown = repr(url[:200])
    try:
        parsed = urllib3.util.parse_url(url)
    except (urllib3.exceptions.LocationParseError, ValueError):
        raise BadRequest(f"image URL {shown} is not a valid URL", param=param) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BadRequest(f"image URL {shown}: use an http(s) or data: URL", param=param)
    host = parsed.host
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(literal.split("%")[0])
    except ValueError:
        address = None
        # ASCII names only (an internationalized name goes in its xn-- form):
        # what is checked here is then exactly what the HTTP client connects to.
        if not host.isascii() or not HOST_NAME.fullmatch(host):
            raise BadRequest(f"image URL {shown}: its host is not a valid host name", param=param) from None
    if allow_private:
        return
    if address is not None:
        addresses = [address]
    else:
        try:
            infos = socket.getaddrinfo(host, parsed.port or 443, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            raise BadRequest(f"image URL {shown}: its host does not resolve", param=param) from None
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if any(_refused(found) for found in addresses):
        raise BadRequest(f"image URL {shown} points at a non-public address; send the image as a data: URL", param=param)


class _PublicOnly:
    """Connects only to a public address, resolved at connect time: the address
    checked is the address connected to, so a name that resolves to a public
    address for check_fetchable and to a private one a moment later (DNS
    rebinding) still cannot reach the private network. The name stays the
    Host header, the TLS server name and the name the certificate must match."""

    def _new_conn(self):
        try:
            infos = socket.getaddrinfo(self._dns_host, self.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise urllib3.exceptions.NewConnectionError(self, f"{self.host} does not resolve") from exc
        addresses = [info[4][0] for info in infos]
        if not addresses or any(_refused(ipaddress.ip_address(a.split("%")[0])) for a in addresses):
            raise urllib3.exceptions.NewConnectionError(self, f"{self.host} resolves to a non-public address")
        name, self._dns_host = self._dns_host, addresses[0]
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


class _PublicHTTPConnection(_PublicOnly, urllib3.connection.HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicOnly, urllib3.connection.HTTPSConnection):
    pass


class _PublicHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _PublicAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PublicHTTPPool, "https": _PublicHTTPSPool}


_fetch_sessions: dict[tuple[int, bool], requests.Session] = {}


def fetch_session(allow_private: bool) -> requests.Session:
    """The session for client-given URLs (image downloads), per process: no
    proxies from the environment, no cookies kept, and unless private
    addresses are allowed, connections only to public addresses."""
    key = (os.getpid(), allow_private)
    session = _fetch_sessions.get(key)
    if session is None:
        session = requests.Session()
        session.trust_env = False
        adapter = HTTPAdapter(max_retries=0) if allow_private else _PublicAdapter(max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _fetch_sessions[key] = session
    session.cookies.clear()
    return session


def transport_error(exc: BaseException, provider: str, settings: Settings) -> ProxyError:
    """Map requests/urllib3/socket failures to the error tree."""
    if isinstance(exc, (requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError)):
        return UpstreamTimeout(f"{provider}: connecting took longer than {settings.connect_timeout:g}s", provider=provider)
    if isinstance(exc, (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError)):
        return UpstreamTimeout(
            f"{provider} sent nothing for {settings.idle_timeout:g}s (idle timeout)", code="idle_timeout", provider=provider
        )
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return UpstreamError(f"{provider}: could not connect to the upstream", code="connection_error", provider=provider)
    return UpstreamError(f"{provider}: the upstream connection was cut mid-response", code="connection_cut", provider=provider)


def _hang_up(connection: Any) -> None:
    """Shut a connection's socket down: a read blocked on it returns at once
    (the call then fails and urllib3 drops the connection), and the upstream
    sees us leave."""
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _watch(connection: Any) -> None:
    pending = pending_call()
    if pending is not None:
        pending.on_cancel(functools.partial(_hang_up, connection))


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self)  # a new connection: hung up if cancelled while it was made


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        if connection.sock is not None:  # a pooled one, already connected
            _watch(connection)
        return connection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        if connection.sock is not None:
            _watch(connection)
        return connection


class CancellableAdapter(HTTPAdapter):
    """An adapter whose connections a Pending (providers/base.py) can hang up
    while the request waits for the upstream's answer."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class UpstreamClient:
    """A pooled session for one upstream vendor, per process."""

    def __init__(self, provider: str, settings: Settings, pool_size: int = 1000) -> None:
        self.provider = provider
        self.settings = settings
        self.pool_size = pool_size
        self._session: requests.Session | None = None
        self._pid = 0

    @property
    def session(self) -> requests.Session:
        if self._session is None or self._pid != os.getpid():
            session = requests.Session()
            # Sized for a gevent worker's many concurrent streams to one host;
            # retries are ours (router), not urllib3's.
            adapter = CancellableAdapter(pool_connections=8, pool_maxsize=self.pool_size, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.trust_env = False
            self._session, self._pid = session, os.getpid()
        return self._session

    def post(
        self,
        url: str,
        body: Any,
        headers: Mapping[str, str],
        *,
        stream: bool = True,
        secrets: tuple[str, ...] = (),
        refine_error: Callable[[ProxyError, bytes], ProxyError] | None = None,
    ) -> requests.Response:
        """POST JSON; returns a 2xx response or raises a ProxyError (body read and closed)."""
        settings = self.settings
        session = self.session
        # Prepared here and handed to send(), as Session.post would, minus its
        # merging of the session's cookie jar (cookies one upstream answer set
        # would go out with every later client's request), .netrc and proxy
        # environment (trust_env is off): ~100 µs a request. The session's
        # default headers (User-Agent, Accept-Encoding, keep-alive) still go out.
        merged = CaseInsensitiveDict(session.headers)
        merged["Content-Type"] = "application/json"
        merged.update(headers)
        prepared = requests.PreparedRequest()
        try:
            prepared.prepare_method("POST")
            prepared.prepare_url(url, None)
            prepared.prepare_headers(merged)
            prepared.prepare_cookies(None)  # an empty jar: redirects expect one
            prepared.prepare_body(orjson.dumps(body), None)
            prepared.prepare_hooks(None)
            # Never follow a redirect: requests strips only Authorization when
            # the host changes, so x-api-key / x-goog-api-key would go along.
            response = session.send(
                prepared,
                stream=stream,
                timeout=(settings.connect_timeout, settings.idle_timeout),
                allow_redirects=False,
            )
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise transport_error(exc, self.provider, settings) from None
        # Sent (redirects included): the response would keep its request for
        # the whole stream, body, headers and cookie jar with it. orjson's
        # output also occupies at least ~4 KB whatever its length, so the body
        # alone is 4 KB per open stream for a one-line prompt, the whole
        # conversation for a long one.
        response.request = None
        if 300 <= response.status_code < 400:
            status = response.status_code
            response.close()
            # The Location is not repeated: it is the upstream's to give, and may carry anything.
            raise UpstreamError(
                f"{self.provider} answered with a redirect (HTTP {status}), which is not followed so that the key "
                "never goes to another address: set the provider's base URL to the final address",
                code="upstream_redirect", retryable=False, upstream_status=status, provider=self.provider,
            )
        if response.status_code >= 400:
            try:
                raise error_from_response(response, self.provider, secrets, refine_error)
            finally:
                response.close()
        return response


class SSEReader:
    """Reads one streamed upstream response as SSE events; cancel() from anywhere."""

    __slots__ = ("response", "provider", "settings", "started", "cancelled")

    def __init__(self, response: requests.Response, provider: str, settings: Settings) -> None:
        self.response = response
        self.provider = provider
        self.settings = settings
        self.started = time.monotonic()
        self.cancelled = False

    def events(self) -> Iterator[sse.Event]:
        """SSE events; raises ProxyError on timeouts and cut connections.
        Closes the response when done, cut or cancelled."""
        deadline = self.started + self.settings.total_timeout
        budget = sse.Budget(MAX_EVENT_BYTES)
        try:
            for event in sse.events_of(sse.iter_raw(self.response, budget)):
                budget.used = 0
                yield event
                if time.monotonic() > deadline:
                    raise UpstreamTimeout(
                        f"{self.provider}: the response took longer than {self.settings.total_timeout:g}s (total timeout)",
                        code="total_timeout",
                        provider=self.provider,
                    )
        except ProxyError:
            raise
        except sse.EventTooLarge:
            raise UpstreamError(f"{self.provider} sent more than {MAX_EVENT_BYTES // (1024 * 1024)} MB without "
                                "ending a stream event", code="event_too_large", retryable=False,
                                provider=self.provider) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if not self.cancelled:
                raise transport_error(exc, self.provider, self.settings) from None
        finally:
            if not self.cancelled:
                self._drain()
            self.response.close()

    def _drain(self) -> None:
        """Read what is left of the body so the connection goes back to the pool.

        Providers stop reading at their last event ([DONE], message_stop); the
        chunked terminator behind it has normally arrived with it. Reading it
        lets urllib3 return the connection to the pool, so the next request
        skips a TCP connect and a resolver round trip. An upstream that sends
        more, or nothing, is not waited for: close() then drops the connection.
        """
        raw = self.response.raw
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is None:  # already released (body read to the end) or closed
            return
        try:
            sock.settimeout(DRAIN_TIMEOUT)  # urllib3 sets its own again on reuse
            for _ in range(DRAIN_READS):
                if not raw.read1(sse.READ_SIZE, decode_content=True):
                    return
        except Exception:  # timeout or broken: close() drops the connection
            pass

    def cancel(self) -> None:
        """Wake a reader blocked on the socket; it then closes the response.
        Never close() here: that races the reader (docs/deployment.md, "Client disconnect")."""
        self.cancelled = True
        try:
            self.response.raw.shutdown()
        except Exception:  # already closed or never connected
            pass


class BodyReader:
    """A non-streamed answer, read inside the event iteration (so the idle
    timeout applies per read and a departed client can cut it short)."""

    __slots__ = ("response", "provider", "settings", "cancelled")

    def __init__(self, response: requests.Response, provider: str, settings: Settings) -> None:
        self.response = response
        self.provider = provider
        self.settings = settings
        self.cancelled = False

    def read(self) -> bytes:
        chunks = []
        size = 0
        try:
            while chunk := self.response.raw.read1(65536, decode_content=True):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_WHOLE_BODY:
                    raise UpstreamError(f"{self.provider} answered with a body larger than "
                                        f"{MAX_WHOLE_BODY // (1024 * 1024)} MB", code="response_too_large",
                                        retryable=False, provider=self.provider)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if not self.cancelled:
                raise transport_error(exc, self.provider, self.settings) from None
        finally:
            self.response.close()
        return b"".join(chunks)

    def cancel(self) -> None:
        self.cancelled = True
        try:
            self.response.raw.shutdown()  # never close() from another thread
        except Exception:  # already closed
            pass


def open_upstream(
    client: UpstreamClient,
    url: str,
    body: Any,
    headers: Mapping[str, str],
    decoder: Decoder,
    *,
    stream: bool,
    secrets: tuple[str, ...] = (),
    refine_error: Callable[[ProxyError, bytes], ProxyError] | None = None,
    on_response: Callable[[Mapping[str, str], UpstreamStream], None] | None = None,
) -> UpstreamStream:
    """The one way a network provider calls its upstream.

    `on_response(headers, upstream)` lets a provider read the upstream's
    response headers once the call is accepted, e.g. to set
    `upstream.response_headers` for the client (before any event is read).

    POSTs (errors before the first byte raise, with their real status), then
    returns the UpstreamStream that reads the SSE stream or the whole body
    through `decoder`. It owns cancel (shuts the socket down), `finished_at`
    (set when the upstream is released, before the terminal event goes out),
    closing the response, and the redaction of `secrets` from every error."""
    secrets = tuple(s for s in secrets if s)
    try:
        response = client.post(url, body, headers, stream=True, secrets=secrets, refine_error=refine_error)
    except ProxyError as error:
        raise scrub_error(error, secrets) from None
    content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if stream and content_type == "application/json":
        # A stream was asked for and a JSON body came back (an error object in
        # a 200, a proxy's answer): read it whole, so what it says is reported.
        stream = False
    if stream:
        reader = SSEReader(response, client.provider, client.settings)
        upstream = UpstreamStream((), on_cancel=reader.cancel)
        upstream._events = _streamed(reader, decoder, upstream, secrets)
    else:
        whole = BodyReader(response, client.provider, client.settings)
        upstream = UpstreamStream((), on_cancel=whole.cancel)
        upstream._events = _whole(whole, decoder, upstream, secrets)
    if on_response is not None:
        on_response(response.headers, upstream)
    return upstream


# What a decoder raises when an upstream sends JSON of an unexpected shape
# (a list where an object belongs, a number for a name): an upstream failure,
# reported without the data (which may echo anything), never a 500.
DECODER_FAULTS = (AttributeError, TypeError, KeyError, IndexError, ValueError)


def _unreadable(provider: str, exc: BaseException) -> UpstreamError:
    return UpstreamError(f"{provider} sent an answer this server could not read ({type(exc).__name__})",
                         code="malformed_response", provider=provider)


def _scrubbed(event: Event, secrets: tuple[str, ...]) -> Event:
    if event.type == "error":
        scrub_error(event.error, secrets)
    return event


def _streamed(reader: SSEReader, decoder: Decoder, upstream: UpstreamStream, secrets: tuple[str, ...]) -> Iterator[Event]:
    events = reader.events()

    def release() -> None:
        # Consumers stop at the terminal event (streaming.guard): release the
        # upstream before handing it over, not when this generator is collected.
        events.close()
        upstream.finished_at = time.monotonic()

    try:
        try:
            for sse_event in events:
                for event in decoder.feed(sse_event):
                    if event.type == "finish" or event.type == "error":
                        release()
                        yield _scrubbed(event, secrets)
                        return
                    yield event
                if decoder.done:
                    break
            if reader.cancelled:
                return
            closing = list(decoder.end())
        except (ProxyError, *DECODER_FAULTS) as error:
            if reader.cancelled or upstream.cancelled.is_set():
                return
            if not isinstance(error, ProxyError):
                error = _unreadable(reader.provider, error)
            partial = list(decoder.interrupted())
            release()
            yield from partial
            raise scrub_error(error, secrets) from None
        release()
        for event in closing:
            yield _scrubbed(event, secrets)
    finally:
        events.close()  # a no-op when already closed
        if upstream.finished_at is None:
            upstream.finished_at = time.monotonic()


def _whole(body: BodyReader, decoder: Decoder, upstream: UpstreamStream, secrets: tuple[str, ...]) -> Iterator[Event]:
    try:
        data = body.read()
    except ProxyError as error:
        raise scrub_error(error, secrets) from None
    finally:
        upstream.finished_at = time.monotonic()
    if body.cancelled:
        return
    try:
        events = list(decoder.whole(data))
    except ProxyError as error:
        raise scrub_error(error, secrets) from None
    except DECODER_FAULTS as error:
        raise _unreadable(body.provider, error) from None
    for event in events:
        yield _scrubbed(event, secrets)
