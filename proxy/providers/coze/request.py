"""ChatRequest -> Coze API request bodies (pure).

    CozeProvider.open -> resolve_target(request, route, config) -> Target (mode, bot / workflow)
                      -> chat_body / conversation_body / workflow_body / resume_body
                      -> providers/coze/provider.py sends them

Coze runs a bot or a workflow configured in its own UI: there is no model,
system prompt, temperature or tool list in its requests (docs/coze.md).
OpenAI messages become Coze "EnterMessages": user -> question, assistant ->
answer; system and developer text is prepended to the first user message
sent upstream (Coze has no system slot). Images become `object_string`
items (`file_url` for http(s) URLs, `file_id` for data URLs, which the
provider uploads first). Tool calls Coze asked for (`requires_action`) carry
their conversation and chat in their id, so the tool results the client
sends back can be routed to `submit_tool_outputs` without server state.
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any, Mapping

import orjson

from ...canonical import ChatRequest, ImagePart, Message, ToolResultPart
from ...errors import BadRequest

MODES = ("chat", "conversation", "workflow")
MAX_ADDITIONAL_MESSAGES = 100
MAX_CREATE_MESSAGES = 16  # /v1/conversation/create accepts at most 16 initial messages
TOOL_CALL_PREFIX = "coze:"
DEFAULT_USER = "switchboard"


@dataclass(slots=True)
class CozeConfig:
    """The deployment's Coze settings (environment or YAML `providers: {coze: ...}`)."""

    bot_id: str | None = None
    workflow_id: str | None = None
    space_id: str | None = None
    default_mode: str = "chat"
    input_key: str = "input"  # the workflow start node's parameter that gets the user's text
    app_id: str | None = None  # workflows inside an app (never together with a bot id)
    workflow_bot_id: str | None = None  # workflows that need a bot's variables
    user_id: str | None = None
    connector_id: str | None = None


@dataclass(slots=True)
class Target:
    """Where one request goes on Coze."""

    mode: str
    bot_id: str | None = None
    workflow_id: str | None = None
    conversation_id: str | None = None  # the client's x-conversation-id (a Switchboard id)
    session_id: str | None = None  # the client's x-workflow-session-id
    user_id: str = DEFAULT_USER
    hints: dict[str, Any] = field(default_factory=dict)


def hints_of(request: ChatRequest) -> dict[str, Any]:
    return dict(getattr(request, "hints", None) or {})


def resolve_target(request: ChatRequest, upstream_model: str | None, config: CozeConfig) -> Target:
    """Mode, bot and workflow for a request; BadRequest names what is missing.

    The bot comes from `x-bot-id`, else from a `coze/<bot_id>` model, else
    COZE_BOT_ID; the workflow from `x-workflow-id`, else COZE_WORKFLOW_ID.
    """
    hints = hints_of(request)
    mode = (hints.get("model_type") or config.default_mode or "chat").strip().lower()
    if mode not in MODES:
        raise BadRequest(f"x-model-type must be one of {', '.join(MODES)}; got {mode!r}", param="x-model-type",
                         code="invalid_model_type")
    user_id = request.user or config.user_id or DEFAULT_USER
    target = Target(mode, user_id=user_id, hints=hints, conversation_id=hints.get("conversation_id") or None,
                    session_id=hints.get("workflow_session_id") or None)
    if mode == "workflow":
        target.workflow_id = hints.get("workflow_id") or config.workflow_id
        if not target.workflow_id:
            raise BadRequest("workflow mode needs a workflow: send the x-workflow-id header or set COZE_WORKFLOW_ID",
                             param="x-workflow-id", code="missing_workflow_id")
        return target
    model_bot = upstream_model if upstream_model and upstream_model.isdigit() else None
    target.bot_id = hints.get("bot_id") or model_bot or config.bot_id
    if not target.bot_id and not (mode == "conversation" and target.conversation_id):  # continued: its own bot
        raise missing_bot()
    return target


