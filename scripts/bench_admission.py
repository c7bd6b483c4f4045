"""Admission figures for `make bench`: one tenant's admission latency (p50, p99) and admissions per second for 100 tenants at once.

Over real HTTP on the embedded backends (the local platform with its executor off, so only
admission is measured): each admission is the API key check, the read that refuses early, the
one transaction on the tenant's state document, the outbox publish and the usage appended to
the copy.
"""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests

from shared.domain.api_keys import generate_api_key, hash_api_key
from shared.domain.tenant import StepState, TenantState
from shared.services import API_KEYS, TENANTS, Services, iso

PIPELINE = "gcp/cost/billing"


def _tenant(services: Services, tenant_id: str) -> str:
    """An ACTIVE SCALE tenant written straight into the store (onboarding is measured elsewhere); its API key."""
    stamp = iso(datetime.now(UTC))
    api_key = generate_api_key(tenant_id)
    state = TenantState(
        tenant_id=tenant_id,
        company_name="Bench Co",
        admin_email="ops@bench.example",
        subscription_plan="SCALE",
        status="ACTIVE",
        steps={name: StepState(status="DONE") for name in ("subscription", "quota", "dataset", "view")},
        api_key_hash=hash_api_key(api_key),
        request_fingerprint="0" * 64,
        created_at=stamp,
        updated_at=stamp,
    )
    services.documents.set(TENANTS, tenant_id, state.model_dump())
    services.documents.set(API_KEYS, hash_api_key(api_key), {"tenant_id": tenant_id, "status": "ACTIVE", "created_at": stamp})
    return api_key


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def measure_admission(services: Services, api: str, operator: requests.Session, sequential: int, tenants: int) -> list[str]:
    """The admission section's lines: sequential latency on one tenant, then `tenants` tenants admitting at once (`api` ends in /api/v1)."""
    session = requests.Session()
    key = _tenant(services, "bench_admission_one")
    latencies: list[float] = []
    for _ in range(sequential):
        started = time.perf_counter()
        response = session.post(f"{api}/pipelines/run/bench_admission_one/{PIPELINE}", headers={"X-API-Key": key})
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        run_id = response.json()["pipeline_logging_id"]
        report = {
            "event_id": f"{run_id}.SUCCEEDED",
            "pipeline_logging_id": run_id,
            "tenant_id": "bench_admission_one",
            "status": "SUCCEEDED",
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        assert operator.post(f"{api}/pipelines/results", json=report).status_code == 200

    keys = {f"bench_admit_{index:03d}": _tenant(services, f"bench_admit_{index:03d}") for index in range(tenants)}
    per_tenant = 10  # SCALE runs 10 at once: every request is admitted
    barrier = threading.Barrier(tenants)

    def admit_all(tenant_id: str) -> int:
        own = requests.Session()
        barrier.wait()
        admitted = 0
        for _ in range(per_tenant):
            response = own.post(f"{api}/pipelines/run/{tenant_id}/{PIPELINE}", headers={"X-API-Key": keys[tenant_id]})
            admitted += response.status_code == 200
        return admitted

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=tenants) as pool:
        admitted = sum(pool.map(admit_all, keys))
    elapsed = time.perf_counter() - started
    return [
        f"admission (embedded, over HTTP): {sequential} on one tenant, one at a time: "
        f"p50 {_percentile(latencies, 0.5) * 1000:.1f} ms  p99 {_percentile(latencies, 0.99) * 1000:.1f} ms  "
        f"mean {statistics.fmean(latencies) * 1000:.1f} ms",
        f"admission (embedded, over HTTP): {tenants} tenants at once, {per_tenant} each: {admitted} of {tenants * per_tenant} admitted "
        f"in {elapsed:.2f} s = {admitted / elapsed:.0f} admissions/s",
    ]
