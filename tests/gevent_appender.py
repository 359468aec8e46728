"""Run as a subprocess: gevent-patched greenlets appending turns to one
conversation, as they would inside a gunicorn gevent worker.

    python tests/gevent_appender.py <sqlite|redis> <path or url> <prefix> <owner>
        <conversation id> <writer tag> <writers> <turns per writer> <start at (epoch s)>

Both processes of a test start writing at the same moment (start at).

Patches first, before anything imports threading or sockets (the test
process itself is not patched). Prints "ok <appends> <started> <ended>"
(epoch seconds) when every append was acknowledged.
"""
from gevent import monkey

monkey.patch_all()

import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0])

from proxy.canonical import TextPart  # noqa: E402
from proxy.store import StoredMessage  # noqa: E402


def main() -> None:
    backend, target, prefix, owner, conversation_id, tag, writers, turns, start_at = sys.argv[1:]
    assert monkey.is_module_patched("threading") and monkey.is_module_patched("socket")
    if backend == "sqlite":
        from proxy.store.sqlite import SQLiteStore

        store = SQLiteStore(target)
    else:
        from proxy.store.redis_store import RedisStore

        store = RedisStore(target, prefix)
    done = []

    def writer(number: int) -> None:
        for turn in range(int(turns)):
            label = f"{tag}-w{number}-t{turn}"
            stored = store.append_turn(conversation_id, owner, [
                StoredMessage("user", (TextPart(label),)),
                StoredMessage("assistant", (TextPart(label + "-answer"),)),
            ])
            assert stored is not None and stored[1].seq == stored[0].seq + 1
            done.append(label)
            gevent.sleep(random.random() * 0.002)

    gevent.sleep(max(0.0, min(float(start_at) - time.time(), 10.0)))
    started = time.time()
    greenlets = [gevent.spawn(writer, n) for n in range(int(writers))]
    gevent.joinall(greenlets, timeout=60, raise_error=True)
    assert all(g.successful() for g in greenlets)
    print("ok", len(done), started, time.time())


if __name__ == "__main__":
    main()
