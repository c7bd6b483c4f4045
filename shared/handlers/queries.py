"""Read side: a tenant's status (operators) and its comprehensive view (the tenant, by API key)."""

from __future__ import annotations

from typing import Any, get_args

from schemas.http import StepStatus, TenantList, TenantOverview, TenantStatusResponse, TenantSummary
from shared.domain.errors import InvalidRequest, TenantNotFound, TenantNotReady, TenantSuspended
from shared.domain.identifiers import tenant_id_problem
from shared.domain.paging import decode_page_token, encode_page_token, page_size
from shared.domain.tenant import TenantState, TenantStatus
from shared.handlers.analytics_copy import overview_of
from shared.handlers.tenant_keys import authenticate_key, tenant_of_key
from shared.handlers.tenant_store import load_tenant
from shared.services import TENANTS, Services

__all__ = ["authenticate", "authenticate_key", "list_tenants", "tenant_of_key", "tenant_overview", "tenant_status"]
TENANT_STATUSES: tuple[str, ...] = get_args(TenantStatus)


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
        steps=_steps(state),
    )


def _steps(state: TenantState) -> list[StepStatus]:
    return [
        StepStatus(
            name=name,
            status=step.status,
            attempts=step.attempts,
            error=step.error,
            started_at=step.started_at,
            completed_at=step.completed_at,
        )
        for name, step in state.steps.items()
    ]


def list_tenants(
    services: Services,
    status: str | None = None,
    plan: str | None = None,
    limit: str | int | None = None,
    page_token: str | None = None,
) -> TenantList:
    """Tenants newest first, a page at a time, optionally of one status and one plan.

    Both filters are equalities the store applies (on Firestore: `==` filters, `order_by`
    and `start_after` over a composite index), so a page reads only its own documents.
    """
    if status is not None and status not in TENANT_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(TENANT_STATUSES)}", field="status")
    if plan is not None and plan not in services.plans.plans:
        raise InvalidRequest(f"plan must be one of {', '.join(sorted(services.plans.plans))}", field="plan")
    size = page_size(limit)
    listing = {"list": TENANTS, "status": status, "plan": plan}
    after = decode_page_token(page_token, listing)
    where: dict[str, Any] = {name: value for name, value in (("status", status), ("subscription_plan", plan)) if value is not None}
    page = services.documents.page(TENANTS, "created_at", where=where or None, descending=True, limit=size, after=after)
    summaries = [_summary(TenantState.model_validate(raw)) for _, raw in page.items]
    return TenantList(count=len(summaries), tenants=summaries, next_page_token=encode_page_token(page.next_cursor, listing))


def _summary(state: TenantState) -> TenantSummary:
    """The list's view of a state document."""
    return TenantSummary(
        tenant_id=state.tenant_id,
        company_name=state.company_name,
        admin_email=state.admin_email,
        subscription_plan=state.subscription_plan,
        status=state.status,
        steps=_steps(state),
        created_at=state.created_at,
        updated_at=state.updated_at,
        error=state.error,
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
