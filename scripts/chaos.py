"""Chaos run (`make chaos`): onboard many tenants at once through HTTP with faults injected, then check.

The local platform runs in this process with `ONBOARDING_FAULTS` set: the bus duplicates,
fails, delays and reorders deliveries; every adapter call may be refused or slowed. Clients
retry what HTTP tells them to retry (503, connection errors) with the same Idempotency-Key.
At the end every tenant must be ACTIVE with exactly one of everything. Exit status 1 if not.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import secrets
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import make_server

from functions.local import LocalPlatform
from shared import sql
from shared.adapters.embedded.sqlite_document_store import SqliteDocumentStore
from shared.adapters.guarded import unwrap
from shared.bootstrap import build_embedded_services, load_settings
from shared.domain.plans import PlanCatalog
from shared.domain.tenant import TenantState
from shared.handlers.analytics_copy import copy_differences
from shared.handlers.provisioning import COMPREHENSIVE_VIEW, VALIDATION_TABLE
from shared.handlers.sweep import sweep_expired
from shared.ports import DocumentStore, Warehouse
from shared.services import API_KEYS, TENANTS

DEFAULT_FAULTS = (
    "duplicate=0.5,fail_before=0.1,fail_after=0.1,delay_ms=0-300,reorder=1,backend_fail=0.02,backend_delay_ms=0-10,backend_hang=0.001"
)
INVARIANTS = (
    "status ACTIVE",
    "one profile",
    "one active API key",
    "one subscription row",
    "one quota row",
    "one dataset",
    "one view (one row)",
    "one validation row",
    "one validation pipeline run",
    "one view command (event id)",
    "BigQuery copy equals Firestore",
)


@dataclass
class ChaosReport:
    """What happened and which invariants held, per tenant."""

    tenants: int
    faults: str
    seed: int
    wall_seconds: float = 0.0
    accepted: int = 0
    bus: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)
    client: Counter[str] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    stores: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every invariant held for every tenant."""
        return not self.violations and all(self.held[name] == self.tenants for name in INVARIANTS)

    def lines(self) -> list[str]:
        """The printed report."""
        bus, calls = self.bus, self.calls
        rows = [
            f"chaos: {self.tenants} tenants onboarded concurrently over HTTP, seed {self.seed}",
            f"faults: {self.faults}",
            f"{'tenants accepted (202)':<38}{self.accepted}",
            f"{'deliveries':<38}{bus.get('deliveries', 0)}",
            f"{'duplicates delivered':<38}{bus.get('duplicates', 0)}",
            f"{'injected failures, bus (before/after)':<38}{bus.get('injected_failures', 0)}",
            f"{'injected failures, backends':<38}{calls.get('injected_failures', 0)} (of {calls.get('calls', 0)} calls)",
            f"{'injected backend hangs (timed out)':<38}{calls.get('timeouts', 0)}",
            f"{'retries, redeliveries':<38}{bus.get('redeliveries', 0)}",
            f"{'retries, backend calls':<38}{calls.get('retries', 0)}",
            f"{'retries, HTTP (503 or connection)':<38}{self.client['http_retries']}",
            f"{'dead-lettered':<38}{bus.get('dead_lettered', 0)}",
            f"{'handler timeouts (workers replaced)':<38}{bus.get('handler_timeouts', 0)}",
            f"{'wall time':<38}{self.wall_seconds:.1f} s",
            "invariants (tenants where it holds):",
        ]
        rows += [f"  {name:<36}{self.held[name]}/{self.tenants}" for name in INVARIANTS]
        rows += [f"  VIOLATION {violation}" for violation in self.violations[:20]]
        rows += self.stores
        rows.append("RESULT: every invariant held" if self.ok else "RESULT: invariants violated")
        return rows


def request_body(tenant_id: str) -> dict[str, Any]:
    """A valid onboarding request for `tenant_id`, on a plan picked from its name."""
    plans = ("STARTER", "PROFESSIONAL", "SCALE")
    return {
        "tenant_id": tenant_id,
        "company_name": f"Chaos {tenant_id}",
        "admin_email": f"{tenant_id}@chaos.example",
        "subscription_plan": plans[sum(map(ord, tenant_id)) % len(plans)],
    }


