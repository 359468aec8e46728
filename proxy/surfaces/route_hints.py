"""Route hints: the request headers that choose a Coze mode, bot, workflow,
conversation or workflow session (docs/coze-routing.md). Pure.

    /v1/chat/completions headers -> route_hints(headers) -> ChatRequest.hints
    ChatRequest.hints -> Router (which provider) -> CozeProvider (which mode)

    x-model-type           chat (default) | conversation | workflow
    x-bot-id               a Coze bot id
    x-workflow-id          a Coze workflow id
    x-conversation-id      a conversation this server returned before
    x-workflow-session-id  an interrupted workflow run to resume
"""
from __future__ import annotations

from typing import Mapping

from ..errors import BadRequest

MODEL_TYPES = ("chat", "conversation", "workflow")
HEADERS = {
    "model_type": "x-model-type",
    "bot_id": "x-bot-id",
    "workflow_id": "x-workflow-id",
    "conversation_id": "x-conversation-id",
    "workflow_session_id": "x-workflow-session-id",
}


def route_hints(headers: Mapping[str, str]) -> dict[str, str]:
    """The hints present in `headers`; an unknown x-model-type is a 400."""
    hints: dict[str, str] = {}
    for name, header in HEADERS.items():
        value = (headers.get(header) or "").strip()
        if value:
            hints[name] = value
    if "model_type" in hints:
        hints["model_type"] = hints["model_type"].lower()
        if hints["model_type"] not in MODEL_TYPES:
            raise BadRequest(f"x-model-type must be one of {', '.join(MODEL_TYPES)}; got {hints['model_type']!r}",
                             param="x-model-type", code="invalid_model_type")
    for name in ("bot_id", "workflow_id"):
        if name in hints and not hints[name].isdigit():
            raise BadRequest(f"{HEADERS[name]} must be a Coze id (digits only); got {hints[name][:40]!r}",
                             param=HEADERS[name])
    return hints


def wants_coze(hints: Mapping[str, str]) -> bool:
    """Hints that name Coze whatever the model: a bot, a workflow, workflow mode."""
    return bool(hints.get("bot_id") or hints.get("workflow_id") or hints.get("workflow_session_id")
                or hints.get("model_type") == "workflow")
