"""proxy/store/sqlite.py group commit: writers that come together share one
transaction (one fsync), each in its own savepoint, and each gets its own
result or error once the commit is on disk."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from proxy.store.sqlite import SQLiteStore

pytestmark = pytest.mark.integration


def test_concurrent_writers_share_one_commit_and_a_failing_one_rolls_back_alone(tmp_path):
    store = SQLiteStore(str(tmp_path / "store.db"))
    batches: list[int] = []
    commit = store._committer._commit

    def counted(batch):
        batches.append(len(batch))
        commit(batch)

    store._committer._commit = counted
    store._committer.window = 0.3  # long enough for every writer below to join the first one
    start = threading.Barrier(12)
    results: dict[int, object] = {}

    def writer(n: int) -> None:
        start.wait()
        try:
            if n == 5:
                def failing(connection: sqlite3.Connection) -> None:
                    connection.execute("INSERT INTO ui_meta (owner, scope, key, metadata, updated_at) "
                                       "VALUES ('o', 's', 'doomed', '{\"x\": 1}', 0)")
                    raise ValueError("this write fails after it wrote")

                store._write(failing)
            else:
                results[n] = store.merge_meta("o", "s", f"k{n}", {"n": n})
        except Exception as error:  # noqa: BLE001 - checked below
            results[n] = error

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert isinstance(results[5], ValueError)
    assert all(results[n] == {"n": n} for n in range(12) if n != 5)
    assert sum(batches) == 12 and len(batches) <= 2, batches  # together, not twelve commits
    # what the others wrote is on disk; nothing of the failed write is
    fresh = SQLiteStore(str(tmp_path / "store.db"))
    assert all(fresh.get_meta("o", "s", f"k{n}") == {"n": n} for n in range(12) if n != 5)
    assert fresh.get_meta("o", "s", "doomed") == {}


def test_a_lone_write_still_commits_and_raises_its_own_error(tmp_path):
    store = SQLiteStore(str(tmp_path / "store.db"))
    assert store.merge_meta("o", "s", "k", {"a": 1}) == {"a": 1}
    with pytest.raises(ZeroDivisionError):
        store._write(lambda connection: 1 / 0)
    assert store.merge_meta("o", "s", "k", {"b": 2}) == {"a": 1, "b": 2}  # the writer is free again
