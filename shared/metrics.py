"""Prometheus metrics of this process, and the gauges read from the shared backends when `/metrics` is scraped.

Counters and histograms count what this process did (one process for `make run`; one per
function under `make emulate` and on Google Cloud, where the log-based metrics deploy.sh
creates count across instances). The dead-letter backlog and the bus queue depth are read
from the document store and the event bus at scrape time, so they hold for every process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.handlers.dead_letter_store import BACKLOG_CAP, open_dead_letters
from shared.services import Services

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REGISTRY = CollectorRegistry(auto_describe=True)

ONBOARDINGS = Counter(
    "onboarding_onboardings",
    "Onboardings by outcome: accepted (202), replayed (same Idempotency-Key), active, failed (a step dead-lettered)",
    ["outcome"],
    registry=REGISTRY,
)
STEP_SECONDS = Histogram(
    "onboarding_step_duration_seconds",
    "Time to handle one delivery of a step command, by step and outcome (done, duplicate, stale, dead_lettered, error)",
    ["step", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
BILLING_EVENTS = Counter(
    "onboarding_billing_events",
    "Billing event deliveries by outcome (applied, ignored, duplicate, dead_lettered, error, ...)",
    ["outcome"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "onboarding_http_requests",
    "HTTP requests by function (the route table's) and status code",
    ["function", "method", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "onboarding_http_request_duration_seconds",
    "HTTP request latency by function",
    ["function"],
    registry=REGISTRY,
)


def count_onboarding(outcome: str) -> None:
    """One more onboarding with this outcome."""
    ONBOARDINGS.labels(outcome=outcome).inc()


def observe_step(step: str, outcome: str, seconds: float) -> None:
    """One delivery of a step command handled in `seconds`."""
    STEP_SECONDS.labels(step=step, outcome=outcome).observe(seconds)


@contextmanager
def timed_delivery(step: str) -> Iterator[list[str]]:
    """Time one delivery of a step command; the block appends its outcome (none appended: "error", it raised).

    The line logged with the duration is what the log-based metric `onboarding_step_duration`
    (deploy.sh) counts on Google Cloud, where each function instance keeps its own counters.
    """
    outcome: list[str] = []
    started = time.monotonic()
    try:
        yield outcome
    finally:
        seconds = time.monotonic() - started
        result = outcome[-1] if outcome else "error"
        observe_step(step, result, seconds)
        logger.info("step delivery handled", extra={"step": step, "outcome": result, "duration_seconds": round(seconds, 6)})


def count_billing_event(outcome: str) -> None:
    """One billing event delivery handled with `outcome`."""
    BILLING_EVENTS.labels(outcome=outcome).inc()


def observe_request(function: str, method: str, status: int, seconds: float) -> None:
    """One HTTP request answered."""
    HTTP_REQUESTS.labels(function=function, method=method, status=str(status)).inc()
    HTTP_SECONDS.labels(function=function).observe(seconds)


class BackendGauges(Collector):
    """Read at scrape time from the shared backends: open dead letters, and undelivered messages per subscription."""

    def __init__(self, services: Callable[[], Services | None]) -> None:
        self._services = services

    def describe(self) -> list[Metric]:
        """No fixed description: the gauges depend on the wired backends."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The dead-letter backlog and (on the embedded bus) the queue depth per subscription."""
        services = self._services()
        if services is None:
            return
        backlog = GaugeMetricFamily(
            "onboarding_dead_letter_backlog",
            f"Dead letters not yet retried (OPEN), counted up to {BACKLOG_CAP}",
        )
        backlog.add_metric([], open_dead_letters(services))
        yield backlog
        depths = services.bus.backlog()
        if depths is not None:
            depth = GaugeMetricFamily(
                "onboarding_bus_queue_depth",
                "Messages not yet acknowledged or dead-lettered, per subscription of the embedded bus",
                labels=["subscription"],
            )
            for subscription, count in sorted(depths.items()):
                depth.add_metric([subscription], count)
            yield depth


_gauges: BackendGauges | None = None


def exposition(services: Callable[[], Services | None]) -> bytes:
    """Every metric in the Prometheus text format (the backend gauges registered on first use)."""
    global _gauges
    if _gauges is None:
        _gauges = BackendGauges(services)
        REGISTRY.register(_gauges)
    return generate_latest(REGISTRY)
