"""Step commands and the status URL that shows their progress: used by onboard, steps, retry and reconcile."""

from __future__ import annotations

from schemas.events import StepRequested
from shared.domain.tenant import TenantState
from shared.handlers.publishing import publish_event
from shared.services import Services


def status_url(tenant_id: str) -> str:
    """Where to poll the tenant's progress."""
    return f"/api/v1/tenants/{tenant_id}"


def step_event_id(state: TenantState, step: str, generation: int) -> str:
    """Deterministic, so a republished step command is recognized as the same event.

    The tenant's creation time is part of it: a tenant id onboarded again after a purge
    starts a new series of events instead of finding the old ones already processed.
    """
    return f"{state.tenant_id}.{state.incarnation}.{step}.{generation}"


def publish_step(services: Services, state: TenantState, step: str) -> None:
    """Publish the command for one step of `state` on that step's topic."""
    generation = state.steps[step].generation
    command = StepRequested(
        event_id=step_event_id(state, step, generation),
        tenant_id=state.tenant_id,
        step=step,
        generation=generation,
        force_recreate_dataset=state.force_recreate_dataset,
        force_recreate_tables=state.force_recreate_tables,
        occurred_at=services.now(),
    )
    publish_event(services, services.settings.topics.step(step), command, tenant_id=state.tenant_id)
