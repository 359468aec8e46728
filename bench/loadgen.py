"""The load generator, in its own process: C concurrent streams for N requests.

    python -m bench.loadgen --url http://127.0.0.1:PORT/v1/chat/completions \
        --model openai/bench -c 50 -n 2000 [--format openai|anthropic|workbench|responses] [--ramp 1.0]

prints one JSON object: per-request percentiles of the time to the first
content event and of the total time, streams and events per second, errors
(by kind), and the most streams open at once. `--raw FILE` also writes every
request's (ttft, total, events, error) as CSV.

Each of the C slots holds one keep-alive connection (as SDK clients pool
them) and sends its requests one after another. asyncio protocols and a
hand-rolled HTTP/1.1 reader (Content-Length or chunked), so the generator
stays cheap; it connects to 127.0.0.1 only. The first content event is the
first SSE event carrying non-empty text: `"content":"x` (OpenAI chunks and
Workbench events) or a `text_delta` (Anthropic). A stream counts as an error
when the status is not 200, the connection drops or times out, an in-band
error event arrives, or the stream ends without its terminator ([DONE] or
message_stop).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from urllib.parse import urlsplit

CONTENT_MARK = b'"content":"'
UI_TEXT = b'"type":"text-delta"'  # the AI SDK UI message stream's first text
EMPTY_CONTENT = b'"content":""'
ANTHROPIC_TEXT = b'"type":"text_delta"'
RESPONSES_TEXT = b"event: response.output_text.delta"


class Result:
    __slots__ = ("ttft", "total", "events", "error")

    def __init__(self) -> None:
        self.ttft: float | None = None
        self.total = 0.0
        self.events = 0
        self.error: str | None = None


class Stream(asyncio.Protocol):
    """One keep-alive connection; `request()` sends one request and awaits its end."""

    def __init__(self, state: "Load") -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future | None = None
        self.lost = False
        self.reset()

    def reset(self) -> None:
        self.buffer = b""
        self.headers_done = False
        self.status = 0
        self.chunked = False
        self.length = -1
        self.body = b""  # de-chunked SSE bytes not yet split into events
        self.chunk_left = 0
        self.result = Result()
        self.started = 0.0
        self.terminated = False
        self.consumed = 0

    # -- asyncio ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.transport = None
        if self.done is not None and not self.done.done():
            self.finish("connection closed" if self.headers_done else "connection closed before the response")

    def data_received(self, data: bytes) -> None:
        if self.done is None or self.done.done():
            return
        self.buffer += data
        if not self.headers_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").lower().split("\r\n")
            self.buffer = self.buffer[end + 4:]
            self.headers_done = True
            self.status = int(head[0].split(" ")[1])
            for line in head[1:]:
                name, _, value = line.partition(":")
                name, value = name.strip(), value.strip()
                if name == "transfer-encoding" and "chunked" in value:
                    self.chunked = True
                elif name == "content-length":
                    self.length = int(value)
            self.state.stream_opened()
        if self.chunked:
            self.read_chunks()
        else:
            self.consumed += len(self.buffer)
            self.body += self.buffer
            self.buffer = b""
            self.read_events()
            if self.length >= 0 and self.consumed >= self.length:
                self.end_of_body()

    # -- HTTP body ------------------------------------------------------------
    def read_chunks(self) -> None:
        buffer = self.buffer
        position = 0
        while True:
            if self.chunk_left:
                take = min(self.chunk_left, len(buffer) - position)
                if take <= 0:
                    break
                self.body += buffer[position:position + take]
                position += take
                self.chunk_left -= take
                if self.chunk_left:
                    break
                continue
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                break
            size_text = buffer[position:line_end]
            if not size_text:  # the CRLF after a chunk's data
                position = line_end + 2
                continue
            size = int(size_text.split(b";")[0], 16)
            if size == 0:
                if buffer.find(b"\r\n", line_end + 2) < 0:
                    break  # wait for the final CRLF
                self.buffer = b""
                self.read_events()
                self.end_of_body()
                return
            position = line_end + 2
            self.chunk_left = size
        self.buffer = buffer[position:]
        self.read_events()

    def read_events(self) -> None:
        body = self.body
        start = 0
        result = self.result
        while True:
            end = body.find(b"\n\n", start)
            if end < 0:
                break
            event = body[start:end]
            start = end + 2
            if event.startswith(b":"):
                continue  # heartbeat comment
            result.events += 1
            if result.ttft is None and (
                (CONTENT_MARK in event and EMPTY_CONTENT not in event) or ANTHROPIC_TEXT in event
                or event.startswith(RESPONSES_TEXT) or UI_TEXT in event
            ):
                result.ttft = time.perf_counter() - self.started
            if event.startswith((b'data: {"error"', b"event: error", b"event: response.failed", b'data: {"type":"error"')):
                result.error = result.error or "in-band error event"
            if event == b"data: [DONE]" or event.startswith(b"event: message_stop"):
                self.terminated = True
        self.body = body[start:]

    def end_of_body(self) -> None:
        if self.status != 200:
            self.finish(f"status {self.status}")
        elif not self.terminated:
            self.finish("stream ended without its terminator")
        else:
            self.finish(None)

    def finish(self, error: str | None) -> None:
        result = self.result
        result.total = time.perf_counter() - self.started
        if error and not result.error:
            result.error = error
        if self.headers_done:
            self.state.stream_closed()
        if self.done is not None and not self.done.done():
            self.done.set_result(result)

    def request(self, payload: bytes) -> asyncio.Future:
        self.reset()
        self.done = asyncio.get_running_loop().create_future()
        self.started = time.perf_counter()
        self.transport.write(payload)
        return self.done


class Load:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        url = urlsplit(args.url)
        self.host, self.port, self.path = url.hostname, url.port or 80, url.path or "/"
        if self.host not in ("127.0.0.1", "localhost"):
            raise SystemExit("the load generator only connects to 127.0.0.1")
        self.host = "127.0.0.1"
        body = json.dumps(self.body()).encode()
        self.payload = (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer bench\r\nx-api-key: bench\r\nanthropic-version: 2023-06-01\r\n"
            f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.results: list[Result] = []
        self.remaining = args.requests
        self.open = 0
        self.max_open = 0

    def body(self) -> dict:
        messages = [{"role": "user", "content": "Say something."}]
        if self.args.format == "anthropic":
            return {"model": self.args.model, "max_tokens": 256, "messages": messages, "stream": True}
        if self.args.format == "workbench":
            return {"model": self.args.model, "messages": messages}
        if self.args.format == "responses":  # Open Responses, not stored: the streaming path alone
            return {"model": self.args.model, "input": "Say something.", "stream": True, "store": False}
        if self.args.format in ("ui", "ui-unsaved"):  # what useChat's DefaultChatTransport posts
            body = {"id": "bench", "trigger": "submit-message", "model": self.args.model,
                    "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Say something."}]}]}
            if self.args.format == "ui-unsaved":
                del body["id"]  # on /api/chat: no chat to store or resume, the protocol alone
            return body
        return {"model": self.args.model, "messages": messages, "stream": True,
                "stream_options": {"include_usage": True}}

    def stream_opened(self) -> None:
        self.open += 1
        if self.open > self.max_open:
            self.max_open = self.open

    def stream_closed(self) -> None:
        self.open -= 1

    async def connect(self) -> Stream:
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: Stream(self), self.host, self.port), self.args.timeout
        )
        return protocol

    async def slot(self, index: int, deadline: float) -> None:
        args = self.args
        if args.ramp:
            await asyncio.sleep(args.ramp * index / args.concurrency)
        stream: Stream | None = None
        while self.remaining > 0 and time.monotonic() < deadline:
            self.remaining -= 1
            started = time.perf_counter()
            try:
                if stream is None or stream.lost:
                    stream = await self.connect()
                result = await asyncio.wait_for(stream.request(self.payload), args.timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                result = stream.result if stream is not None and stream.done is not None else Result()
                result.error = result.error or f"{type(exc).__name__}: {exc}"[:120]
                result.total = time.perf_counter() - started
                if stream is not None and stream.transport is not None:
                    stream.transport.abort()
                stream = None
            self.results.append(result)
            if result.error and stream is not None and stream.transport is not None:
                stream.transport.close()  # never reuse a connection in an unknown state
                stream = None
        if stream is not None and stream.transport is not None:
            stream.transport.close()

    async def run(self) -> dict:
        args = self.args
        deadline = time.monotonic() + args.max_seconds
        started = time.perf_counter()
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.gather(*(self.slot(i, deadline) for i in range(args.concurrency)))
        elapsed = time.perf_counter() - started
        cpu_end = resource.getrusage(resource.RUSAGE_SELF)
        return summarize(self.results, elapsed, self.max_open,
                         (cpu_end.ru_utime + cpu_end.ru_stime) - (cpu.ru_utime + cpu.ru_stime))


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    index = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[index]


def summarize(results: list[Result], elapsed: float, max_open: int, cpu_seconds: float) -> dict:
    ok = [r for r in results if r.error is None]
    errors: dict[str, int] = {}
    for r in results:
        if r.error:
            errors[r.error] = errors.get(r.error, 0) + 1
    ttft = [r.ttft * 1000 for r in ok if r.ttft is not None]
    total = [r.total * 1000 for r in ok]
    events = sum(r.events for r in results)

    def stats(values: list[float]) -> dict:
        return {f"p{q}": (round(v, 3) if (v := percentile(values, q)) is not None else None) for q in (50, 90, 99)} | {
            "mean": round(sum(values) / len(values), 3) if values else None, "max": round(max(values), 3) if values else None}

    return {
        "requests": len(results),
        "ok": len(ok),
        "errors": len(results) - len(ok),
        "error_kinds": errors,
        "elapsed_s": round(elapsed, 3),
        "streams_per_s": round(len(ok) / elapsed, 1) if elapsed else None,
        "events_per_s": round(events / elapsed, 1) if elapsed else None,
        "events_per_stream": round(events / len(results), 2) if results else None,
        "ttft_ms": stats(ttft),
        "total_ms": stats(total),
        "max_open_streams": max_open,
        "loadgen_cpu_s": round(cpu_seconds, 3),
    }


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
        return hard
    return soft


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Switchboard benchmark load generator")
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="openai/bench-model")
    parser.add_argument("--format", choices=("openai", "anthropic", "workbench", "responses", "ui", "ui-unsaved"),
                        default="openai")
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-n", "--requests", type=int, default=100)
    parser.add_argument("--ramp", type=float, default=0.0, help="seconds over which the slots start")
    parser.add_argument("--timeout", type=float, default=60.0, help="per request")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop starting requests after this")
    parser.add_argument("--raw", help="write every request as CSV here")
    args = parser.parse_args(argv)
    limit = raise_fd_limit()
    if args.concurrency * 1.1 + 50 > limit:
        raise SystemExit(f"ulimit -n is {limit}: too low for {args.concurrency} connections")
    load = Load(args)
    summary = asyncio.run(load.run())
    if args.raw:
        with open(args.raw, "w") as out:
            out.write("ttft_ms,total_ms,events,error\n")
            for r in load.results:
                ttft = "" if r.ttft is None else f"{r.ttft * 1000:.3f}"
                out.write(f"{ttft},{r.total * 1000:.3f},{r.events},{(r.error or '').replace(',', ';')}\n")
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
