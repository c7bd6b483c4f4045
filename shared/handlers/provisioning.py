"""The side effect of each provisioning step, idempotent by construction (MERGE, IF NOT EXISTS)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from schemas.events import StepRequested
from shared import sql
from shared.domain.errors import PermanentEventError
from shared.domain.plans import Plan
from shared.domain.tenant import TenantState, step_is_current
from shared.handlers.tenant_store import update_tenant
from shared.ports import BackendUnavailable
from shared.services import Services, iso

logger = logging.getLogger(__name__)

VALIDATION_TABLE = "onboarding_validation_test"
COMPREHENSIVE_VIEW = "tenant_comprehensive_view"
VALIDATION_PIPELINE = "onboarding_validation"


def plan_of(state: TenantState, services: Services) -> Plan:
    """The tenant's plan from the catalog; a plan that vanished from config cannot be retried into existence."""
    plan = services.plans.get(state.subscription_plan)
    if plan is None:
        raise PermanentEventError(f"plan {state.subscription_plan} is not in plans.yml")
    return plan


def plan_params(plan: Plan) -> dict[str, Any]:
    """The plan's limits as query parameters."""
    return {
        "daily_limit": plan.daily_pipeline_limit,
        "monthly_limit": plan.monthly_pipeline_limit,
        "concurrent_limit": plan.concurrent_pipeline_limit,
    }


def provision_subscription(state: TenantState, command: StepRequested, services: Services) -> dict[str, Any]:
    """Profile row (new ones start PROVISIONING) and the subscription row with the plan's limits."""
    warehouse, central = services.warehouse, services.central
    warehouse.execute(
        sql.render("upsert_profile", central=central),
        {
            "tenant_id": state.tenant_id,
            "company_name": state.company_name,
            "admin_email": state.admin_email,
            "status": "PROVISIONING",
        },
    )
    plan = plan_of(state, services)
    warehouse.execute(
        sql.render("upsert_subscription", central=central),
        {"tenant_id": state.tenant_id, "plan_name": plan.name, "status": "ACTIVE", **plan_params(plan)},
    )
    return {}


def refresh_usage_quota(tenant_id: str, plan: Plan, services: Services) -> None:
    """Today's usage-quota row, recounted from today's runs (safe to repeat)."""
    services.warehouse.execute(sql.render("upsert_usage_quota", central=services.central), {"tenant_id": tenant_id, **plan_params(plan)})


def provision_quota(state: TenantState, command: StepRequested, services: Services) -> dict[str, Any]:
    """Today's usage-quota row with the plan's limits."""
    refresh_usage_quota(state.tenant_id, plan_of(state, services), services)
    return {}


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
    """The view, a validation row written and read back, the validation run, then the view read."""
    warehouse, central, tenant_id = services.warehouse, services.central, state.tenant_id
    warehouse.execute(sql.render("set_profile_status", central=central), {"tenant_id": tenant_id, "status": "ACTIVE"})
    warehouse.execute(sql.render("create_comprehensive_view", central=central, dataset=tenant_id, tenant_id=tenant_id))
    row_id = f"{tenant_id}_onboarding_validation"
    warehouse.execute(
        sql.render("upsert_validation_row", dataset=tenant_id),
        {"id": row_id, "test_message": f"onboarding validation for {tenant_id}"},
    )
    if not warehouse.query(sql.render("read_validation_row", dataset=tenant_id), {"id": row_id}):
        raise RuntimeError("validation row written but not read back")
    # One onboarding validation per tenant: a redelivered or retried view step records the same run.
    warehouse.execute(
        sql.render("record_pipeline_run", central=central),
        {
            "run_id": f"{tenant_id}.{VALIDATION_PIPELINE}",
            "tenant_id": tenant_id,
            "pipeline_name": VALIDATION_PIPELINE,
            "status": "SUCCEEDED",
        },
    )
    refresh_usage_quota(tenant_id, plan_of(state, services), services)
    rows = warehouse.query(sql.render("read_comprehensive_view", dataset=tenant_id))
    if len(rows) != 1 or rows[0]["tenant_status"] != "ACTIVE":
        raise RuntimeError(f"{COMPREHENSIVE_VIEW} returned {len(rows)} rows instead of one ACTIVE row")
    return {}


STEP_ACTIONS: dict[str, Callable[[TenantState, StepRequested, Services], dict[str, Any]]] = {
    "subscription": provision_subscription,
    "quota": provision_quota,
    "dataset": provision_dataset,
    "view": provision_view,
}
