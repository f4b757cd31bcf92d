"""The platform's Prometheus metrics, served at /metrics.

`ssc serve` points PROMETHEUS_MULTIPROC_DIR at a folder of its own before the workers start, so each
worker writes its samples there and /metrics on any worker shows them all (prometheus-client's
multiprocess mode): counters and histograms summed over the workers, and the per-worker gauges (policy
lines, change-log lag) one series per worker process. Without that variable (tests, a single process
served some other way) the process's own registry is served.

Labels take only values from closed sets (operation names of the schema, error codes, decision
reasons), never a caller's text: an unbounded label is a memory leak in every worker and in Prometheus.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

# Partner calls answer in a few milliseconds; admin changes and reports in tens to thousands.
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUESTS = Counter(
    "ssc_graphql_requests",
    "GraphQL requests by operation (the first root field) and outcome (ok or the first error's code)",
    ["operation", "outcome"],
)
LATENCY = Histogram(
    "ssc_graphql_request_seconds", "GraphQL request time by operation", ["operation"], buckets=SECONDS
)
DECISIONS = Counter(
    "ssc_decisions",
    "Partner calls on cards decided, by result (allow, deny) and reason",
    ["result", "reason"],
)
POLICY_LINES = Gauge(
    "ssc_policy_lines", "Business policy lines this worker holds in memory", multiprocess_mode="liveall"
)
CHANGE_LAG = Gauge(
    "ssc_policy_change_lag",
    "Changes of the policy log this worker had not applied when it last polled it (every 0.1 s on "
    "SQLite, 1 s or on notification on PostgreSQL)",
    multiprocess_mode="liveall",
)
AUDIT_BATCH = Histogram(
    "ssc_audit_batch_events",
    "Events the audit writer committed in one batch",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
AUDIT_WRITE = Histogram("ssc_audit_batch_seconds", "Time to commit one audit batch", buckets=SECONDS)
RATE_LIMITED = Counter(
    "ssc_rate_limited", "Partner calls refused by a rate limit, by limit (key or burst)", ["limit"]
)


def policy_polled(lines: int, behind: int) -> None:
    """After a worker's poll of the change log: the lines it holds, the changes it had not applied."""
    POLICY_LINES.set(lines)
    CHANGE_LAG.set(behind)


def exposition() -> tuple[bytes, str]:
    """The metrics page and its content type: every worker's samples, or this process's alone."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def forget_dead_workers() -> None:
    """Drop the per-worker gauges of worker processes that are gone (a restarted worker has a new
    pid): otherwise the killed worker's last policy size and lag would be reported for ever."""
    folder = os.environ.get(MULTIPROCESS_DIR)
    if not folder:
        return
    for path in Path(folder).glob("gauge_liveall_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, folder)
        except PermissionError:  # alive, another user's
            continue
