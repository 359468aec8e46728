"""Upstream connections are pooled: a finished stream hands its connection back.

Providers stop reading at their last event ([DONE], message_stop); the
reader then reads the rest of the body (the chunked terminator) so that the
next request to the same upstream reuses the open connection instead of
connecting again (SSEReader._drain in proxy/providers/http.py).

The upstream here is the benchmark's fake (bench/fake_upstream.py, its own
process): unlike Werkzeug's server, which answers streams with
`Connection: close`, it keeps connections alive as the real APIs do.
"""
from __future__ import annotations

import pytest
import requests

from bench.processes import FakeUpstream
from proxy import create_app
from proxy.canonical import ChatRequest, Message, TextPart, accumulate
from proxy.config import ProviderSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def keepalive_upstream(tmp_path):
    fake = FakeUpstream(tmp_path / "fake.log")
    fake.configure(chunks=3, ttft=0, pace=0)
    yield fake
    fake.close()


def pooled_socket_ports(router, vendor: str, url: str) -> list:
    """Local ports of the connections idle in the pool to `url` (None: closed)."""
    session = router.providers[vendor].client.session
    pool = session.get_adapter(url).get_connection_with_tls_context(
        session.prepare_request(requests.Request("POST", url)), verify=True
    )
    return [conn.sock.getsockname()[1] if conn.sock else None for conn in list(pool.pool.queue) if conn is not None]


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_sequential_streams_reuse_one_open_upstream_connection(keepalive_upstream, vendor):
    base_url = keepalive_upstream.url + ("/v1" if vendor == "openai" else "")
    app = create_app({"max_retries": 0, "providers": {vendor: ProviderSettings(api_key="sk-bench-0123456789", base_url=base_url)}})
    router = app.extensions["switchboard"].router
    seen = []
    for _ in range(3):
        result = accumulate(router.open(ChatRequest(model=f"{vendor}/bench-model", messages=[Message("user", (TextPart("hi"),))])))
        assert result.text == "tok0 tok1 tok2 " and result.finish.unified == "stop"
        seen.append(pooled_socket_ports(router, vendor, keepalive_upstream.url))
    assert len(seen[0]) == 1 and seen[0][0] is not None, seen
    assert seen[0] == seen[1] == seen[2], seen