class Client:
    """A patient operator: retries 503s and dropped connections, with jitter, never a changed request."""

    def __init__(self, base_url: str, report: ChaosReport, operator_token: str) -> None:
        self.base_url = base_url
        self.report = report
        self._auth = {"Authorization": f"Bearer {operator_token}"}
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            self.report.client[name] += 1

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None, tries: int = 30) -> requests.Response:
        """POST until the answer is not 503 (or the tries run out)."""
        for attempt in range(tries):
            try:
                response = requests.post(f"{self.base_url}{path}", json=body, headers={**self._auth, **(headers or {})}, timeout=60)
            except requests.RequestException:
                response = None
            if response is not None and response.status_code != 503:
                return response
            self._count("http_retries")
            time.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))
        raise RuntimeError(f"POST {path} kept failing")

    def onboard(self, tenant_id: str) -> bool:
        """Dry run until it passes, then onboard with an Idempotency-Key; True when accepted."""
        body = request_body(tenant_id)
        for _ in range(30):
            dry = self.post("/api/v1/tenants/dryrun", body)
            if dry.status_code == 200 and dry.json()["ready_for_onboarding"]:
                break
            self._count("dryrun_not_ready")  # a check hit an injected backend failure
        else:
            return False
        response = self.post("/api/v1/tenants/onboard", body, {"Idempotency-Key": f"chaos-{tenant_id}"})
        if response.status_code not in (201, 202):
            self._count(f"onboard_{response.status_code}")
            return False
        return True

    def status(self, tenant_id: str) -> str | None:
        """The tenant's status, or None if the call failed."""
        try:
            response = requests.get(f"{self.base_url}/api/v1/tenants/{tenant_id}", headers=self._auth, timeout=30)
        except requests.RequestException:
            return None
        return str(response.json()["status"]) if response.status_code == 200 else None


def check_invariants(
    documents: DocumentStore, warehouse: Warehouse, central: str, tenant_id: str, view_commands: int, *, plans: PlanCatalog
) -> dict[str, bool]:
    """Each invariant for one tenant, read from the backends directly (no faults)."""
    state = documents.get(TENANTS, tenant_id)
    counts = warehouse.query(sql.render("count_tenant_rows", central=central), {"tenant_id": tenant_id})[0]
    keys = [doc for doc in documents.find(API_KEYS, "tenant_id", tenant_id) if doc.get("status") == "ACTIVE"]
    has_dataset = warehouse.dataset_exists(tenant_id)
    view_rows = table_rows = -1
    if has_dataset and warehouse.table_columns(tenant_id, COMPREHENSIVE_VIEW) is not None:
        view_rows = len(warehouse.query(sql.render("read_comprehensive_view", dataset=tenant_id)))
    if has_dataset and warehouse.table_columns(tenant_id, VALIDATION_TABLE) is not None:
        table_rows = int(warehouse.query(f"SELECT COUNT(*) AS n FROM `{tenant_id}.{VALIDATION_TABLE}`")[0]["n"])
    return {
        "status ACTIVE": state is not None and state["status"] == "ACTIVE",
        "one profile": counts["profiles"] == 1,
        "one active API key": len(keys) == 1,
        "one subscription row": counts["subscriptions"] == 1,
        "one quota row": counts["quotas"] == 1,
        "one dataset": has_dataset,
        "one view (one row)": view_rows == 1,
        "one validation row": table_rows == 1,
        "one validation pipeline run": counts["validation_runs"] == 1,
        "one view command (event id)": view_commands == 1,
        "BigQuery copy equals Firestore": state is not None
        and not copy_differences(warehouse, central, plans, TenantState.model_validate(state)),
    }


def view_commands_per_tenant(messages: list[tuple[bytes, dict[str, str]]]) -> Counter[str]:
    """Distinct view-step event ids per tenant (republishing the same id is one command in effect)."""
    seen = {(attributes.get("tenant_id", ""), json.loads(data)["event_id"]) for data, attributes in messages}
    return Counter(tenant for tenant, _ in seen)


