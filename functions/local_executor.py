"""The local pipeline executor of `make run`: takes each admitted run off pipeline-runs and reports it SUCCEEDED.

It does what an executor does on Google Cloud (a subscriber on pipeline-runs, a publisher on
pipeline-run-results): RUNNING when it takes a run, SUCCEEDED `local_executor_seconds` later.
It runs nothing; it closes the loop on a laptop. A run it never reports (the process stopped)
is timed out by its lease like any other.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Literal

from schemas.events import PipelineRunRequested, PipelineRunResult
from shared.adapters.embedded.sqlite_event_bus import ReceivedMessage, SqliteEventBus
from shared.handlers.publishing import publish_event
from shared.services import Services

logger = logging.getLogger(__name__)
SUBSCRIPTION = "pipeline-runs-local-executor"


class LocalExecutor:
    """A subscriber on pipeline-runs and a thread that reports each run finished when it is due."""

    def __init__(self, services: Services, bus: SqliteEventBus) -> None:
        self.services = services
        self.bus = bus
        self.seconds = services.settings.pipeline_runs.local_executor_seconds
        self._due: list[tuple[float, str, str]] = []  # (monotonic due time, run id, tenant id)
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def wire(self) -> None:
        """Subscribe to pipeline-runs (before the bus starts)."""
        topic = self.services.settings.topics.pipeline_runs
        self.bus.create_subscription(SUBSCRIPTION, topic)
        self.bus.subscribe(SUBSCRIPTION, self._take)

    def start(self) -> None:
        """Start reporting runs as they fall due."""
        self._thread = threading.Thread(target=self._loop, name="local-executor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop; runs not reported yet are left to their lease."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(5)

    def _take(self, message: ReceivedMessage) -> None:
        run = PipelineRunRequested.model_validate_json(message.data)
        self._report(run.pipeline_logging_id, run.tenant_id, "RUNNING")
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + self.seconds, run.pipeline_logging_id, run.tenant_id))
            self._wake.notify_all()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and (not self._due or self._due[0][0] > time.monotonic()):
                    self._wake.wait(None if not self._due else max(0.0, self._due[0][0] - time.monotonic()))
                if self._stopping:
                    return
                _, run_id, tenant_id = heapq.heappop(self._due)
            try:
                self._report(run_id, tenant_id, "SUCCEEDED")
            except Exception:
                logger.exception("local executor could not report a run; its lease will time it out", extra={"run_id": run_id})

    def _report(self, run_id: str, tenant_id: str, status: Literal["RUNNING", "SUCCEEDED"]) -> None:
        report = PipelineRunResult(
            event_id=f"{run_id}.{status}",
            pipeline_logging_id=run_id,
            tenant_id=tenant_id,
            status=status,
            occurred_at=datetime.now(UTC),
        )
        publish_event(self.services, self.services.settings.topics.pipeline_run_results, report, tenant_id=tenant_id)
