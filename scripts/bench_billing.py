"""Benchmark of billing events on embedded backends (`python -m scripts.bench_billing`).

Latency: a billing message posted over HTTP until its effects are done (state document,
warehouse rows, lifecycle event), one at a time. Throughput: a burst of messages for many
tenants at once, until the bus is idle.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.events import BillingEvent
from scripts.bench import operator_session, percentile, request_body, serving_platform
from shared.handlers.billing import processed_id

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def message(event_id: str, tenant_id: str, minute: int) -> dict[str, Any]:
    """Payment failed on even minutes, recovered on odd ones: every message changes the status."""
    kind = "payment_failed" if minute % 2 == 0 else "payment_recovered"
    occurred = (EPOCH + timedelta(minutes=minute)).isoformat()
    return {"event_id": event_id, "tenant_id": tenant_id, "type": kind, "occurred_at": occurred, "source": "bench"}


def run(data_dir: Path, tenants: int, latency_events: int, burst_events: int) -> tuple[list[float], float, int]:
    """Latencies (ms) of sequential events, then seconds and count of a burst."""
    with serving_platform(data_dir) as (platform, url):
        session = operator_session(data_dir)
        documents = platform.services.documents
        tenant_ids = [f"billing_bench_{index}" for index in range(tenants)]
        for tenant_id in tenant_ids:
            session.post(f"{url}/tenants/dryrun", json=request_body(tenant_id), timeout=10)
            assert session.post(f"{url}/tenants/onboard", json=request_body(tenant_id), timeout=10).status_code == 202
        assert platform.bus.wait_idle(300), "onboarding did not finish"

        latencies = []
        for index in range(latency_events):
            event_id = f"lat-{index}"
            body = message(event_id, tenant_ids[index % tenants], index)
            assert session.post(f"{url}/billing/events", json=body, timeout=10).status_code == 202
            accepted = time.perf_counter()
            while not (documents.get("processed_events", processed_id(BillingEvent.model_validate(body))) or {}).get("effects_done"):
                time.sleep(0.0005)
            latencies.append((time.perf_counter() - accepted) * 1000)

        started = time.perf_counter()
        for index in range(burst_events):
            body = message(f"burst-{index}", tenant_ids[index % tenants], latency_events + index)
            assert session.post(f"{url}/billing/events", json=body, timeout=10).status_code == 202
        assert platform.bus.wait_idle(600), "burst did not drain"
        return latencies, time.perf_counter() - started, burst_events


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--burst", type=int, default=500)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        latencies, seconds, count = run(Path(tmp), args.tenants, args.events, args.burst)
    print(
        f"billing event accepted -> applied (state, warehouse, lifecycle) over {len(latencies)} events: "
        f"p50 {percentile(latencies, 0.5):.1f} ms  p99 {percentile(latencies, 0.99):.1f} ms"
    )
    print(f"burst of {count} events over {args.tenants} tenants (HTTP in, bus drained): {seconds:.2f} s, {count / seconds:.0f} events/s")


if __name__ == "__main__":
    main()
