"""The canonical request: what every surface decodes into and every provider consumes.

    client JSON -> surfaces/<surface>_codec.decode_request -> ChatRequest -> providers

Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping


@dataclass(slots=True, frozen=True)
class TextPart:
    text: str
    type: ClassVar[str] = "text"


@dataclass(slots=True, frozen=True)
class ImagePart:
    """An image by `http(s)://` URL or `data:` URL."""

    url: str
    media_type: str | None = None
    detail: str | None = None
    type: ClassVar[str] = "image"

    @property
    def is_data_url(self) -> bool:
        return self.url.startswith("data:")

    def data(self) -> tuple[str, str]:
        """(media_type, base64 payload) of a data URL; ValueError otherwise."""
        return split_data_url(self.url)


@dataclass(slots=True, frozen=True)
class ReasoningPart:
    """Reasoning an assistant produced earlier, sent back on the next turn.

    `provider_metadata` carries what must round-trip unchanged (Anthropic
    thinking signatures, redacted thinking, Gemini thought signatures).
    """

    text: str
    provider_metadata: Mapping[str, Any] | None = None
    type: ClassVar[str] = "reasoning"


@dataclass(slots=True, frozen=True)
class ToolCallPart:
    """An assistant's request to call a tool; `arguments` is JSON text."""

    id: str
    name: str
    arguments: str
    provider_metadata: Mapping[str, Any] | None = None
    type: ClassVar[str] = "tool-call"


@dataclass(slots=True, frozen=True)
class ToolResultPart:
    """The result of a tool call, sent back by the client."""

    tool_call_id: str
    content: str
    name: str | None = None
    is_error: bool = False
    type: ClassVar[str] = "tool-result"


Part = TextPart | ImagePart | ReasoningPart | ToolCallPart | ToolResultPart

@dataclass(slots=True, frozen=True)
class Message:
    role: str
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        """The concatenated text parts (what text-only code paths need)."""
        return "".join(part.text for part in self.parts if isinstance(part, TextPart))

    @property
    def is_text_only(self) -> bool:
        return all(isinstance(part, TextPart) for part in self.parts)


@dataclass(slots=True, frozen=True)
class Tool:
    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(slots=True)
class ChatRequest:
    """What every surface decodes into and every provider consumes.

    `tool_choice` is "auto", "none", "required", or {"name": tool name}.
    `extra` carries provider-specific fields a client asked to pass through.
    `server_url` is how clients reach this server (for links the demo serves).
    """

    model: str
    messages: list[Message]
    stream: bool = True
    tools: list[Tool] = field(default_factory=list)
    tool_choice: str | dict | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    response_format: Mapping[str, Any] | None = None
    reasoning_effort: str | None = None
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    server_url: str | None = None
    # Routing hints a surface read from headers (e.g. Coze's x-model-type,
    # x-bot-id): the router may pick a provider by them.
    hints: dict[str, Any] = field(default_factory=dict)

    @property
    def system_text(self) -> str:
        """All system messages joined: for providers with one system slot."""
        return "\n\n".join(m.text for m in self.messages if m.role == "system")

    @property
    def last_user_message(self) -> Message | None:
        for message in reversed(self.messages):
            if message.role == "user":
                return message
        return None


def split_data_url(url: str) -> tuple[str, str]:
    """`data:image/png;base64,AAAA` -> ("image/png", "AAAA")."""
    if not url.startswith("data:") or "," not in url:
        raise ValueError("not a data URL")
    header, payload = url[5:].split(",", 1)
    media_type, _, encoding = header.partition(";")
    if encoding != "base64":
        raise ValueError("only base64 data URLs are supported")
    return media_type or "application/octet-stream", payload
