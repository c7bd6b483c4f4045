"""Purge: delete offboarded tenants whose retention period is over, and every trace of their personal data.

Documents (validations, API keys, processed markers, idempotency records, dead letters), bus
messages, warehouse (dataset, central rows) and the state document go; the audit trail stays,
cut down to ids, event types and times. Each store is then asked to leave nothing of what was
deleted in its own files (docs/lifetimes.md says what Google keeps and for how long).
"""

from __future__ import annotations

import logging

from schemas.http import PurgeResponse
from shared import sql
from shared.domain import tenant as transitions
from shared.domain.documents import TenantEventDocument
from shared.domain.identifiers import folded_tenant_id
from shared.domain.tenant import TenantState
from shared.ports import Transaction
from shared.services import (
    API_KEYS,
    DEAD_LETTERS,
    IDEMPOTENCY_KEYS,
    LATEST_VALIDATIONS,
    OUTBOX,
    PIPELINE_RUNS,
    PROCESSED_EVENTS,
    TENANT_EVENTS,
    TENANT_IDS,
    TENANTS,
    VALIDATIONS,
    Services,
)

logger = logging.getLogger(__name__)


def purge_expired_tenants(services: Services) -> PurgeResponse:
    """Purge every offboarded tenant past its `purge_after`; safe to run often and concurrently."""
    now = services.clock()
    purged: list[str] = []
    retained = 0
    for _, raw in list(services.documents.scan(TENANTS, "updated_at", where=("status", "OFFBOARDED"))):
        state = TenantState.model_validate(raw)
        if not transitions.purge_due(state, now):
            retained += 1
            continue
        if purge_tenant(services, state):
            purged.append(state.tenant_id)
    if purged:
        services.documents.erase_deleted()
        services.warehouse.erase_deleted()
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
    erase_warehouse_data(services, tenant_id)
    erase_documents(services, tenant_id, keep=state)
    services.bus.forget_tenant(tenant_id)
    now = services.clock()
    # Written as every entry of the trail is left by the purge: ids, type and times.
    record = TenantEventDocument(
        event_id=f"{tenant_id}.purged.{state.incarnation}",
        tenant_id=tenant_id,
        type="tenant_purged",
        occurred_at=transitions.utc_stamp(now),
        recorded_at=services.now(),
        redacted=True,
    )

    def remove(txn: Transaction) -> bool:
        raw = txn.get(TENANTS, tenant_id)
        if raw is None:
            return False
        current = TenantState.model_validate(raw)
        if current.created_at != state.created_at or not transitions.purge_due(current, now):
            return False
        txn.delete(TENANTS, tenant_id)
        txn.delete(TENANT_IDS, folded_tenant_id(tenant_id))
        txn.set(TENANT_EVENTS, record.event_id, record.model_dump(exclude_none=True))
        return True

    return services.documents.run_transaction(remove)


def erase_warehouse_data(services: Services, tenant_id: str) -> None:
    """The tenant's dataset and its rows in the central tables."""
    services.warehouse.delete_dataset(tenant_id)
    for statement in sql.statements(sql.render("delete_tenant_rows", central=services.central)):
        services.warehouse.execute(statement, {"tenant_id": tenant_id})


# Collections whose documents carry the tenant's id in `tenant_id`, and a field each is ordered by.
_ERASED: tuple[tuple[str, str], ...] = (
    (VALIDATIONS, "tenant_id"),
    (LATEST_VALIDATIONS, "tenant_id"),
    (API_KEYS, "tenant_id"),
    (PROCESSED_EVENTS, "tenant_id"),
    (IDEMPOTENCY_KEYS, "tenant_id"),  # a replay of the old onboarding would hand out the revoked key
    (DEAD_LETTERS, "tenant_id"),
    (OUTBOX, "tenant_id"),
    (PIPELINE_RUNS, "tenant_id"),
)
_AUDIT_KEPT = ("event_id", "tenant_id", "type", "occurred_at", "recorded_at")


def erase_documents(services: Services, tenant_id: str, keep: TenantState) -> int:
    """Delete the tenant's documents but its state (deleted last, by the caller); cut its audit trail down. Returns how many."""
    erased = 0
    for collection, order in _ERASED:
        for doc_id, _ in list(services.documents.scan(collection, order, where=("tenant_id", tenant_id))):
            services.documents.delete(collection, doc_id)
            erased += 1
    if keep.api_key_hash:
        services.documents.delete(API_KEYS, keep.api_key_hash)
    for doc_id, raw in list(services.documents.scan(TENANT_EVENTS, "occurred_at", where=("tenant_id", tenant_id))):
        if not raw.get("redacted"):
            services.documents.set(TENANT_EVENTS, doc_id, {**{key: raw[key] for key in _AUDIT_KEPT if key in raw}, "redacted": True})
    return erased
