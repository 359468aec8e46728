"""Splits `<think>...</think>` reasoning out of streamed content (docs/openai.md, "Reasoning fields").

    StreamDecoder content delta -> ThinkSplitter.feed(text) -> [("reasoning"|"text", piece)]

Perplexity's reasoning models and some self-hosted models put their chain of
thought inline at the start of `content`. Only a `<think>` at the very start
of the answer counts (so an answer that merely mentions the tag is left
alone); tags split across chunks are held back until they are complete.
Pure: no IO.
"""
from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that could begin `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ThinkSplitter:
    __slots__ = ("state", "buffer")

    def __init__(self) -> None:
        self.state = "start"  # start (undecided) | think | text
        self.buffer = ""

    def feed(self, text: str) -> list[tuple[str, str]]:
        if self.state == "text":
            return [("text", text)]
        self.buffer += text
        out: list[tuple[str, str]] = []
        if self.state == "start":
            head = self.buffer.lstrip()
            if head.startswith(OPEN):
                self.state, self.buffer = "think", head[len(OPEN):]
            elif OPEN.startswith(head):
                return out  # still could become "<think>"
            else:
                self.state, rest, self.buffer = "text", self.buffer, ""
                return [("text", rest)]
        end = self.buffer.find(CLOSE)
        if end >= 0:
            thought, rest = self.buffer[:end], self.buffer[end + len(CLOSE):].lstrip("\n")
            self.state, self.buffer = "text", ""
            if thought:
                out.append(("reasoning", thought))
            if rest:
                out.append(("text", rest))
            return out
        keep = _partial_suffix(self.buffer, CLOSE)
        ready = self.buffer[: len(self.buffer) - keep]
        self.buffer = self.buffer[len(self.buffer) - keep:]
        if ready:
            out.append(("reasoning", ready))
        return out

    def flush(self) -> list[tuple[str, str]]:
        """What is still held back when the stream ends."""
        rest, self.buffer = self.buffer, ""
        if not rest:
            return []
        return [("reasoning" if self.state == "think" else "text", rest)]
