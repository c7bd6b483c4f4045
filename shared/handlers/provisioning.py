"""What each declared provisioning step does: effects idempotent by construction (IF NOT EXISTS, MERGE), records pure."""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas.events import StepRequested
from shared import sql
from shared.domain import steps as step_graph
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


def applied_at_onboarding() -> tuple[str, ...]:
    """The steps onboarding's own commit completes: record-only, with every prerequisite among them.

    A step without effects is a pure change of the state document; sent through its topic it
    would cost a publish, a delivery and a transaction of its own on the tenant's document,
    which Firestore allows about once a second (https://cloud.google.com/firestore/quotas#writes_and_transactions).
    So the transaction that creates the document applies it instead, begun and DONE in the
    same commit, one attempt, as its function would have left it. Never the whole graph: going
    live belongs to a step handler, which appends the analytics copy before its commit.
    """
    applied: list[str] = []
    for step in step_graph.steps():  # declaration order: prerequisites first
        action = STEP_ACTIONS.get(step.name)
        if action is not None and action.effects is None and all(name in applied for name in step.prerequisites):
            applied.append(step.name)
    if len(applied) == len(step_graph.steps()):
        applied.pop()
    return tuple(applied)


def published_at_onboarding() -> tuple[str, ...]:
    """The steps onboarding publishes: the others whose prerequisites are all applied by its commit."""
    applied = applied_at_onboarding()
    return tuple(
        step.name for step in step_graph.steps() if step.name not in applied and all(name in applied for name in step.prerequisites)
    )


def apply_at_onboarding(state: TenantState, services: Services) -> TenantState:
    """`state` (a tenant just created) with the steps `applied_at_onboarding` done: their records applied, what they release PENDING."""
    now = services.now()
    for name in applied_at_onboarding():
        state, _ = transitions.complete_step(transitions.begin_attempt(state, name, now), name, now)
        record = STEP_ACTIONS[name].record
        if record is not None:
            state = record(state, services)
    return state


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
    # The view needs only the dataset (BigQuery resolves a view's tables when it is queried), so
    # its DDL job runs beside the table's jobs instead of after them: BigQuery runs a project's
    # jobs concurrently (https://cloud.google.com/bigquery/quotas#query_jobs).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="view-ddl") as pool:
        # The context goes along: log fields, and whose call it is where calls are attributed.
        view = pool.submit(contextvars.copy_context().run, _create_view, state, services)
        _validation_table(state, state.steps[command.step].started_at, created, services)
        view.result()
    recreated = state.dataset_action == "recreate_orphan"
    return {"dataset_created": created or recreated or state.dataset_created}


def _validation_table(state: TenantState, first_started: str | None, dataset_created_now: bool, services: Services) -> None:
    """The validation table (its schema exactly as declared) with its row written once and read back.

    The row goes in with one streaming append (tabledata.insertAll, no job: tens of ms against
    a MERGE job's seconds) only when this very call created the dataset: the table in it was
    then created empty just now, so no earlier attempt can have written the row. Any other
    attempt (a redelivery, a reused or half-cleared orphan) writes it with the MERGE, which
    inserts it only if absent however often it runs. The appended row is the same however often
    it is sent (its time is the step's first start), so a retried append carries the same
    insertId and BigQuery drops the repeat, best effort
    (https://cloud.google.com/bigquery/docs/streaming-data-into-bigquery#dataconsistency).
    Streamed rows are readable at once, so the read back follows either way. Only a duplicate
    delivery running beside the first (its MERGE before the first's append) can leave two rows;
    whichever of them wrote last sees both and deletes the later one.
    """
    warehouse, tenant_id = services.warehouse, state.tenant_id
    for statement in sql.statements(sql.render("tenant_tables", dataset=tenant_id)):
        warehouse.execute(statement)
    row_id = f"{tenant_id}_onboarding_validation"
    message = f"onboarding validation for {tenant_id}"
    if dataset_created_now:
        row = {"id": row_id, "test_message": message, "created_at": datetime.fromisoformat(first_started or services.now())}
        warehouse.append_rows(tenant_id, VALIDATION_TABLE, [row])
    else:
        warehouse.execute(sql.render("upsert_validation_row", dataset=tenant_id), {"id": row_id, "test_message": message})
    rows = warehouse.query(sql.render("read_validation_row", dataset=tenant_id), {"id": row_id})
    if not rows:
        raise RuntimeError("validation row written but not read back")
    if len(rows) > 1:
        warehouse.execute(sql.render("dedupe_validation_row", dataset=tenant_id), {"id": row_id})


def _create_view(state: TenantState, services: Services) -> None:
    """The tenant's comprehensive view: its own DDL, nothing else (the copy rows follow activation)."""
    tenant_id = state.tenant_id
    services.warehouse.execute(sql.render("create_comprehensive_view", central=services.central, dataset=tenant_id, tenant_id=tenant_id))


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


def record_validation_run(state: TenantState, services: Services) -> TenantState:
    """The onboarding validation counts as today's first run, once (the step completes once); the platform's, not charged."""
    return transitions.record_run(state, "SUCCEEDED", services.clock().date(), platform=True)


step_action("subscription", record=record_subscription)
step_action("quota", record=record_quota)
step_action("dataset", effects=provision_dataset)
step_action("view", record=record_validation_run)
