"""A fast fake LLM upstream for the benchmarks, in its own process.

    python -m bench.fake_upstream [--port 0]   prints "PORT <n>" once listening

    POST /v1/chat/completions   OpenAI Chat Completions stream (docs/openai.md, "Streaming"):
                                role chunk, N content chunks, finish chunk, usage chunk, [DONE]
    POST /v1/messages           Anthropic Messages stream (docs/anthropic.md, "Streaming"):
                                message_start, content_block_start, ping, N text deltas,
                                content_block_stop, message_delta, message_stop
    PUT  /_bench/config         {"chunks": N, "ttft": s, "pace": s}: shape of the next streams
    GET  /_bench/stats          {"served", "open", "max_open"}; ?reset=1 zeroes the counters

Plain asyncio protocols and pre-encoded bytes: no framework, no JSON work per
event, so the fake never limits what it measures (the harness checks that by
loading it directly first). HTTP/1.1 keep-alive, chunked bodies, TCP_NODELAY,
a large listen backlog; it binds 127.0.0.1 only. An unpaced stream leaves in
one write; a paced one sleeps `ttft` before the first content chunk and
`pace` between content chunks, and stops as soon as its client goes away.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time

BACKLOG = 8192
MAX_HEADER = 64 * 1024


class Config:
    def __init__(self) -> None:
        self.chunks = 20
        self.ttft = 0.0
        self.pace = 0.0
        self.build()

    def update(self, values: dict) -> None:
        self.chunks = max(0, min(int(values.get("chunks", self.chunks)), 10_000))
        self.ttft = max(0.0, float(values.get("ttft", self.ttft)))
        self.pace = max(0.0, float(values.get("pace", self.pace)))
        self.build()

    def build(self) -> None:
        """Pre-encode every event of both formats as HTTP chunks."""
        n = self.chunks
        words = [f"tok{i} " for i in range(n)]
        created = int(time.time())
        head = (
            '{"id":"chatcmpl-bench0000000000000000000000","object":"chat.completion.chunk","created":%d,'
            '"model":"bench-model","service_tier":"default","system_fingerprint":"fp_bench","choices":' % created
        )

        def openai(choices: str, tail: str = ',"usage":null') -> bytes:
            return sse(None, head + choices + tail + ',"obfuscation":"x"}')

        self.openai_start = openai('[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]')
        self.openai_content = [
            openai('[{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":null}]' % json.dumps(w)) for w in words
        ]
        usage = (
            ',"usage":{"prompt_tokens":9,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":'
            '{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
            '"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}' % (n, n + 9)
        )
        self.openai_end = (
            openai('[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]')
            + openai("[]", usage)
            + chunk(b"data: [DONE]\n\n")
        )
        self.anthropic_start = (
            sse("message_start", '{"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant",'
                '"content":[],"model":"bench-model","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":9,'
                '"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}')
            + sse("content_block_start", '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}')
            + sse("ping", '{"type": "ping"}')
        )
        self.anthropic_content = [
            sse("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%s}}' % json.dumps(w))
            for w in words
        ]
        self.anthropic_end = (
            sse("content_block_stop", '{"type":"content_block_stop","index":0}')
            + sse("message_delta", '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
                  '"usage":{"output_tokens":%d}}' % n)
            + sse("message_stop", '{"type":"message_stop"}')
        )

    def snapshot(self) -> dict:
        return {"chunks": self.chunks, "ttft": self.ttft, "pace": self.pace}


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse(event: str | None, data: str) -> bytes:
    text = ("" if event is None else f"event: {event}\n") + f"data: {data}\n\n"
    return chunk(text.encode())


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
)
LAST_CHUNK = b"0\r\n\r\n"


def json_reply(status: str, body: object) -> bytes:
    data = json.dumps(body).encode()
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        status.encode(), len(data), data)


class Stats:
    def __init__(self) -> None:
        self.served = 0
        self.open = 0
        self.max_open = 0

    def opened(self) -> None:
        self.open += 1
        if self.open > self.max_open:
            self.max_open = self.open

    def closed(self, completed: bool) -> None:
        self.open -= 1
        self.served += completed


class Upstream(asyncio.Protocol):
    """One client connection; requests on it are answered one after another."""

    def __init__(self, config: Config, stats: Stats) -> None:
        self.config = config
        self.stats = stats
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self.next_request()

    def next_request(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEADER and self.transport:
                self.transport.close()
            return
        head = self.buffer[:end].decode("latin-1")
        lines = head.split("\r\n")
        method, path = lines[0].split(" ")[:2]
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        total = end + 4 + length
        if len(self.buffer) < total:
            return
        body = self.buffer[end + 4:total]
        self.buffer = self.buffer[total:]
        self.answer(method, path, body)

    def answer(self, method: str, path: str, body: bytes) -> None:
        config, transport = self.config, self.transport
        if transport is None:
            return
        route = path.split("?")[0]
        if method == "POST" and route.endswith("/chat/completions"):
            self.stream(config.openai_start, config.openai_content, config.openai_end)
        elif method == "POST" and route.endswith("/messages"):
            self.stream(config.anthropic_start, config.anthropic_content, config.anthropic_end)
        elif method == "PUT" and route == "/_bench/config":
            config.update(json.loads(body or b"{}"))
            transport.write(json_reply("200 OK", config.snapshot()))
        elif method == "GET" and route == "/_bench/stats":
            stats = self.stats
            transport.write(json_reply("200 OK", {"served": stats.served, "open": stats.open, "max_open": stats.max_open}))
            if "reset=1" in path:
                stats.served, stats.max_open = 0, stats.open
        else:
            transport.write(json_reply("404 Not Found", {"error": {"message": f"no route {method} {route}"}}))
        if not self.busy and self.buffer:
            self.next_request()

    def stream(self, start: bytes, content: list[bytes], end: bytes) -> None:
        config = self.config
        self.stats.opened()
        if not config.ttft and not config.pace:
            self.transport.write(b"".join((STREAM_HEAD, start, *content, end, LAST_CHUNK)))
            self.stats.closed(True)
            return
        self.busy = True
        asyncio.get_running_loop().create_task(self.paced(start, content, end, config.ttft, config.pace))

    async def paced(self, start: bytes, content: list[bytes], end: bytes, ttft: float, pace: float) -> None:
        completed = False
        try:
            self.transport.write(STREAM_HEAD + start)
            await asyncio.sleep(ttft)
            for index, data in enumerate(content):
                if index and pace:
                    await asyncio.sleep(pace)
                if self.transport is None:  # the client went away
                    return
                self.transport.write(data)
            if self.transport is None:
                return
            self.transport.write(end + LAST_CHUNK)
            completed = True
        finally:
            self.stats.closed(completed)
            self.busy = False
        if self.buffer:
            self.next_request()


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    config, stats = Config(), Stats()
    server = await loop.create_server(
        lambda: Upstream(config, stats), "127.0.0.1", port, backlog=BACKLOG, reuse_address=True
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
