"""Read side: a tenant's status (operators) and its comprehensive view (the tenant, by API key)."""

from __future__ import annotations

from schemas.http import StepStatus, TenantOverview, TenantStatusResponse
from shared.domain.errors import TenantNotFound, TenantNotReady, TenantSuspended
from shared.domain.identifiers import tenant_id_problem
from shared.handlers.analytics_copy import overview_of
from shared.handlers.tenant_keys import authenticate_key, tenant_of_key
from shared.handlers.tenant_store import load_tenant
from shared.services import Services

__all__ = ["authenticate", "authenticate_key", "tenant_of_key", "tenant_overview", "tenant_status"]


def tenant_status(tenant_id: str, services: Services) -> TenantStatusResponse:
    """Status, plan and every step of a tenant; TenantNotFound if unknown."""
    state = load_tenant(services, tenant_id) if tenant_id_problem(tenant_id) is None else None
    if state is None:
        raise TenantNotFound(f"no tenant '{tenant_id}'", field="tenant_id")
    return TenantStatusResponse(
        tenant_id=state.tenant_id,
        status=state.status,
        subscription_plan=state.subscription_plan,
        company_name=state.company_name,
        created_at=state.created_at,
        updated_at=state.updated_at,
        error=state.error,
        steps=[
            StepStatus(
                name=name,
                status=step.status,
                attempts=step.attempts,
                error=step.error,
                started_at=step.started_at,
                completed_at=step.completed_at,
            )
            for name, step in state.steps.items()
        ],
    )


def authenticate(tenant_id: str, api_key: str | None, services: Services) -> None:
    """401 without a known, active key; 403 with another tenant's key or while the tenant is suspended."""
    authenticate_key(tenant_id, api_key, services)
    state = load_tenant(services, tenant_id)
    if state is not None and state.status == "SUSPENDED":
        raise TenantSuspended(f"tenant '{tenant_id}' is suspended until its payment is recovered", field="X-API-Key")


def tenant_overview(tenant_id: str, api_key: str | None, services: Services) -> TenantOverview:
    """The tenant's row of tenant_comprehensive_view, served from the state document.

    Firestore is the system of record and the view reads a copy of it, so the row is computed
    from the state document by the view's own rules (`transitions.overview`): no BigQuery job
    per request (a query costs a job's latency and at least 10 MB billed per table it reads,
    https://cloud.google.com/bigquery/pricing#on_demand_pricing). A test checks the two agree.
    """
    authenticate(tenant_id, api_key, services)
    state = load_tenant(services, tenant_id)
    if state is None:
        raise TenantNotFound(f"no tenant '{tenant_id}'", field="tenant_id")
    if state.status in {"PROVISIONING", "FAILED"}:
        raise TenantNotReady(f"tenant '{tenant_id}' is {state.status}", field="tenant_id")
    return TenantOverview.model_validate(overview_of(state, services))
