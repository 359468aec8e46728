"""Prometheus metrics: what every chat did, counted once at its end by the gate.

    gate.admit (rejections) / gate.finish (requests, tokens, TTFT, duration,
        upstream errors, retries, fallbacks) -> these metrics
    GET /metrics (surfaces/metrics.py) -> exposition() -> Prometheus text format

Under gunicorn every worker is a process: prometheus-client's multiprocess
mode keeps each worker's values in files in PROMETHEUS_MULTIPROC_DIR
(gunicorn.conf.py makes a fresh directory when the variable is unset, and
deletes a dead worker's live-gauge files), and /metrics, served by any
worker, sums them. The variable must be set before this module is imported.
Without it (flask run, tests) the values live in this process.
"""
from __future__ import annotations

import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds. Time to first token spans fast demo answers to slow reasoning models.
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 300, 900)

REQUESTS = Counter("switchboard_requests", "Chat requests by surface, model, provider and status "
                   "(ok, error, cancelled, rejected)", ["surface", "model", "provider", "status"])
TTFT = Histogram("switchboard_time_to_first_token_seconds", "Time from the request to the first content event",
                 ["surface", "provider"], buckets=TTFT_BUCKETS)
DURATION = Histogram("switchboard_request_duration_seconds", "Time from the request to the end of its stream",
                     ["surface", "provider"], buckets=DURATION_BUCKETS)
ACTIVE = Gauge("switchboard_active_streams", "Chats whose upstream is open now", ["surface"],
               multiprocess_mode="livesum")
UPSTREAM_ERRORS = Counter("switchboard_upstream_errors", "Failed upstream attempts and in-stream errors by "
                          "provider and kind (the error code)", ["provider", "kind"])
RETRIES = Counter("switchboard_retries", "Retries of the same model before the first content token", ["provider"])
FALLBACKS = Counter("switchboard_fallbacks", "Moves to a fallback model before the first content token",
                    ["model", "fallback"])
TOKENS = Counter("switchboard_tokens", "Tokens by model, provider and direction (input, output)",
                 ["model", "provider", "direction"])
REJECTIONS = Counter("switchboard_rate_limit_rejections", "Requests refused by a per-key limit",
                     ["key", "limit"])


_children: dict[tuple[Any, tuple[str, ...]], Any] = {}


def labelled(metric: Any, *values: str) -> Any:
    """`metric.labels(*values)`, remembered: labels() validates and locks on
    every call, and the gate asks for the same few children for every chat.
    Only for label values from a bounded set (surfaces, known models and
    providers, statuses), as every label here should be."""
    key = (metric, values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


def multiprocess_directory() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> tuple[bytes, str]:
    """The current values of every worker (multiprocess mode) or of this process."""
    directory = multiprocess_directory()
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
