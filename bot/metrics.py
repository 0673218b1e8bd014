"""Prometheus metrics of kurashi (prometheus_client, default registry).

Owns the metric names: messages by channel and language, decisions, handling latency,
send failures, the outbox's stamp lag. Anything may call the ``observe_*``/``record_*``
helpers; ``GET /metrics`` (bot/app.py) renders them. Imports nothing from the project.

Several worker processes (``kurashi serve --workers N``): the parent sets
``PROMETHEUS_MULTIPROC_DIR`` before they start, so prometheus_client keeps every worker's
values in files there and ``render_latest`` adds them up — a scrape answered by any worker
shows the totals of all of them (counters and histograms only: no gauges here).
"""
from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

MESSAGES = Counter("kurashi_messages_total", "Resident events handled by the core",
                   ["channel", "language"])
DECISIONS = Counter("kurashi_decisions_total", "What the core did with an event",
                    ["decision"])
LATENCY = Histogram("kurashi_handle_seconds", "Time to handle one event in the core",
                    ["channel"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
SEND_FAILURES = Counter("kurashi_send_failures_total", "Failed sends to a platform",
                        ["channel", "reason"])
STAMP_LAG = Histogram("kurashi_outbox_stamp_lag_seconds",
                      "Outbox: from the platform's answer to the committed 'sent' stamp (a relay killed "
                      "meanwhile sends again where the platform has no idempotency key: Telegram)",
                      ["channel"],
                      buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
WEBHOOKS = Counter("kurashi_webhook_events_total", "Webhook events received",
                   ["channel", "outcome"])


def observe_message(channel: str, language: str | None, decision: str, seconds: float) -> None:
    """Count one handled event (no text, no user id: labels stay low-cardinality)."""
    MESSAGES.labels(channel=channel, language=language or "none").inc()
    DECISIONS.labels(decision=decision).inc()
    LATENCY.labels(channel=channel).observe(seconds)


def record_send_failure(channel: str, reason: str) -> None:
    """Count a failed send ("retry", "permanent", "blocked", …)."""
    SEND_FAILURES.labels(channel=channel, reason=reason).inc()


def observe_stamp_lag(channel: str, seconds: float) -> None:
    """How long a pushed row waited, after the platform's answer, for its stamp to be committed."""
    STAMP_LAG.labels(channel=channel).observe(seconds)


def record_webhook(channel: str, outcome: str) -> None:
    """Count a webhook delivery ("stored", "duplicate", "rejected", "malformed")."""
    WEBHOOKS.labels(channel=channel, outcome=outcome).inc()


def render_latest() -> tuple[bytes, str]:
    """The exposition text and its content type, for ``GET /metrics``."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import CollectorRegistry, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
