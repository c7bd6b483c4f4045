"""Benchmark on embedded backends (`make bench`): dry-run latency, onboarding time, and the floor.

The floor is the same storage work done by a plain loop that calls the embedded stores
directly, in sequence, with no HTTP, no bus and no handlers: the ratio says what the
architecture costs on top of the I/O it cannot avoid.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import make_server

from functions.local import LocalPlatform
from shared import sql
from shared.bootstrap import build_embedded_services, load_settings
from shared.domain.api_keys import generate_api_key, hash_api_key
from shared.handlers.warehouse_setup import ensure_central_tables
from shared.services import Services


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def request_body(tenant_id: str) -> dict[str, Any]:
    """A valid onboarding request for `tenant_id`."""
    return {
        "tenant_id": tenant_id,
        "company_name": "Bench Co",
        "admin_email": "ops@bench.example",
        "subscription_plan": "PROFESSIONAL",
    }


@contextmanager
def serving_platform(data_dir: Path) -> Iterator[tuple[LocalPlatform, str]]:
    """The local platform on embedded backends, served over real HTTP on a free port: (platform, API base URL)."""
    platform = LocalPlatform(build_embedded_services(load_settings({"ONBOARDING_DATA_DIR": str(data_dir)})), reconcile_every=3600)
    platform.start()
    server = make_server("127.0.0.1", 0, platform.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield platform, f"http://127.0.0.1:{server.server_port}/api/v1"
    finally:
        server.shutdown()
        platform.stop()


def measure_platform(data_dir: Path, dryruns: int, tenants: int) -> dict[str, list[float]]:
    """Dry-run latencies and accepted-to-ACTIVE times through real HTTP on the local platform."""
    session = requests.Session()
    with serving_platform(data_dir) as (platform, api):
        url = f"{api}/tenants"
        for _ in range(10):  # warm-up
            session.post(f"{url}/dryrun", json=request_body("warm_up"), timeout=10)
        dryrun_ms = []
        for index in range(dryruns):
            started = time.perf_counter()
            response = session.post(f"{url}/dryrun", json=request_body(f"dry_{index}"), timeout=10)
            dryrun_ms.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200 and response.json()["ready_for_onboarding"], response.text
        onboarding_ms = []
        for index in range(tenants):
            body = request_body(f"bench_{index}")
            session.post(f"{url}/dryrun", json=body, timeout=10)
            response = session.post(f"{url}/onboard", json=body, timeout=10)
            assert response.status_code == 202, response.text
            accepted = time.perf_counter()
            while (platform.services.documents.get("tenants", body["tenant_id"]) or {}).get("status") == "PROVISIONING":
                time.sleep(0.001)
            onboarding_ms.append((time.perf_counter() - accepted) * 1000)
        return {"dryrun": dryrun_ms, "onboarding": onboarding_ms}


def floor_onboarding(services: Services, tenant_id: str) -> None:
    """The storage work of one onboarding, straight against the embedded stores, in sequence."""
    docs, warehouse, central = services.documents, services.warehouse, services.central
    api_key = generate_api_key(tenant_id)
    services.keys.encrypt(api_key.encode(), tenant_id.encode())
    docs.create("tenants", tenant_id, {"status": "PROVISIONING"})
    docs.create("api_keys", hash_api_key(api_key), {"tenant_id": tenant_id})
    limits = {"daily_limit": 25, "monthly_limit": 750, "concurrent_limit": 5}
    profile = {"tenant_id": tenant_id, "company_name": "Bench Co", "admin_email": "ops@bench.example", "status": "PROVISIONING"}
    warehouse.execute(sql.render("upsert_profile", central=central), profile)
    warehouse.execute(
        sql.render("upsert_subscription", central=central),
        {"tenant_id": tenant_id, "plan_name": "PROFESSIONAL", "status": "ACTIVE", **limits},
    )
    warehouse.execute(sql.render("upsert_usage_quota", central=central), {"tenant_id": tenant_id, **limits})
    warehouse.create_dataset(tenant_id)
    for statement in sql.statements(sql.render("tenant_tables", dataset=tenant_id)):
        warehouse.execute(statement)
    warehouse.execute(sql.render("set_profile_status", central=central), {"tenant_id": tenant_id, "status": "ACTIVE"})
    warehouse.execute(sql.render("create_comprehensive_view", central=central, dataset=tenant_id, tenant_id=tenant_id))
    warehouse.execute(sql.render("upsert_validation_row", dataset=tenant_id), {"id": "v", "test_message": "m"})
    warehouse.query(sql.render("read_validation_row", dataset=tenant_id), {"id": "v"})
    warehouse.execute(
        sql.render("record_pipeline_run", central=central),
        {"run_id": f"{tenant_id}.v", "tenant_id": tenant_id, "pipeline_name": "onboarding_validation", "status": "SUCCEEDED"},
    )
    warehouse.execute(sql.render("upsert_usage_quota", central=central), {"tenant_id": tenant_id, **limits})
    warehouse.query(sql.render("read_comprehensive_view", dataset=tenant_id))
    docs.set("tenants", tenant_id, {"status": "ACTIVE"})


def measure_floor(data_dir: Path, tenants: int) -> list[float]:
    """Floor times for `tenants` onboardings."""
    services = build_embedded_services(load_settings({"ONBOARDING_DATA_DIR": str(data_dir)}))
    ensure_central_tables(services.warehouse, services.central)
    try:
        floor_onboarding(services, "floor_warm_up")
        times = []
        for index in range(tenants):
            started = time.perf_counter()
            floor_onboarding(services, f"floor_{index}")
            times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        services.close()


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dryruns", type=int, default=200)
    parser.add_argument("--tenants", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access line per request would bury the figures
    with tempfile.TemporaryDirectory() as tmp:
        measured = measure_platform(Path(tmp) / "platform", args.dryruns, args.tenants)
        floor = measure_floor(Path(tmp) / "floor", args.tenants)
    dry, onboarding = measured["dryrun"], measured["onboarding"]
    print(f"dry run over {len(dry)} requests (HTTP, embedded): p50 {percentile(dry, 0.5):.1f} ms  p99 {percentile(dry, 0.99):.1f} ms")
    print(
        f"onboarding accepted -> ACTIVE over {len(onboarding)} tenants: "
        f"p50 {percentile(onboarding, 0.5):.1f} ms  p99 {percentile(onboarding, 0.99):.1f} ms"
    )
    print(f"floor (same storage work, direct, in sequence): p50 {percentile(floor, 0.5):.1f} ms  p99 {percentile(floor, 0.99):.1f} ms")
    print(f"ratio onboarding p50 / floor p50: {statistics.median(onboarding) / statistics.median(floor):.2f}x")


if __name__ == "__main__":
    main()