def run_chaos(
    data_dir: Path,
    *,
    tenants: int = 200,
    faults: str = DEFAULT_FAULTS,
    seed: int = 7,
    concurrency: int = 50,
    timeout: float = 600,
    workers: int = 16,
) -> ChaosReport:
    """Onboard `tenants` concurrently through HTTP with `faults`, then check every invariant."""
    operator_token = secrets.token_urlsafe(32)
    settings = load_settings(
        {
            "ONBOARDING_DATA_DIR": str(data_dir),
            "ONBOARDING_OPERATOR_TOKEN": operator_token,
            "ONBOARDING_FAULTS": faults,
            "ONBOARDING_FAULTS_SEED": str(seed),
            "ONBOARDING_BUS_WORKERS": str(workers),
            "ONBOARDING_BUS_MAX_ATTEMPTS": "40",
            "ONBOARDING_BUS_MIN_BACKOFF_SECONDS": "0.05",
            "ONBOARDING_BUS_MAX_BACKOFF_SECONDS": "1",
            "ONBOARDING_BUS_ACK_DEADLINE_SECONDS": "20",
            "ONBOARDING_CALL_TIMEOUT_SECONDS": "2",
            "ONBOARDING_CALL_ATTEMPTS": "3",
        }
    )
    report = ChaosReport(tenants=tenants, faults=faults, seed=seed)
    platform = LocalPlatform(build_embedded_services(settings), reconcile_every=2)
    platform.start()
    server = make_server("127.0.0.1", 0, platform.app, threaded=True)
    threading.Thread(target=server.serve_forever, name="chaos-http", daemon=True).start()
    client = Client(f"http://127.0.0.1:{server.server_port}", report, operator_token)
    ids = [f"chaos_{index:04d}" for index in range(tenants)]
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            accepted = dict(zip(ids, pool.map(client.onboard, ids), strict=True))
        report.accepted = sum(accepted.values())
        pending = {tenant for tenant, ok in accepted.items() if ok}
        while pending and time.monotonic() - started < timeout:
            pending = {tenant for tenant in pending if client.status(tenant) not in ("ACTIVE", "FAILED")}
            if pending:
                time.sleep(0.2)
        report.wall_seconds = time.monotonic() - started
        platform.bus.wait_idle(max(1.0, timeout - (time.monotonic() - started)))
    finally:
        server.shutdown()
        platform.bus.stop()
    services = platform.services
    documents, warehouse = unwrap(services.documents), unwrap(services.warehouse)
    view_commands = view_commands_per_tenant(platform.bus.messages(settings.topics.step("view")))
    for tenant_id in ids:
        checked = check_invariants(documents, warehouse, services.central, tenant_id, view_commands[tenant_id], plans=services.plans)
        for name, held in checked.items():
            if held:
                report.held[name] += 1
            else:
                report.violations.append(f"{tenant_id}: {name}")
    report.bus = platform.bus.stats.snapshot()
    report.calls = services.guard.snapshot() if services.guard else {}
    report.injected = services.faults.snapshot() if services.faults else {}
    report.stores = store_sizes_through_sweeps(platform)
    platform.stop()
    return report


def collection_sizes(documents_file: Path) -> dict[str, tuple[int, int]]:
    """Documents and bytes of JSON per collection, read straight from the embedded store's file."""
    with closing(sqlite3.connect(documents_file)) as conn:
        rows = conn.execute("SELECT collection, COUNT(*), SUM(LENGTH(data)) FROM documents GROUP BY collection").fetchall()
    return {str(name): (int(count), int(size or 0)) for name, count, size in rows}


def store_sizes_through_sweeps(platform: LocalPlatform) -> list[str]:
    """Store sizes after the run, after a sweep now, and after a sweep once every lifetime has passed."""
    # The sweeps go past the fault injection: what is measured is what they leave, not how they cope.
    documents, bus = unwrap(platform.services.documents), platform.bus
    assert isinstance(documents, SqliteDocumentStore)
    services = replace(platform.services, documents=documents, bus=bus, guard=None, faults=None)
    documents_file = services.settings.data_dir / "documents.db"
    longest = max(
        services.settings.lifetimes.validations,
        services.settings.lifetimes.processed_events,
        services.settings.lifetimes.resolved_dead_letters,
        services.settings.lifetimes.delivered_messages,
    )

    def sizes(label: str) -> list[str]:
        collections = collection_sizes(documents_file)
        files = sum(path.stat().st_size for path in services.settings.data_dir.rglob("*") if path.is_file())
        counts = ", ".join(f"{name} {count}" for name, (count, _) in sorted(collections.items()))
        document_bytes = sum(size for _, size in collections.values())
        bus_sizes = ", ".join(f"{name} {count}" for name, count in bus.store_sizes().items())
        return [
            f"stores {label}:",
            f"  documents: {counts} ({document_bytes / 1e6:.1f} MB of JSON)",
            f"  bus: {bus_sizes}",
            f"  data dir: {files / 1e6:.1f} MB",
        ]

    lines = sizes("after the run")
    swept = sweep_expired(services)
    lines += sizes(f"after a sweep now ({swept.total} deleted)")
    real_clock = services.clock
    services.clock = lambda: real_clock() + longest + timedelta(minutes=1)
    try:
        swept = sweep_expired(services)
    finally:
        services.clock = real_clock
    lines += sizes(f"after a sweep {longest.days + 1} days on, every lifetime over ({swept.total} deleted)")
    return lines


def main() -> None:
    """Run the chaos suite and print its report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--faults", default=DEFAULT_FAULTS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    logging.getLogger().addHandler(logging.NullHandler())  # the report is the output; failures are expected
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        report = run_chaos(
            args.data_dir or Path(tmp) / "data", tenants=args.tenants, faults=args.faults, seed=args.seed, concurrency=args.concurrency
        )
    print("\n".join(report.lines()))
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
