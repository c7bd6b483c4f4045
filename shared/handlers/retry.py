"""Operator retry of a FAILED tenant: re-drive only its failed steps, under a new generation."""

from __future__ import annotations

import logging

from schemas.http import RetryAccepted
from shared.domain import tenant as transitions
from shared.domain.errors import TenantNotFailed, TenantNotFound
from shared.domain.identifiers import tenant_id_problem
from shared.domain.tenant import TenantState
from shared.handlers.dead_letter_store import mark_retried
from shared.handlers.step_commands import status_url
from shared.handlers.tenant_store import load_tenant, update_tenant
from shared.services import Services

logger = logging.getLogger(__name__)


def retry_tenant(tenant_id: str, services: Services) -> RetryAccepted:
    """FAILED -> PROVISIONING; each FAILED step gets the next generation, so its event id is new."""
    if tenant_id_problem(tenant_id) is not None or load_tenant(services, tenant_id) is None:
        raise TenantNotFound(f"no tenant '{tenant_id}'", field="tenant_id")
    retried: list[str] = []

    def change(state: TenantState) -> TenantState | None:
        if state.status != "FAILED":
            raise TenantNotFailed(f"tenant '{tenant_id}' is {state.status}; only a FAILED tenant can be retried", field="tenant_id")
        updated, names = transitions.retry_failed_steps(state, services.now())
        retried[:] = names
        return updated

    def released(state: TenantState) -> list[str]:
        # A retried step waiting on its prerequisites is released by the fan-in.
        return [name for name in retried if state.prerequisites_done(name)]

    state = update_tenant(services, tenant_id, change, publish=released)
    assert state is not None
    mark_retried(services, tenant_id)
    logger.info("tenant retried", extra={"tenant_id": tenant_id, "steps": ",".join(retried)})
    return RetryAccepted(
        tenant_id=tenant_id,
        status="PROVISIONING",
        retried_steps=retried,
        status_url=status_url(tenant_id),
        message=f"Retrying {len(retried)} failed step(s)" if retried else "No failed step; provisioning resumes",
    )
