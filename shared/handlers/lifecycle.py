"""Lifecycle events out (topic tenant-lifecycle): published after the change they announce commits."""

from __future__ import annotations

from schemas.events import TenantLifecycleEvent
from shared.domain.tenant import FINAL_STEP, LifecycleKind, TenantState, TenantStatus
from shared.handlers.publishing import publish_event
from shared.services import Services


def lifecycle_event_id(cause_event_id: str, kind: LifecycleKind) -> str:
    """Deterministic: a redelivered cause republishes the same event, which downstream dedupes."""
    return f"{cause_event_id}.{kind}"


def publish_lifecycle(
    services: Services,
    *,
    tenant_id: str,
    kind: LifecycleKind,
    cause_event_id: str,
    status: TenantStatus,
    subscription_plan: str,
    occurred_at: str,
    previous_status: TenantStatus | None = None,
    previous_plan: str | None = None,
    cause_key: str | None = None,
) -> str:
    """Announce `kind` with the tenant as the change left it (not as it may be by now); returns the event id.

    The event id derives from `cause_key` when the cause's own id is not unique on its own (a
    billing event id is unique only within its tenant and source).
    """
    event = TenantLifecycleEvent(
        event_id=lifecycle_event_id(cause_key or cause_event_id, kind),
        tenant_id=tenant_id,
        type=kind,
        status=status,
        subscription_plan=subscription_plan,
        previous_status=previous_status,
        previous_plan=previous_plan,
        cause_event_id=cause_event_id,
        occurred_at=occurred_at,
    )
    publish_event(services, services.settings.topics.lifecycle, event, tenant_id=tenant_id)
    return event.event_id


def activation_cause_id(state: TenantState) -> str:
    """The tenant's onboarding, told apart from a later onboarding of the same id after a purge."""
    return f"{state.tenant_id}.onboarded.{state.incarnation}"


def publish_activation(services: Services, state: TenantState) -> str | None:
    """`tenant.activated` once the view step made the tenant ACTIVE (repeats keep the same id)."""
    if state.status != "ACTIVE":
        return None
    return publish_lifecycle(
        services,
        tenant_id=state.tenant_id,
        kind="tenant.activated",
        cause_event_id=activation_cause_id(state),
        status="ACTIVE",
        subscription_plan=state.subscription_plan,
        occurred_at=state.steps[FINAL_STEP].completed_at or state.updated_at,
        previous_status="PROVISIONING",
    )
