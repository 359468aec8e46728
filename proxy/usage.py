"""Usage accounting: one row per finished request, and its aggregation.

    gate (the chat's end: finished, failed, client gone; or rejected) -> UsageRecord
        -> UsageLog.record()  -> SQLite table (default) | Redis stream (REDIS_URL)
    GET /v1/usage (surfaces/usage.py) -> UsageLog.aggregate(start, end, group_by)

A row holds the key's name (never the key), model, provider, surface, tokens
in / out / reasoning / cached, the cost when `prices:` covers the model,
status (ok, error, cancelled, rejected), the error code, time to first token
and duration. When the upstream reported no usage (the client left, the
stream failed) the tokens are estimated from the lengths of the request and
of what was produced (about four characters a token) and `estimated` is 1. Rows older than `usage: {retention_days: N}` (default 90) are
deleted as new rows arrive.

SQLite: its own file beside the store's (`<database>-usage.db`, or
`usage: {database: path}`), so accounting never waits behind conversation
writes; the rows of each 0.1 s go in together, in one transaction (a
commit per chat was a measurable share of a short stream's CPU; reads and a
clean exit write what is queued first); WAL with synchronous=NORMAL (a
crash may lose the last rows, never corrupt the file); indexed by time, so
a period's aggregate reads only its rows. Redis: one stream, `XADD ... MINID` trimming to the retention in the
same command; stream ids are times, so a period is one XRANGE.
Imports neither flask nor requests.
"""
from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any, Iterable

import orjson

from .timers import call_later

log = logging.getLogger(__name__)

GROUPS = ("key", "model", "provider", "surface", "status", "day")
DEFAULT_RETENTION_DAYS = 90
PRUNE_EVERY = 600.0  # seconds between retention sweeps of one process
SUMS = ("input_tokens", "output_tokens", "reasoning_tokens", "cached_tokens", "cost")


@dataclass(slots=True)
class UsageRecord:
    time: float
    request_id: str = ""
    key: str = ""
    model: str = ""
    provider: str = ""
    surface: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cost: float | None = None
    status: str = "ok"
    error: str | None = None
    ttft: float | None = None
    duration: float = 0.0
    # 1 when the upstream reported no usage (client gone, stream failed):
    # tokens counted from the request's and the answer's length instead
    estimated: int = 0


COLUMNS = [f.name for f in fields(UsageRecord)]


def _values(record: UsageRecord) -> tuple:
    return tuple(getattr(record, name) for name in COLUMNS)


