"""Tenants ready to run pipelines, written straight into a document store, and concurrent admission."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from schemas.events import PipelineRunResult
from schemas.http import PipelineRunRequest
from shared.domain.api_keys import generate_api_key, hash_api_key
from shared.domain.errors import QuotaExceeded
from shared.domain.tenant import StepState, TenantState
from shared.handlers.pipeline_runs import PipelinePath, admit_pipeline_run, apply_run_result
from shared.ports import BackendError, DocumentStore
from shared.services import API_KEYS, TENANTS, Services, iso


def active_tenant(documents: DocumentStore, tenant_id: str, plan: str, now: datetime) -> str:
    """An ACTIVE tenant on `plan` with every step done, and its API key (returned)."""
    stamp = iso(now)
    api_key = generate_api_key(tenant_id)
    state = TenantState(
        tenant_id=tenant_id,
        company_name=f"Company {tenant_id}",
        admin_email=f"admin@{tenant_id.replace('_', '-')}.example.com",
        subscription_plan=plan,
        status="ACTIVE",
        steps={name: StepState(status="DONE") for name in ("subscription", "quota", "dataset", "view")},
        api_key_hash=hash_api_key(api_key),
        request_fingerprint="f" * 64,
        created_at=stamp,
        updated_at=stamp,
    )
    documents.set(TENANTS, tenant_id, state.model_dump())
    documents.set(API_KEYS, hash_api_key(api_key), {"tenant_id": tenant_id, "status": "ACTIVE", "created_at": stamp})
    return api_key


def admit_concurrently(services: Services, tenant_id: str, api_key: str, count: int) -> tuple[list[str], Counter[str]]:
    """`count` admissions at once (a client retries a 503); the runs admitted and the limits named by the refusals."""
    barrier = threading.Barrier(count)
    path = PipelinePath(tenant_id, "gcp", "cost", "billing")

    def one(_: int) -> str:
        barrier.wait()
        for _attempt in range(50):
            try:
                return admit_pipeline_run(services, path, api_key, PipelineRunRequest()).pipeline_logging_id
            except QuotaExceeded as refused:
                return f"429:{refused.limit}"
            except BackendError:
                continue  # 503 SERVICE_UNAVAILABLE: contention outlasted the transaction's own retries
        raise AssertionError("never admitted nor refused")

    with ThreadPoolExecutor(max_workers=count) as pool:
        outcomes = list(pool.map(one, range(count)))
    admitted = [outcome for outcome in outcomes if not outcome.startswith("429:")]
    return admitted, Counter(outcome.removeprefix("429:") for outcome in outcomes if outcome.startswith("429:"))


def report(services: Services, tenant_id: str, run_id: str, status: str = "SUCCEEDED", event_id: str | None = None) -> str:
    """An executor's report, applied; returns the run's status after it."""
    result = PipelineRunResult.model_validate(
        {
            "event_id": event_id or f"{run_id}.{status}",
            "pipeline_logging_id": run_id,
            "tenant_id": tenant_id,
            "status": status,
            "occurred_at": datetime.now(UTC).isoformat(),
        }
    )
    return apply_run_result(result, services).status
