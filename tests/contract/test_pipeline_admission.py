"""Admission is exact under concurrency on every document store: 50 requests at once for one STARTER tenant.

STARTER allows 6 runs a day, 3 at once. Each wave of 50 admits exactly as many as there are
free slots; once 6 are charged, every request is refused naming `daily`. On Firestore the
transactions contend on the one state document (https://cloud.google.com/firestore/docs/transaction-data-contention):
a request whose transaction keeps conflicting answers 503 and its client tries again. Requests of
one process queue on its lock first (`TenantLocks`); the second test takes that lock away, as
for requests spread over many instances.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import pytest

from shared.bootstrap import build_embedded_services
from shared.domain.tenant import TenantState
from shared.handlers import pipeline_runs
from shared.handlers.warehouse_setup import ensure_central_tables
from shared.ports import DocumentStore
from shared.services import TENANTS
from tests.conftest import fast_settings
from tests.pipeline_support import active_tenant, admit_concurrently, report


def test_fifty_concurrent_admissions_admit_exactly_the_starter_quota(document_store: DocumentStore, tmp_path: Path, unique: str) -> None:
    embedded = build_embedded_services(fast_settings(tmp_path / "data", ONBOARDING_LOCAL_EXECUTOR="false"))
    services = replace(embedded, documents=document_store)
    ensure_central_tables(services.warehouse, services.central)
    tenant_id = f"run_{unique}"
    api_key = active_tenant(document_store, tenant_id, "STARTER", services.clock())
    try:
        first, refused_first = admit_concurrently(services, tenant_id, api_key, 50)
        assert (len(first), refused_first) == (3, {"concurrent": 47})  # 3 at once
        for run_id in first:
            assert report(services, tenant_id, run_id) == "SUCCEEDED"
        second, refused_second = admit_concurrently(services, tenant_id, api_key, 50)
        assert (len(second), refused_second) == (3, {"daily": 47})  # the 6th charge takes the last slot and the day
        for run_id in second:
            report(services, tenant_id, run_id, "FAILED")
        third, refused_third = admit_concurrently(services, tenant_id, api_key, 50)
        assert (len(third), refused_third) == (0, {"daily": 50})  # 6 a day, all charged

        raw = document_store.get(TENANTS, tenant_id)
        assert raw is not None
        usage = TenantState.model_validate(raw).usage_on(services.clock().date())
        assert (usage.pipelines_run, usage.pipelines_succeeded, usage.pipelines_failed, usage.pipelines_run_month) == (6, 3, 3, 6)
        assert len(set(first + second)) == 6 and TenantState.model_validate(raw).running == {}
    finally:
        embedded.close()


class _NoLocks:
    """Every request straight to the document store, as requests of many instances arrive."""

    def of(self, tenant_id: str) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()


def test_without_the_process_lock_the_transaction_alone_admits_exactly(
    document_store: DocumentStore, tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Requests from many instances share no lock: they contend in the store, and still take exactly the free slots."""
    monkeypatch.setattr(pipeline_runs, "ADMISSION_LOCKS", _NoLocks())
    embedded = build_embedded_services(fast_settings(tmp_path / "data", ONBOARDING_LOCAL_EXECUTOR="false"))
    services = replace(embedded, documents=document_store)
    ensure_central_tables(services.warehouse, services.central)
    tenant_id = f"run_{unique}"
    api_key = active_tenant(document_store, tenant_id, "STARTER", services.clock())
    try:
        # The Firestore emulator settles each conflict by a lock timeout of about 2 s: few requests there.
        count = 4 if request.node.get_closest_marker("emulator") else 8
        admitted, refused = admit_concurrently(services, tenant_id, api_key, count)
        assert (len(admitted), refused) == (3, {"concurrent": count - 3})
    finally:
        embedded.close()
