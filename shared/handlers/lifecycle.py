"""Lifecycle events out (topic tenant-lifecycle): published after the change they announce commits."""

from __future__ import annotations

import re

from schemas.events import TenantLifecycleEvent
from shared.domain.tenant import LifecycleKind, TenantState, TenantStatus
from shared.handlers.publishing import publish_event
from shared.services import Services


def lifecycle_event_id(cause_event_id: str, kind: LifecycleKind) -> str:
    """Deterministic: a redelivered cause republishes the same event, which downstream dedupes."""
    return f"{cause_event_id}.{kind}"


def publish_lifecycle(
    services: Services,
    state: TenantState,
    kind: LifecycleKind,
    cause_event_id: str,
    *,
    previous_status: TenantStatus | None = None,
    previous_plan: str | None = None,
) -> str:
    """Announce `kind` for the tenant as `state` shows it; returns the lifecycle event id."""
    event = TenantLifecycleEvent(
        event_id=lifecycle_event_id(cause_event_id, kind),
        tenant_id=state.tenant_id,
        type=kind,
        status=state.status,
        subscription_plan=state.subscription_plan,
        previous_status=previous_status,
        previous_plan=previous_plan,
        cause_event_id=cause_event_id,
        occurred_at=state.updated_at,
    )
    publish_event(services, services.settings.topics.lifecycle, event, tenant_id=state.tenant_id)
    return event.event_id


def activation_cause_id(state: TenantState) -> str:
    """The tenant's onboarding, told apart from a later onboarding of the same id after a purge."""
    return f"{state.tenant_id}.onboarded.{re.sub(r'[^0-9]', '', state.created_at)}"


def publish_activation(services: Services, state: TenantState) -> str | None:
    """`tenant.activated` once the view step made the tenant ACTIVE (repeats keep the same id)."""
    if state.status != "ACTIVE":
        return None
    return publish_lifecycle(services, state, "tenant.activated", activation_cause_id(state), previous_status="PROVISIONING")
