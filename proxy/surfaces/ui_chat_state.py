"""What the UI chat surface keeps per caller: settings, saved exchanges, resume names.

    ui_chat (blueprint) -> these helpers -> Store.get_meta / merge_meta / *_ui_messages

Plain functions over the store and the request's JSON; no Flask here.
"""
from __future__ import annotations

import logging
from typing import Any

from ..errors import BadRequest
from .ui_chat_codec.decode import ROLES

log = logging.getLogger(__name__)

BLOCK = "block"
SETTINGS = ("settings", "global")
SEEDED = "switchboard:seeded"  # marks a settings record that already holds the YAML initial values


def current_settings(board, who: str) -> dict:
    """The caller's settings: their own map once they saved one, else the YAML `settings:`."""
    stored = board.store.get_meta(who, *SETTINGS)
    if SEEDED not in stored:
        return dict(board.settings.extra.get("settings") or {})
    return {k: v for k, v in stored.items() if k != SEEDED}


def put_settings(board, who: str, changes: dict) -> dict:
    """Merge `changes` (null removes); the first save starts from the YAML values."""
    if SEEDED in changes:
        raise BadRequest(f"{SEEDED!r} is reserved", param=SEEDED)
    if SEEDED not in board.store.get_meta(who, *SETTINGS):
        changes = {**current_settings(board, who), **changes, SEEDED: True}
    merged = board.store.merge_meta(who, *SETTINGS, changes)
    return {k: v for k, v in merged.items() if k != SEEDED}


def require_map(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object; a null value removes that key", param=what)
    return value


def resume_names(who: str, block_id: str | None, chat_id: str | None) -> list[str]:
    if block_id is not None:
        names = [f"{who}|block:{block_id}"]
        if chat_id:
            names.append(f"{who}|block:{block_id}|chat:{chat_id}")
        return names
    return [f"{who}|chat:{chat_id}"] if chat_id else []


def save_exchange(store, who: str, chat_key: str, history: list[dict], reply: dict) -> None:
    """Keep the exchange without waiting for the client to save it. The body
    normally holds the whole history: then the stored chat becomes exactly
    what the client shows. A body trimmed by the app only adds or updates."""
    try:
        messages = [m for m in history if isinstance(m.get("id"), str) and m["id"] != reply["id"]] + [reply]
        store.save_ui_exchange(who, chat_key, unique(messages))
    except Exception:
        log.exception("storing a UI chat exchange failed")


def unique(messages: list[dict]) -> list[dict]:
    """The last message with each id, in the order ids first appear."""
    by_id: dict[str, dict] = {}
    for message in messages:
        by_id[message["id"]] = message
    return list(by_id.values())


def require_ui_messages(value: Any) -> list[dict]:
    if not isinstance(value, list):
        raise BadRequest("'messages' must be an array of UIMessages {id, role, parts}", param="messages")
    seen: set[str] = set()
    for index, message in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(message, dict) or not isinstance(message.get("id"), str) or not message["id"]:
            raise BadRequest(f"{where} must be a UIMessage with a string id", param=f"{where}.id")
        if message.get("role") not in ROLES:
            raise BadRequest(f"{where}.role must be one of system, user, assistant", param=f"{where}.role")
        if not isinstance(message.get("parts"), list):
            raise BadRequest(f"{where}.parts must be an array", param=f"{where}.parts")
        if message["id"] in seen:
            raise BadRequest(f"{where}.id {message['id']!r} appears twice", param=f"{where}.id")
        seen.add(message["id"])
    return value
