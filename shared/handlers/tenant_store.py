"""Reading and changing the tenant state document (every change is a transaction)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from shared.domain.errors import PermanentEventError
from shared.domain.tenant import TenantState
from shared.handlers.step_commands import relay, stage_steps
from shared.ports import Document, Transaction
from shared.services import TENANTS, Services


def update_tenant(
    services: Services,
    tenant_id: str,
    change: Callable[[TenantState], TenantState | None],
    publish: Callable[[TenantState], Iterable[str]] | None = None,
) -> TenantState | None:
    """Read-modify-write of the state document in a transaction; `change` returns None to leave it.

    `publish` names the steps whose commands the new state calls for: they are staged in the
    outbox in the same transaction, and published once it commits.
    """
    staged: dict[str, Document] = {}

    def apply(txn: Transaction) -> TenantState | None:
        staged.clear()
        raw = txn.get(TENANTS, tenant_id)
        if raw is None:
            raise PermanentEventError(f"unknown tenant {tenant_id}")
        current = TenantState.model_validate(raw)
        updated = change(current)
        if updated is not None:
            txn.set(TENANTS, tenant_id, updated.model_dump())
            if publish is not None:
                staged.update(stage_steps(txn, services, updated, publish(updated)))
        return updated

    updated = services.documents.run_transaction(apply)
    relay(services, staged)
    return updated


def load_tenant(services: Services, tenant_id: str) -> TenantState | None:
    """The state document, or None."""
    raw = services.documents.get(TENANTS, tenant_id)
    return TenantState.model_validate(raw) if raw is not None else None