def missing_bot() -> BadRequest:
    return BadRequest("Coze needs a bot: send the x-bot-id header, use the model 'coze/<bot_id>' or set COZE_BOT_ID",
                      param="x-bot-id", code="missing_bot_id")


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


def data_url_images(messages: list[Message]) -> list[str]:
    """The data: URLs the provider must upload (Coze takes only public URLs or file ids)."""
    return [part.url for m in messages for part in m.parts if isinstance(part, ImagePart) and part.is_data_url]


def enter_message(message: Message, file_ids: Mapping[str, str], prefix: str = "") -> dict | None:
    """One OpenAI message as a Coze EnterMessage; None when nothing is left to send."""
    text = message.text
    if prefix and message.role == "user":
        text = f"{prefix}\n\n{text}" if text else prefix
    if message.role == "assistant":
        if not text:
            return None  # tool-call-only turns: Coze cannot take them as history
        return {"role": "assistant", "type": "answer", "content": text, "content_type": "text"}
    if message.role != "user":
        return None
    images = [part for part in message.parts if isinstance(part, ImagePart)]
    if not images:
        if not text:
            return None
        return {"role": "user", "type": "question", "content": text, "content_type": "text"}
    # object_string: a JSON array serialised into the content string; at most
    # one text item, and only beside at least one image (chat_v3 rules)
    items: list[dict] = [{"type": "text", "text": text}] if text else []
    for image in images:
        if image.is_data_url:
            items.append({"type": "image", "file_id": file_ids[image.url]})
        else:
            items.append({"type": "image", "file_url": image.url})
    return {"role": "user", "type": "question", "content": orjson.dumps(items).decode(), "content_type": "object_string"}


def enter_messages(messages: list[Message], file_ids: Mapping[str, str] | None = None,
                   include_system: bool = True) -> list[dict]:
    """OpenAI history -> EnterMessages. System / developer text goes before the
    first user message's text (Coze has no system slot; the bot's own
    prompt stays in charge)."""
    file_ids = file_ids or {}
    system = "\n\n".join(m.text for m in messages if m.role in ("system", "developer") and m.text)
    pending = system if include_system else ""
    out: list[dict] = []
    for message in messages:
        if message.role in ("system", "developer", "tool"):
            continue
        entered = enter_message(message, file_ids, pending if message.role == "user" else "")
        if entered is None:
            continue
        if message.role == "user":
            pending = ""
        out.append(entered)
    return out


def split_history(messages: list[Message]) -> tuple[list[Message], list[Message]]:
    """(prior turns, new turn): the new turn is the user messages after the
    last assistant message; a continued conversation sends only it (Coze
    already holds the rest), a new one sends the prior turns first."""
    start = 0
    for index, message in enumerate(messages):
        if message.role == "assistant":
            start = index + 1
    tail = messages[start:]
    prior = messages[:start] + [m for m in tail if m.role in ("system", "developer")]
    return prior, [m for m in tail if m.role == "user"]


def require_user_turn(messages: list[dict]) -> None:
    if not messages or messages[-1]["role"] != "user":
        raise BadRequest("the last message must be a user message with text or an image (Coze answers user questions)",
                         param="messages")
    if len(messages) > MAX_ADDITIONAL_MESSAGES:
        raise BadRequest(f"Coze takes at most {MAX_ADDITIONAL_MESSAGES} messages per chat; "
                         "use x-model-type: conversation to keep long histories upstream", param="messages")


# --------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------


def chat_body(target: Target, additional_messages: list[dict], config: CozeConfig) -> dict:
    """POST /v3/chat body. Always streamed: the non-streaming path accumulates
    the same stream (one request instead of create + poll + list)."""
    body: dict[str, Any] = {
        "bot_id": target.bot_id,
        "user_id": target.user_id,
        "additional_messages": additional_messages,
        "stream": True,
        "auto_save_history": True,
    }
    if config.connector_id:
        body["connector_id"] = config.connector_id
    return body


