"""Purge: delete offboarded tenants whose retention period is over (dataset, central rows, state)."""

from __future__ import annotations

import logging

from schemas.http import PurgeResponse
from shared import sql
from shared.domain import tenant as transitions
from shared.domain.documents import TenantEventDocument
from shared.domain.identifiers import folded_tenant_id
from shared.domain.tenant import TenantState
from shared.ports import Transaction
from shared.services import IDEMPOTENCY_KEYS, TENANT_EVENTS, TENANT_IDS, TENANTS, Services

logger = logging.getLogger(__name__)
PURGE_SOURCE = "retention-policy"


def purge_expired_tenants(services: Services) -> PurgeResponse:
    """Purge every offboarded tenant past its `purge_after`; safe to run often and concurrently."""
    now = services.clock()
    purged: list[str] = []
    retained = 0
    for raw in services.documents.find(TENANTS, "status", "OFFBOARDED", limit=10_000):
        state = TenantState.model_validate(raw)
        if not transitions.purge_due(state, now):
            retained += 1
            continue
        if purge_tenant(services, state):
            purged.append(state.tenant_id)
    if purged:
        logger.info("offboarded tenants purged", extra={"purged": len(purged), "retained": retained})
    return PurgeResponse(purged=sorted(purged), retained=retained, retention_days=services.lifecycle.retention_days)


def purge_tenant(services: Services, state: TenantState) -> bool:
    """Delete the data first (repeatable), then the state document, so a crash in between is retried.

    The central rows go with one DELETE per table. BigQuery refuses DML on rows streamed in the
    last 30 minutes (https://cloud.google.com/bigquery/docs/data-manipulation-language#limitations);
    an offboarded tenant's last copy rows were appended when it was cancelled, a whole
    retention period ago, and nothing is appended for it after that.
    """
    tenant_id = state.tenant_id
    services.warehouse.delete_dataset(tenant_id)
    for statement in sql.statements(sql.render("delete_tenant_rows", central=services.central)):
        services.warehouse.execute(statement, {"tenant_id": tenant_id})
    now = services.clock()
    record = TenantEventDocument(
        event_id=f"{tenant_id}.purged.{state.incarnation}",
        tenant_id=tenant_id,
        type="tenant_purged",
        occurred_at=transitions.utc_stamp(now),
        source=PURGE_SOURCE,
        outcome="applied",
        detail=f"dataset and central rows deleted; retention ended {state.purge_after}; the tenant id can be onboarded again",
        status_before=state.status,
        status_after="PURGED",
        plan_before=state.subscription_plan,
        plan_after=state.subscription_plan,
        recorded_at=services.now(),
    )

    # A replay of the old onboarding would hand out the revoked key: its idempotency records go too.
    idempotency_records = [
        doc["id"] for doc in services.documents.find(IDEMPOTENCY_KEYS, "tenant_id", tenant_id, limit=1000) if "id" in doc
    ]

    def remove(txn: Transaction) -> bool:
        raw = txn.get(TENANTS, tenant_id)
        if raw is None:
            return False
        current = TenantState.model_validate(raw)
        if current.created_at != state.created_at or not transitions.purge_due(current, now):
            return False
        txn.delete(TENANTS, tenant_id)
        txn.delete(TENANT_IDS, folded_tenant_id(tenant_id))
        for doc_id in idempotency_records:
            txn.delete(IDEMPOTENCY_KEYS, doc_id)
        txn.set(TENANT_EVENTS, record.event_id, record.model_dump())
        return True

    return services.documents.run_transaction(remove)
