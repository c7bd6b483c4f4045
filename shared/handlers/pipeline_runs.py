"""Pipeline runs counted against the tenant's usage quota: Firestore first, then the analytics copy."""

from __future__ import annotations

from shared.domain import tenant as transitions
from shared.domain.errors import TenantNotFound
from shared.domain.tenant import RunStatus, TenantState
from shared.handlers.analytics_copy import append_copy, run_row
from shared.ports import Transaction
from shared.services import TENANTS, Services

PIPELINE_RUNS = "pipeline_runs"


def record_pipeline_run(services: Services, tenant_id: str, run_id: str, pipeline_name: str, status: RunStatus) -> TenantState:
    """Count a finished run in today's usage (once per run id) and append it, with the quota, to the copy."""
    now = services.now()

    def count(txn: Transaction) -> tuple[TenantState, bool]:
        raw = txn.get(TENANTS, tenant_id)
        if raw is None:
            raise TenantNotFound(f"no tenant '{tenant_id}'", field="tenant_id")
        state = TenantState.model_validate(raw)
        if txn.get(PIPELINE_RUNS, run_id) is not None:
            return state, False
        counted = transitions.record_run(state, status, services.clock().date()).touched(now)
        txn.set(TENANTS, tenant_id, counted.model_dump())
        run = {"run_id": run_id, "tenant_id": tenant_id, "pipeline_name": pipeline_name, "status": status, "finished_at": now}
        txn.create(PIPELINE_RUNS, run_id, run)
        return counted, True

    state, counted = services.documents.run_transaction(count)
    if counted:
        row = run_row(state, run_id, pipeline_name=pipeline_name, status=status, finished_at=now, recorded_at=services.clock())
        append_copy(services, state, runs=[row])
    return state
