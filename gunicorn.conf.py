"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

Imports only `os` (and `tempfile`): anything that imports the app or `requests` here would
run in the master before the gevent worker patches (docs/deployment.md, "gunicorn and gevent").
The worker hooks (post_worker_init, worker_int) import proxy.serving inside the worker, after
the patching.
"""
import os

wsgi_app = "wsgi:app"
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
worker_class = "gevent"
# gevent records the spawning stack of every greenlet (two per stream) for
# debugging; without it spawning is faster and each open stream lighter.
os.environ.setdefault("GEVENT_TRACK_GREENLET_TREE", "false")
# One worker by default: Socket.IO long-polling needs every request of a
# session on the same process. More workers need sticky sessions in nginx
# and a message queue (REDIS_URL); see README "Deployment".
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# Simultaneous connections per worker: streams, idle keep-alives, Socket.IO
# sockets. Past it the worker accepts nothing more (not even /health), so
# face the internet through nginx, which holds idle and slow clients itself
# (deploy/nginx.conf) and hands gunicorn only complete requests.
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "1000"))
# For gevent workers only a liveness heartbeat, not a request time limit.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# In-flight streams get this long to finish on restart or deploy; those that
# cannot are ended with their protocol's in-band `server_shutdown` error a
# little before it runs out (proxy/serving.py).
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "120"))
# Seconds a connection may take to send a request's headers, and to stay idle
# between two requests: gunicorn has no separate header timeout, it bounds
# both with this. Keep nginx's upstream keepalive_timeout below it
# (deploy/nginx.conf: 8 s), or nginx may reuse a connection being closed.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "10"))
# gunicorn's own request limits (answered 414 / 431 / 400 in the JSON error shape).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
preload_app = False
# Switchboard writes an access line for every request itself (JSON, with the
# request id, key name, model, tokens: proxy/logs.py); gunicorn's plain-text
# one would be a second line per request. ACCESS_LOG=- turns it on.
accesslog = os.environ.get("ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
control_socket_disable = True

# Prometheus multiprocess mode (proxy/metrics.py): each worker writes its
# values to files in this directory and /metrics sums them. Set here, in the
# master, so every worker has it before it imports prometheus_client. An
# operator's directory is emptied at start (stale files of an earlier run
# would be summed); otherwise a fresh one is made per master.
if not os.environ.get("_SWITCHBOARD_METRICS_READY"):  # once per master, not again on reload (HUP)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        os.makedirs(_directory, exist_ok=True)
        for _name in os.listdir(_directory):
            if _name.endswith(".db"):
                os.remove(os.path.join(_directory, _name))
    else:
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="switchboard-metrics-")
        os.environ["_SWITCHBOARD_METRICS_OWNED"] = "1"
    os.environ["_SWITCHBOARD_METRICS_READY"] = "1"

def child_exit(server, worker):
    """A worker ended: drop its live gauges (active streams), as
    prometheus_client.multiprocess.mark_process_dead does; importing that
    here would pull urllib and ssl into the master before gevent patches."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    for name in os.listdir(directory):
        if name.startswith("gauge_live") and name.endswith(f"_{worker.pid}.db"):
            try:
                os.remove(os.path.join(directory, name))
            except FileNotFoundError:
                pass


def on_exit(server):
    """Remove the metrics directory this master made."""
    if os.environ.get("_SWITCHBOARD_METRICS_OWNED"):
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))
        os.rmdir(directory)


def post_worker_init(worker):
    """Once the app is loaded: move everything created so far (modules, the
    app, its routes) out of the garbage collector's reach. These objects live
    as long as the worker, and every full collection would walk them again
    while all streams of the worker wait.

    Then make the older generations' collections rarer. Every open stream
    holds ~180 tracked objects (sockets, parsers, generators, headers), so
    with 1,000 streams a generation-1 collection walked ~60,000 objects
    (35-55 ms) every ~2 s and a full one ~160,000 (80-130 ms), stalling every
    stream of the worker each time (bench scenario (c)). The requests'
    cyclic garbage is small and dies young (a few objects of Werkzeug's
    router per request), so it is still collected by the young collections;
    only cycles that outlive a young collection wait longer."""
    import gc

    gc.freeze()
    young, _, old = gc.get_threshold()
    # 100 young collections per generation-1 collection (CPython: 10); a
    # full collection still comes every 10 of those.
    gc.set_threshold(young, 100, old)

    import logging

    # A log record names its thread by default: under gevent each greenlet
    # that logs (every stream's pump writes the chat's access line) would get
    # a dummy Thread object made and registered for it. No format shows it.
    logging.logThreads = False

    # Imported here, in the worker, after the gevent worker has patched.
    from proxy import serving

    serving.worker_started(worker)


def worker_int(worker):
    """SIGINT / SIGQUIT: the worker stops at once, without a grace period;
    streams still get their in-band shutdown error on the way out."""
    from proxy import serving

    serving.end_streams_now()
