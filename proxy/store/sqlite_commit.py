"""Group commit for the SQLite store's writer connection (proxy/store/sqlite.py).

    SQLiteStore._write(work) -> GroupCommit.run(work): queued; the first writer leads
        -> (gevent: waits `window` for others) -> BEGIN IMMEDIATE
        -> each queued work in a SAVEPOINT of its own -> COMMIT (one fsync)
        -> every writer wakes with its own result or error

Every write used to be its own transaction, and with synchronous=FULL its
own fsync: under load a saved chat exchange paid one each, with the gevent
hub blocked meanwhile. Writers that come together now share one; each still
returns only once its write is on disk, and one that fails is rolled back
alone. Under gevent nothing can join a commit while it runs (the hub is
blocked in SQLite), hence the short wait of the leader; threads join a
commit in progress by themselves.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any, Callable

from .base import StoreBusy

# seconds the leader waits under gevent for other writers to join its commit
GROUP_WINDOW_GEVENT = 0.005


def locked(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


class _Job:
    """One caller's write, waiting for the commit that carries it."""

    __slots__ = ("work", "done", "result", "error")

    def __init__(self, work: Callable[[sqlite3.Connection], Any]) -> None:
        self.work = work
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit:
    """The one writer connection of a process, shared by group commits."""

    def __init__(self, connection: sqlite3.Connection, path: str, write_deadline: float, window: float) -> None:
        self.connection = connection
        self.path = path
        self.write_deadline = write_deadline
        self.window = window
        self._jobs_lock = threading.Lock()
        self._jobs: list[_Job] = []
        # One leader at a time, and only the leader uses the connection: it is
        # never in two transactions at once without a lock of its own.
        self._leading = False

    def run(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `work` in a BEGIN IMMEDIATE transaction, and return once it is
        committed (synchronous=FULL: on disk). Group commit: writers that come
        while one gathers or commits share its transaction, each in a savepoint
        of its own (one failing rolls back only itself), and one fsync."""
        job = _Job(work)
        with self._jobs_lock:
            self._jobs.append(job)
            lead = not self._leading
            if lead:
                self._leading = True
        if lead:
            self._lead()
        elif not job.done.wait(self.write_deadline * 2):
            raise StoreBusy(f"the SQLite store {self.path} stayed busy for {self.write_deadline * 2:g} s")
        if job.error is not None:
            raise job.error
        return job.result

    def _lead(self) -> None:
        """Commit the waiting jobs, batch after batch, until none is left."""
        # Whatever interrupts the leader (a greenlet killed at shutdown), the
        # jobs it holds are still committed and every waiter is woken; only
        # then is the interruption raised.
        interrupted: BaseException | None = None
        if self.window:
            try:
                time.sleep(self.window)  # yields: other greenlets' writes join
            except BaseException as error:  # noqa: BLE001 - re-raised below
                interrupted = error
        while True:
            with self._jobs_lock:
                batch, self._jobs = self._jobs, []
                if not batch:
                    self._leading = False
                    break
            try:
                self._commit(batch)
            except BaseException as error:  # noqa: BLE001 - every job of the batch gets it
                for job in batch:
                    if job.error is None:
                        job.error = error
                if not isinstance(error, Exception) and interrupted is None:
                    interrupted = error
            finally:
                for job in batch:
                    job.done.set()
        if interrupted is not None:
            raise interrupted

    def _commit(self, batch: list[_Job]) -> None:
        deadline = time.monotonic() + self.write_deadline
        connection = self.connection
        delay = 0.001
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as error:
                if not locked(error):
                    raise
                if time.monotonic() > deadline:
                    raise StoreBusy(f"another process held the SQLite store {self.path} locked too long") from error
                time.sleep(delay)  # yields under gevent, unlike SQLite's busy handler
                delay = min(delay * 2, 0.005)  # short: SQLite's lock is not fair, keep polling
        try:
            if len(batch) == 1:  # alone: its failure rolls back the transaction, no savepoint needed
                batch[0].result = batch[0].work(connection)
            else:
                for job in batch:
                    connection.execute("SAVEPOINT job")
                    try:
                        job.result = job.work(connection)
                    except Exception as error:  # noqa: BLE001 - handed to its own caller
                        job.error = error
                        connection.execute("ROLLBACK TO job")
                    connection.execute("RELEASE job")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
