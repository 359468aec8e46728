"""The usage log (proxy/usage.py) on both backends: rows in, aggregates out, retention."""
from __future__ import annotations

import time

import pytest
import redis

from proxy.usage import RedisUsage, SQLiteUsage, UsageRecord, parse_group_by, parse_time
from tests.store_support import LOCAL_REDIS, delete_prefix, unique_prefix

pytestmark = pytest.mark.integration  # SQLite files and the local Redis

DAY = 86400
T0 = 1796083200.0  # 2026-12-01 00:00:00 UTC


@pytest.fixture(params=["sqlite", "redis"])
def usage_log(request, tmp_path):
    if request.param == "sqlite":
        log = SQLiteUsage(str(tmp_path / "usage.db"), retention_days=10)
        yield log
        log.close()
        return
    prefix = unique_prefix()
    client = redis.Redis.from_url(LOCAL_REDIS)
    yield RedisUsage(client, prefix, retention_days=10)
    delete_prefix(LOCAL_REDIS, prefix)
    client.close()


def rows():
    return [
        UsageRecord(T0 + 10, "r1", "team-a", "mock", "demo", "openai_chat", 10, 5, 0, 0, 0.5, "ok", None, 0.1, 1.0),
        UsageRecord(T0 + 20, "r2", "team-a", "openai/gpt", "openai", "workbench", 100, 50, 7, 20, None, "error",
                    "upstream_error", None, 2.0),
        UsageRecord(T0 + DAY + 5, "r3", "team-b", "mock", "demo", "openai_chat", 1, 2, 0, 0, 1.5, "cancelled", None,
                    0.2, 0.5),
    ]


def test_aggregates_by_key_model_and_day(usage_log):
    for row in rows():
        usage_log.record(row)
    by_key = usage_log.aggregate(T0, T0 + 2 * DAY, ("key",))
    assert [(g["key"], g["requests"], g["errors"], g["input_tokens"], g["output_tokens"]) for g in by_key] == [
        ("team-a", 2, 1, 110, 55), ("team-b", 1, 1, 1, 2)]
    assert by_key[0]["reasoning_tokens"] == 7 and by_key[0]["cached_tokens"] == 20
    assert by_key[0]["cost"] == pytest.approx(0.5) and by_key[1]["cost"] == pytest.approx(1.5)
    by_day = usage_log.aggregate(T0, T0 + 2 * DAY, ("day", "model"))
    assert [(g["day"], g["model"], g["requests"]) for g in by_day] == [
        ("2026-12-01", "mock", 1), ("2026-12-01", "openai/gpt", 1), ("2026-12-02", "mock", 1)]
    # the range is [from, to)
    assert [g["requests"] for g in usage_log.aggregate(T0 + 15, T0 + DAY + 5, ())] == [1]
    assert usage_log.aggregate(T0 + 3 * DAY, T0 + 4 * DAY, ("key",)) == []
    (only,) = [r for r in usage_log.rows(T0, T0 + 15)]
    assert only == rows()[0]


@pytest.mark.unit
def test_parsing_of_query_values():
    assert parse_time("2026-12-01", "from", 0) == T0
    assert parse_time("2026-12-01T01:00:00Z", "from", 0) == T0 + 3600
    assert parse_time(str(T0), "from", 0) == T0
    assert parse_time(None, "from", 7) == 7
    with pytest.raises(ValueError, match="from must be unix seconds or an ISO 8601 date"):
        parse_time("yesterday", "from", 0)
    assert parse_group_by("key,day") == ("key", "day")
    with pytest.raises(ValueError, match="group_by must be one or more of key"):
        parse_group_by("color")


def test_sqlite_retention_drops_old_rows(tmp_path):
    log = SQLiteUsage(str(tmp_path / "usage.db"), retention_days=1)
    now = time.time()
    log.record(UsageRecord(now - 3 * DAY, "old"))
    log._last_prune = 0
    log.record(UsageRecord(now, "new"))
    assert [r.request_id for r in log.rows(0, now + 1)] == ["new"]
    log.close()


def test_redis_retention_trims_the_stream():
    prefix = unique_prefix()
    client = redis.Redis.from_url(LOCAL_REDIS)
    try:
        log = RedisUsage(client, prefix, retention_days=1)
        now = time.time()
        for index in range(300):  # approximate trimming drops whole nodes (100 entries each)
            log.record(UsageRecord(now - 3 * DAY + index * 0.001, f"old{index}"))
        log.record(UsageRecord(now, "new"))
        kept = [r.request_id for r in log.rows(0, now + 1)]
        assert "new" in kept and len(kept) < 300
    finally:
        delete_prefix(LOCAL_REDIS, prefix)
        client.close()


@pytest.mark.e2e  # starts gunicorn
def test_sqlite_rows_are_written_together_and_none_is_lost_when_a_worker_stops(tmp_path):
    """Rows are queued and written per 0.1 s: a read writes the queue first,
    and a worker stopped at once right after its last chats (SIGINT) still
    writes them before it exits."""
    import os
    import signal
    import sqlite3

    import requests

    from proxy import usage
    from tests.store_support import Gunicorn

    def on_disk(path) -> int:  # another connection: what a reader elsewhere would see
        with sqlite3.connect(path) as connection:
            return connection.execute("SELECT COUNT(*) FROM usage").fetchone()[0]

    log = SQLiteUsage(str(tmp_path / "direct.db"))
    for n in range(5):
        log.record(UsageRecord(time=T0 + n, request_id=f"r{n}"))
    assert on_disk(tmp_path / "direct.db") == 0  # queued, together
    assert [row.request_id for row in log.rows(T0, T0 + DAY)] == [f"r{n}" for n in range(5)]  # no wait
    log.record(UsageRecord(time=T0 + 9, request_id="last"))
    usage._flush_all()  # what a clean exit runs (atexit)
    assert on_disk(tmp_path / "direct.db") == 6

    database = tmp_path / "switchboard.db"
    server = Gunicorn(tmp_path, {"SWITCHBOARD_DATABASE": str(database), "SWITCHBOARD_DEMO_DELAY": "0"})
    try:
        for n in range(12):
            answer = requests.post(server.url + "/v1/chat/completions", timeout=10,
                                   json={"model": "mock", "messages": [{"role": "user", "content": f"hi {n}"}]})
            assert answer.status_code == 200
    finally:
        # SIGINT: the quick shutdown, no grace period; the last rows are
        # still queued in the worker, written on its way out
        os.killpg(server.process.pid, signal.SIGINT)
        server.process.wait(15)
        server.close()
    with sqlite3.connect(tmp_path / "switchboard-usage.db") as connection:
        rows = connection.execute("SELECT status, surface FROM usage").fetchall()
    assert rows == [("ok", "openai_chat")] * 12
