"""What each declared provisioning step does: effects idempotent by construction (IF NOT EXISTS, MERGE), records pure."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas.events import StepRequested
from shared import sql
from shared.domain import tenant as transitions
from shared.domain.steps import declaration
from shared.domain.tenant import TenantState, step_is_current
from shared.handlers.analytics_copy import plan_of
from shared.handlers.tenant_store import update_tenant
from shared.ports import BackendUnavailable
from shared.services import Services, iso

logger = logging.getLogger(__name__)

VALIDATION_TABLE = "onboarding_validation_test"
COMPREHENSIVE_VIEW = "tenant_comprehensive_view"


Effects = Callable[[TenantState, StepRequested, Services], dict[str, Any]]
Record = Callable[[TenantState, Services], TenantState]


@dataclass(frozen=True)
class StepAction:
    """What a declared step does (its declaration is in `shared.domain.steps`).

    `effects` runs outside any transaction, at least once, and must be idempotent; what it
    returns is merged into the state document as the step completes. `record` is a pure
    change of the state document made in the transaction that completes the step: a step with
    only a record costs one transaction.
    """

    effects: Effects | None = None
    record: Record | None = None


STEP_ACTIONS: dict[str, StepAction] = {}


def step_action(name: str, *, effects: Effects | None = None, record: Record | None = None) -> StepAction:
    """Register what step `name` does; its declaration must exist."""
    declaration(name)
    action = StepAction(effects=effects, record=record)
    STEP_ACTIONS[name] = action
    return action


def action_of(name: str) -> StepAction:
    """The registered action of step `name`."""
    return STEP_ACTIONS[name]


def record_subscription(state: TenantState, services: Services) -> TenantState:
    """The subscription starts: plan and limits are the state document's plan (checked against the catalog)."""
    plan_of(state, services)
    return state.model_copy(update={"subscription_started_at": state.subscription_started_at or services.now()})


def record_quota(state: TenantState, services: Services) -> TenantState:
    """Today's usage quota, no run yet (kept if a run was already counted today)."""
    plan_of(state, services)
    return state.model_copy(update={"quota": state.usage_on(services.clock().date())})


def provision_dataset(state: TenantState, command: StepRequested, services: Services) -> dict[str, Any]:
    """The tenant's dataset and its validation table.

    What happens to an existing dataset was decided at onboarding (`dataset_action`): it
    can only be an orphan, and the force flags apply to it alone; the command's own flags
    are ignored. Clearing the orphan happens under a lease in the state document and is
    recorded there before anything is created, so neither a redelivery nor a concurrent
    duplicate ever deletes what an attempt of this step created.
    """
    warehouse, tenant_id = services.warehouse, state.tenant_id
    if state.dataset_action in ("recreate_orphan", "recreate_orphan_tables") and not state.orphan_cleared:
        _clear_orphan(state, command, services)
    created = warehouse.create_dataset(tenant_id)
    for statement in sql.statements(sql.render("tenant_tables", dataset=tenant_id)):
        warehouse.execute(statement)
    row_id = f"{tenant_id}_onboarding_validation"
    warehouse.execute(
        sql.render("upsert_validation_row", dataset=tenant_id),
        {"id": row_id, "test_message": f"onboarding validation for {tenant_id}"},
    )
    if not warehouse.query(sql.render("read_validation_row", dataset=tenant_id), {"id": row_id}):
        raise RuntimeError("validation row written but not read back")
    recreated = state.dataset_action == "recreate_orphan"
    return {"dataset_created": created or recreated or state.dataset_created}


class OrphanBusy(BackendUnavailable):
    """Another attempt holds the lease on clearing the orphan dataset; try again later."""


def _clear_orphan(state: TenantState, command: StepRequested, services: Services) -> None:
    warehouse, tenant_id = services.warehouse, state.tenant_id
    lease_seconds = services.settings.event_bus.ack_deadline_seconds
    token = uuid.uuid4().hex

    def claim(current: TenantState) -> TenantState | None:
        if current.orphan_cleared:
            return None
        if not step_is_current(current, command.step, command.generation):
            raise OrphanBusy("the dataset step was superseded")
        lease = current.orphan_clear_lease
        if lease is not None and datetime.fromisoformat(lease.split("|", 1)[0]) > services.clock():
            raise OrphanBusy("another attempt is clearing the orphan dataset")
        until = iso(services.clock() + timedelta(seconds=lease_seconds))
        return current.model_copy(update={"orphan_clear_lease": f"{until}|{token}"})

    if update_tenant(services, tenant_id, claim) is None:
        return  # cleared by an earlier attempt
    if state.dataset_action == "recreate_orphan":
        warehouse.delete_dataset(tenant_id)
    elif warehouse.dataset_exists(tenant_id):
        for statement in sql.statements(sql.render("drop_tenant_tables", dataset=tenant_id)):
            warehouse.execute(statement)

    def cleared(current: TenantState) -> TenantState | None:
        if (current.orphan_clear_lease or "").rpartition("|")[2] != token:
            raise OrphanBusy("the lease on clearing the orphan dataset was lost")
        return current.model_copy(update={"orphan_cleared": True, "orphan_clear_lease": None})

    update_tenant(services, tenant_id, cleared)
    logger.warning("orphan dataset cleared as decided at onboarding", extra={"tenant_id": tenant_id, "action": state.dataset_action})


def provision_view(state: TenantState, command: StepRequested, services: Services) -> dict[str, Any]:
    """The tenant's comprehensive view: its own DDL, nothing else (the copy rows follow activation)."""
    tenant_id = state.tenant_id
    services.warehouse.execute(sql.render("create_comprehensive_view", central=services.central, dataset=tenant_id, tenant_id=tenant_id))
    return {}


def record_validation_run(state: TenantState, services: Services) -> TenantState:
    """The onboarding validation counts as today's first run, once (the step completes once); the platform's, not charged."""
    return transitions.record_run(state, "SUCCEEDED", services.clock().date(), platform=True)


step_action("subscription", record=record_subscription)
step_action("quota", record=record_quota)
step_action("dataset", effects=provision_dataset)
step_action("view", effects=provision_view, record=record_validation_run)