def day_of(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")


def new_group() -> dict[str, Any]:
    return {"requests": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "reasoning_tokens": 0,
            "cached_tokens": 0, "cost": 0.0}


def fold(rows: Iterable[UsageRecord], group_by: tuple[str, ...]) -> list[dict[str, Any]]:
    """Aggregate records in Python (the Redis backend; SQLite does it in SQL)."""
    groups: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        label = tuple(day_of(row.time) if name == "day" else getattr(row, name) for name in group_by)
        group = groups.get(label)
        if group is None:
            group = groups[label] = {**dict(zip(group_by, label, strict=True)), **new_group()}
        group["requests"] += 1
        group["errors"] += row.status != "ok"
        for name in SUMS:
            group[name] += getattr(row, name) or 0
    return [groups[label] for label in sorted(groups, key=lambda t: tuple("" if v is None else str(v) for v in t))]


class UsageLog:
    def __init__(self, retention_days: float = DEFAULT_RETENTION_DAYS) -> None:
        self.retention = retention_days * 86400
        self._last_prune = 0.0

    def record(self, record: UsageRecord) -> None:
        raise NotImplementedError

    def rows(self, start: float, end: float) -> list[UsageRecord]:
        raise NotImplementedError

    def aggregate(self, start: float, end: float, group_by: tuple[str, ...]) -> list[dict[str, Any]]:
        return fold(self.rows(start, end), group_by)

    def close(self) -> None:
        pass

    def _prune_due(self, now: float) -> bool:
        if now - self._last_prune < PRUNE_EVERY:
            return False
        self._last_prune = now
        return True


_LIVE: "weakref.WeakSet[SQLiteUsage]" = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    """The rows of the last moment, when the process exits cleanly (a worker's
    graceful stop included)."""
    for usage in list(_LIVE):
        try:
            usage.flush()
        except Exception:  # noqa: BLE001 - exiting anyway; the next ones may still be written
            log.exception("writing the last usage rows failed")


class SQLiteUsage(UsageLog):
    BUSY_TIMEOUT = 0.05  # SQLite's own wait blocks the gevent hub: keep it short, retry in Python
    WRITE_DEADLINE = 5.0
    # Rows are written together, one transaction per this many seconds: a
    # commit per chat was a measurable share of a short stream's CPU.
    FLUSH_DELAY = 0.1

    def __init__(self, path: str, retention_days: float = DEFAULT_RETENTION_DAYS) -> None:
        super().__init__(retention_days)
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._pid = -1
        self._connection()  # per process: connection, locks and the queue of rows
        self._write("""CREATE TABLE IF NOT EXISTS usage (
            time REAL NOT NULL, request_id TEXT, key TEXT, model TEXT, provider TEXT, surface TEXT,
            input_tokens INTEGER, output_tokens INTEGER, reasoning_tokens INTEGER, cached_tokens INTEGER,
            cost REAL, status TEXT, error TEXT, ttft REAL, duration REAL, estimated INTEGER)""")
        self._write("CREATE INDEX IF NOT EXISTS usage_by_time ON usage (time)")
        self._insert = f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # per process: after a fork, start afresh
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._pending: list[tuple] = []
            self._pending_lock = threading.Lock()
            self._flush_timer: Any = None
            _LIVE.add(self)  # flushed at a clean exit (_flush_all)
            self._db = sqlite3.connect(self.path, timeout=self.BUSY_TIMEOUT, isolation_level=None,
                                       check_same_thread=False)
            self._retry(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute("PRAGMA synchronous=NORMAL")
        return self._db

    def _retry(self, action):
        deadline = time.monotonic() + self.WRITE_DEADLINE
        while True:
            try:
                return action()
            except sqlite3.OperationalError as error:
                text = str(error).lower()
                if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)  # yields to other greenlets under gevent

    def _write(self, sql: str, *params) -> None:
        db = self._connection()
        with self._lock:
            self._retry(lambda: db.execute(sql, params))

    def record(self, record: UsageRecord) -> None:
        """Queue the row; the rows of the next FLUSH_DELAY go in together."""
        with self._pending_lock:
            self._pending.append(_values(record))
            if self._flush_timer is not None:
                return
            self._flush_timer = call_later(self.FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """Write the queued rows in one transaction (reads call it first, and close())."""
        with self._pending_lock:
            rows, self._pending = self._pending, []
            timer, self._flush_timer = self._flush_timer, None
        if timer is not None:
            timer.cancel()  # a no-op when it is the timer that called
        if not rows:
            return
        db = self._connection()
        now = rows[-1][0]
        try:
            with self._lock:
                self._retry(lambda: self._insert_rows(db, rows))
                if self._prune_due(now):
                    self._retry(lambda: db.execute("DELETE FROM usage WHERE time < ?", (now - self.retention,)))
        except Exception:
            log.exception("writing %d usage row(s) failed", len(rows))

    def _insert_rows(self, db: sqlite3.Connection, rows: list[tuple]) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(self._insert, rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def rows(self, start: float, end: float) -> list[UsageRecord]:
        self.flush()
        db = self._connection()
        with self._lock:
            cursor = db.execute(f"SELECT {', '.join(COLUMNS)} FROM usage WHERE time >= ? AND time < ? ORDER BY time",
                                (start, end))
            return [UsageRecord(*row) for row in cursor.fetchall()]

    def aggregate(self, start: float, end: float, group_by: tuple[str, ...]) -> list[dict[str, Any]]:
        expressions = {"day": "strftime('%Y-%m-%d', time, 'unixepoch')"}
        selected = [f"{expressions.get(name, name)} AS {name}" for name in group_by]
        columns = selected + ["COUNT(*)", "SUM(status != 'ok')"] + [f"SUM({name})" for name in SUMS]
        self.flush()
        sql = (f"SELECT {', '.join(columns)} FROM usage WHERE time >= ? AND time < ?"
               + (f" GROUP BY {', '.join(group_by)} ORDER BY {', '.join(group_by)}" if group_by else ""))
        db = self._connection()
        with self._lock:
            result = db.execute(sql, (start, end)).fetchall()
        out = []
        for row in result:
            labels, counts = row[:len(group_by)], row[len(group_by):]
            if not group_by and counts[0] == 0:
                continue
            group = dict(zip(group_by, labels, strict=True))
            group["requests"], group["errors"] = counts[0], counts[1] or 0
            for name, value in zip(SUMS, counts[2:], strict=True):
                group[name] = value or (0.0 if name == "cost" else 0)
            out.append(group)
        return out

    def close(self) -> None:
        if self._pid == os.getpid():
            self.flush()
            self._db.close()


class RedisUsage(UsageLog):
    BATCH = 5000
    MARGIN = 60.0  # seconds

    def __init__(self, client, prefix: str, retention_days: float = DEFAULT_RETENTION_DAYS) -> None:
        super().__init__(retention_days)
        import redis  # noqa: F401  (the client's module; imported here so SQLite-only setups need no Redis)

        self.client = client
        self.stream = f"{prefix}:usage"

    def record(self, record: UsageRecord) -> None:
        self.settled(record, self.queue(self.client, record))

    def queue(self, client, record: UsageRecord) -> Any:
        """XADD the row on `client` (a pipeline: queued for its round trip).
        The entry id is the record's own time, so that a period is an id
        range. Trimming rides on every XADD ('~': whole macro nodes, cheap)."""
        data = {"row": orjson.dumps(_values(record))}  # one field: a fraction of the encoding work of 16
        try:
            return client.xadd(self.stream, data, id=f"{int(record.time * 1000)}-*",
                               minid=int((record.time - self.retention) * 1000), approximate=True)
        except Exception as error:  # noqa: BLE001 - handed to settled(), as a pipeline would
            return error

    def settled(self, record: UsageRecord, reply: Any) -> None:
        """A row older than the stream's newest entry (another worker's, a
        moment later) is refused with its own id: it takes the next id."""
        if isinstance(reply, Exception):
            data = {"row": orjson.dumps(_values(record))}
            self.client.xadd(self.stream, data, minid=int((record.time - self.retention) * 1000), approximate=True)

    def rows(self, start: float, end: float) -> list[UsageRecord]:
        out: list[UsageRecord] = []
        # ids can trail a record's time by a moment (see record()): read a
        # little past the range and filter on the time field.
        low, high = str(max(0, int((start - self.MARGIN) * 1000))), str(max(0, int((end + self.MARGIN) * 1000)))
        while True:
            entries = self.client.xrange(self.stream, low, high, count=self.BATCH)
            for _, data in entries:
                record = decode_entry(data)
                if start <= record.time < end:
                    out.append(record)
            if len(entries) < self.BATCH:
                return out
            low = "(" + (entries[-1][0].decode() if isinstance(entries[-1][0], bytes) else entries[-1][0])


def decode_entry(data: dict) -> UsageRecord:
    row = data.get(b"row") if b"row" in data else data.get("row")
    return UsageRecord(*orjson.loads(row))


def usage_database_path(store_database: str) -> str:
    root, extension = os.path.splitext(store_database)
    return f"{root}-usage{extension or '.db'}"


def open_usage(settings, store_database: str) -> UsageLog | None:
    section = settings.usage or {}
    if not isinstance(section, dict):
        raise ValueError("usage must be a mapping such as {retention_days: 90}")
    unknown = set(section) - {"retention_days", "database", "enabled"}
    if unknown:
        raise ValueError(f"usage: unknown field(s) {', '.join(sorted(unknown))}; known: database, enabled, "
                         "retention_days")
    enabled = section.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError(f"usage.enabled must be true or false, got {enabled!r}")
    if not enabled:
        return None
    retention = section.get("retention_days", DEFAULT_RETENTION_DAYS)
    if isinstance(retention, bool) or not isinstance(retention, (int, float)) or retention <= 0:
        raise ValueError(f"usage.retention_days must be a positive number, got {retention!r}")
    if settings.redis_url:
        import redis

        return RedisUsage(redis.Redis.from_url(settings.redis_url), settings.redis_prefix, retention)
    return SQLiteUsage(section.get("database") or usage_database_path(store_database), retention)


def parse_time(value: str | None, name: str, default: float) -> float:
    """`from` / `to` query values: unix seconds or an ISO 8601 date / date-time (UTC unless it says)."""
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be unix seconds or an ISO 8601 date such as 2026-12-01 "
                         f"or 2026-12-01T10:00:00Z, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def parse_group_by(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    for name in names:
        if name not in GROUPS:
            raise ValueError(f"group_by must be one or more of {', '.join(GROUPS)} (comma-separated), got {name!r}")
    return names
