"""UI message chunks -> the assistant UIMessage, as the client assembles it.

    chunks(...) -> MessageBuilder.add(chunk) ... -> .message() -> stored by the blueprint

The server keeps each exchange itself (a reload without a save still shows
the reply), so it builds the same message `useChat` builds from the same
chunks: a `step-start` per step, text and reasoning parts in `done` state,
tool parts keyed by call id, `data-*` parts replaced in place by id, and
metadata merged from `start` and `finish`. A continued message (the client
answered a tool and the reply goes on) starts from its earlier parts.
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

import copy
from typing import Any


class MessageBuilder:
    __slots__ = ("id", "parts", "metadata", "_open", "_tools", "finish_reason", "error")

    def __init__(self, message_id: str, previous: dict | None = None) -> None:
        self.id = message_id
        self.parts: list[dict] = copy.deepcopy(previous.get("parts") or []) if previous else []
        self.metadata: dict | None = copy.deepcopy(previous.get("metadata")) if previous else None
        self._open: dict[str, dict] = {}
        self._tools: dict[str, dict] = {p["toolCallId"]: p for p in self.parts
                                        if isinstance(p, dict) and "toolCallId" in p}
        self.finish_reason: str | None = None
        self.error: str | None = None

    def _merge(self, metadata: Any) -> None:
        if isinstance(metadata, dict) and isinstance(self.metadata, dict):
            self.metadata = {**self.metadata, **metadata}
        elif metadata is not None:
            self.metadata = metadata

    def add(self, chunk: dict) -> None:
        kind = chunk["type"]
        if kind == "text-delta":  # the hot path
            self._open["text" + chunk["id"]]["text"] += chunk["delta"]
        elif kind == "start":
            self.id = chunk.get("messageId") or self.id
            self._merge(chunk.get("messageMetadata"))
        elif kind == "start-step":
            self.parts.append({"type": "step-start"})
        elif kind in ("text-start", "reasoning-start"):
            part = {"type": kind.split("-")[0], "text": "", "state": "streaming"}
            if kind == "reasoning-start":
                part["id"] = chunk["id"]  # the client keeps reasoning ids (not text ids)
            if chunk.get("providerMetadata"):
                part["providerMetadata"] = chunk["providerMetadata"]
            self._open[kind.split("-")[0] + chunk["id"]] = part
            self.parts.append(part)
        elif kind in ("text-delta", "reasoning-delta"):
            self._open[kind.split("-")[0] + chunk["id"]]["text"] += chunk["delta"]
        elif kind in ("text-end", "reasoning-end"):
            part = self._open.pop(kind.split("-")[0] + chunk["id"])
            part["state"] = "done"
            if chunk.get("providerMetadata"):
                part["providerMetadata"] = chunk["providerMetadata"]
        elif kind == "tool-input-start":
            self._tool(chunk, "input-streaming", input=None)
        elif kind == "tool-input-delta":
            part = self._tools[chunk["toolCallId"]]
            part["_raw"] = part.get("_raw", "") + chunk["inputTextDelta"]
        elif kind == "tool-input-available":
            part = self._tool(chunk, "input-available", input=chunk["input"])
            part.pop("_raw", None)
            if chunk.get("providerMetadata"):
                part["callProviderMetadata"] = chunk["providerMetadata"]
        elif kind in ("file", "source-url"):
            self.parts.append({k: v for k, v in chunk.items()})
        elif kind.startswith("data-"):
            part = {"type": kind, "id": chunk.get("id"), "data": chunk.get("data")} if "id" in chunk \
                else {"type": kind, "data": chunk.get("data")}
            for index, existing in enumerate(self.parts):
                if existing.get("type") == kind and "id" in chunk and existing.get("id") == chunk["id"]:
                    self.parts[index] = part
                    break
            else:
                self.parts.append(part)
        elif kind == "finish":
            self.finish_reason = chunk.get("finishReason")
            self._merge(chunk.get("messageMetadata"))
        elif kind == "error":
            self.error = chunk.get("errorText")

    def _tool(self, chunk: dict, state: str, input: Any) -> dict:
        call_id = chunk["toolCallId"]
        part = self._tools.get(call_id)
        if part is None:
            part = ({"type": "dynamic-tool", "toolName": chunk["toolName"]} if chunk.get("dynamic")
                    else {"type": f"tool-{chunk['toolName']}"})
            part["toolCallId"] = call_id
            self._tools[call_id] = part
            self.parts.append(part)
        part["state"] = state
        part["input"] = input
        return part

    def message(self, status: str | None = None) -> dict:
        """The UIMessage; `status` ("failed", "aborted") marks a turn that did
        not finish, in its metadata, with the error text the client saw."""
        parts = [{k: v for k, v in part.items() if k != "_raw"} for part in self.parts]
        for part in parts:
            if part.get("input", "") is None:
                part.pop("input")
        message: dict = {"id": self.id, "role": "assistant", "parts": parts}
        metadata = dict(self.metadata) if isinstance(self.metadata, dict) else self.metadata
        if status is not None:
            metadata = {**(metadata or {}), "status": status}
            if self.error:
                metadata["errorText"] = self.error
        if metadata is not None:
            message["metadata"] = metadata
        return message
