"""State that survives requests, workers and restarts.

    create_app -> open_store(settings, instance_path) -> Store
        REDIS_URL set   -> redis_store.RedisStore (many workers, many machines)
        otherwise       -> sqlite.SQLiteStore at Settings.database_path
                           (SWITCHBOARD_DATABASE), default <instance>/switchboard.db

The interface and its records are in base.py; nothing here imports flask.
"""
from __future__ import annotations

import os

from .base import (
    Block,
    Conversation,
    Store,
    StoreBusy,
    StoredMessage,
    StoredResponse,
    StoreError,
    WorkflowSession,
    new_id,
)

DEFAULT_DATABASE = "switchboard.db"

__all__ = ["Block", "Conversation", "Store", "StoreBusy", "StoreError", "StoredMessage", "StoredResponse",
           "WorkflowSession", "new_id", "open_store", "database_path"]


def database_path(settings, instance_path: str) -> str:
    return settings.database_path or os.path.join(instance_path, DEFAULT_DATABASE)


def open_store(settings, instance_path: str) -> Store:
    if settings.redis_url:
        from .redis_store import RedisStore

        return RedisStore(settings.redis_url, settings.redis_prefix)
    from .sqlite import SQLiteStore

    return SQLiteStore(database_path(settings, instance_path))
