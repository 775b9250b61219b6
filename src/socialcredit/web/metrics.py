"""Prometheus metrics. With several workers, set ``PROMETHEUS_MULTIPROC_DIR`` (``serve`` does)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

CHECKS = Counter("socialcredit_checks", "Eligibility answers given, by decision", ["decision"])
CHECK_REQUESTS = Counter("socialcredit_check_requests", "Requests to POST /v1/checks")
REFUSALS = Counter("socialcredit_refusals", "Refused requests, by rule", ["rule"])
RECORDS = Counter("socialcredit_records", "Records furnished through the API", ["outcome"])
DECISIONS_WRITTEN = Counter("socialcredit_decisions_written", "Decision rows committed")
DECISION_COMMIT = Histogram(
    "socialcredit_decision_commit_seconds",
    "Time to commit one group of decisions",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0),
)
INDEX_SUBJECTS = Gauge(
    "socialcredit_index_subjects",
    "Subjects with a measure in force in the in-memory index",
    multiprocess_mode="max",
)
STATUS_LAG = Gauge(
    "socialcredit_status_lag_entries",
    "Ledger entries not yet reflected in the status",
    multiprocess_mode="max",
)
DECISION_PROJECTION_LAG = Gauge(
    "socialcredit_decision_projection_lag",
    "Answers logged but not yet projected one row per answer (readers project them first)",
    multiprocess_mode="max",
)

NOTICES_FAILING = Gauge(
    "socialcredit_notices_failing",
    "1 while the notifier or the delivery pump fails (its error is `notices` in /readyz)",
    multiprocess_mode="max",
)


def on_commit(rows: int, seconds: float) -> None:
    DECISIONS_WRITTEN.inc(rows)
    DECISION_COMMIT.observe(seconds)


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(DEFAULT_REGISTRY), CONTENT_TYPE_LATEST
