"""Pipeline-run records shared by admission, the executor's reports and the sweeper: run documents, leases, the copy."""

from __future__ import annotations

import logging
from datetime import datetime

from shared.domain import runs
from shared.domain.documents import PipelineRunDocument
from shared.domain.tenant import TenantState
from shared.handlers.analytics_copy import append_copy, run_row
from shared.ports import BackendError, PageCursor, Row, Transaction
from shared.services import PIPELINE_RUNS, TENANTS, Services, iso

logger = logging.getLogger(__name__)
LEASE_FIELD = "lease_until"


def expired_documents(txn: Transaction, expired: list[runs.Expired], stamp: str) -> list[PipelineRunDocument]:
    """The documents of runs whose lease ran out, as FAILED (TIMED_OUT): read now, written with the state."""
    documents: list[PipelineRunDocument] = []
    for run in expired:
        raw = txn.get(PIPELINE_RUNS, run.run_id)
        if raw is None:
            continue  # purged meanwhile; the slot is freed all the same
        current = PipelineRunDocument.model_validate(raw)
        update = {"status": "FAILED", "reason": runs.TIMED_OUT, "finished_at": stamp, "lease_until": None}
        documents.append(current.model_copy(update=update))
    return documents


def write_expired(txn: Transaction, state: TenantState, documents: list[PipelineRunDocument]) -> None:
    txn.set(TENANTS, state.tenant_id, state.model_dump())
    for document in documents:
        txn.set(PIPELINE_RUNS, document.pipeline_logging_id, document.model_dump())


def document_row(state: TenantState, document: PipelineRunDocument) -> Row:
    """A run as tenant_pipeline_runs keeps it."""
    return run_row(
        state,
        document.pipeline_logging_id,
        pipeline_name=document.pipeline_id,
        status=document.status,
        started_at=document.started_at or document.admitted_at,
        finished_at=document.finished_at,
        recorded_at=datetime.fromisoformat(state.updated_at),
    )


def copy_usage(services: Services, state: TenantState, rows: list[Row], *, strict: bool) -> None:
    """The usage row and the runs, appended to the copy; `strict` raises a failure (a redelivery appends again).

    Admission does not fail for the copy: the counters are committed, and the next change of the
    tenant's usage appends them all again under a newer version.
    """
    try:
        append_copy(services, state, runs=rows, usage_only=True)
    except BackendError:
        if strict:
            raise
        logger.warning("usage not copied; the next change of the tenant copies it", extra={"tenant_id": state.tenant_id})


# --- leases that ran out -------------------------------------------------------------------------


def expire_run_leases(services: Services, batch: int = 200) -> int:
    """FAILED (TIMED_OUT) for every run whose lease ended with no report, each tenant in one transaction; returns how many.

    Unfinished runs are the only ones with a lease_until, so this reads them oldest lease first
    and stops at the first that has not ended. Admission does the same for its tenant, lazily.
    """
    now = services.clock()
    cutoff = iso(now)
    tenants: list[str] = []
    after: PageCursor | None = None
    while True:
        page = services.documents.page(PIPELINE_RUNS, LEASE_FIELD, limit=batch, after=after)
        due = [doc for _, doc in page.items if doc.get(LEASE_FIELD) is not None and str(doc[LEASE_FIELD]) <= cutoff]
        tenants.extend(str(doc["tenant_id"]) for doc in due if doc["tenant_id"] not in tenants)
        if len(due) < len(page.items) or page.next_cursor is None:
            break
        after = page.next_cursor
    return sum(_expire_tenant(services, tenant_id, now) for tenant_id in tenants)


def _expire_tenant(services: Services, tenant_id: str, now: datetime) -> int:
    stamp = iso(now)

    def attempt(txn: Transaction) -> tuple[TenantState | None, list[PipelineRunDocument]]:
        raw = txn.get(TENANTS, tenant_id)
        if raw is None:
            return None, []
        current, expired = runs.expire_leases(TenantState.model_validate(raw), now)
        if not expired:
            return None, []
        documents = expired_documents(txn, expired, stamp)
        updated = current.touched(stamp)
        write_expired(txn, updated, documents)
        return updated, documents

    state, documents = services.documents.run_transaction(attempt)
    if state is None:
        return 0
    logger.warning("pipeline runs timed out", extra={"tenant_id": tenant_id, "runs": len(documents)})
    copy_usage(services, state, [document_row(state, document) for document in documents], strict=False)
    return len(documents)