def conversation_body(bot_id: str, prior: list[dict]) -> dict:
    """POST /v1/conversation/create body with the turns before the new one."""
    body: dict[str, Any] = {"bot_id": bot_id, "meta_data": {"created_by": "switchboard"}}
    if prior:
        body["messages"] = prior
    return body


def workflow_body(target: Target, text: str, config: CozeConfig) -> dict:
    """POST /v1/workflow/stream_run body: the last user text under the start
    node's parameter name (`input` unless configured)."""
    body: dict[str, Any] = {"workflow_id": target.workflow_id, "parameters": {config.input_key: text}}
    if config.app_id:
        body["app_id"] = config.app_id
    elif config.workflow_bot_id:
        body["bot_id"] = config.workflow_bot_id
    if target.user_id:
        body["ext"] = {"user_id": target.user_id}
    return body


def resume_body(workflow_id: str, event_id: str, interrupt_type: int, text: str) -> dict:
    """POST /v1/workflow/stream_resume body: the user's text answers the interrupt."""
    return {"workflow_id": workflow_id, "event_id": event_id, "resume_data": text, "interrupt_type": interrupt_type}


def last_user_text(messages: list[Message]) -> str:
    message = next((m for m in reversed(messages) if m.role == "user"), None)
    if message is None or not message.text.strip():
        raise BadRequest("workflow mode needs a last user message with text (it becomes the workflow's input)",
                         param="messages")
    return message.text


# --------------------------------------------------------------------------
# Tool calls (requires_action) and their results
# --------------------------------------------------------------------------


def _signature(secret: str, conversation_id: str, chat_id: str, coze_id: str) -> str:
    message = f"{conversation_id}:{chat_id}:{coze_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:16]


def tool_call_id(conversation_id: str, chat_id: str, coze_id: str, secret: str) -> str:
    """The id the client sees: where to send the result, signed (so a client
    cannot point its tool results at a chat it was never shown), then Coze's id."""
    signature = _signature(secret, conversation_id, chat_id, coze_id)
    return f"{TOOL_CALL_PREFIX}{conversation_id}:{chat_id}:{signature}:{coze_id}"


def parse_tool_call_id(value: str, secret: str) -> tuple[str, str, str] | None:
    """(conversation_id, chat_id, coze tool call id), or None for other ids;
    BadRequest for a Coze-looking id this server did not sign."""
    if not value.startswith(TOOL_CALL_PREFIX):
        return None
    conversation_id, chat_id, signature, coze_id = (value[len(TOOL_CALL_PREFIX):].split(":", 3) + ["", "", ""])[:4]
    if not (conversation_id.isdigit() and chat_id.isdigit() and coze_id):
        return None
    if not hmac.compare_digest(signature, _signature(secret, conversation_id, chat_id, coze_id)):
        raise BadRequest(f"tool_call_id {value[:60]!r} was not issued by this server", param="messages")
    return conversation_id, chat_id, coze_id


@dataclass(slots=True)
class ToolOutputs:
    conversation_id: str
    chat_id: str
    body: dict


def pending_tool_outputs(messages: list[Message], secret: str) -> ToolOutputs | None:
    """When the request ends with tool results answering a Coze
    `requires_action`, the submit_tool_outputs call that continues that chat."""
    results: list[ToolResultPart] = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        results.extend(p for p in message.parts if isinstance(p, ToolResultPart))
    if not results:
        return None
    parsed = [(parse_tool_call_id(r.tool_call_id, secret), r) for r in reversed(results)]
    if any(ids is None for ids, _ in parsed):
        return None
    chats = {(ids[0], ids[1]) for ids, _ in parsed}
    if len(chats) != 1:
        raise BadRequest("tool results answer tool calls of different Coze chats; send one chat's results at a time",
                         param="messages")
    conversation_id, chat_id = chats.pop()
    outputs = [{"tool_call_id": ids[2], "output": result.content} for ids, result in parsed]
    return ToolOutputs(conversation_id, chat_id, {"tool_outputs": outputs, "stream": True})
