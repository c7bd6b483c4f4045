"""The tenant state document and its transitions (pure functions, no I/O)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

TenantStatus = Literal["PROVISIONING", "ACTIVE", "FAILED", "SUSPENDED", "OFFBOARDED"]
StepStatusName = Literal["WAITING", "PENDING", "RUNNING", "DONE", "FAILED"]

PREREQUISITE_STEPS: tuple[str, ...] = ("subscription", "quota", "dataset")
FINAL_STEP = "view"
ALL_STEPS: tuple[str, ...] = (*PREREQUISITE_STEPS, FINAL_STEP)
# What the dataset step does, decided once at onboarding and kept in the state document.
DatasetAction = Literal["create", "reuse_orphan", "recreate_orphan", "recreate_orphan_tables"]


class StepState(BaseModel):
    """One step's progress inside the state document."""

    model_config = ConfigDict(extra="forbid")

    status: StepStatusName
    generation: int = 1
    attempts: int = 0
    error: str | None = None
    started_at: str | None = None
    completed_at: str | None = None


class TenantState(BaseModel):
    """`tenants/{tenant_id}`: profile, plan, status and steps; the only coordination point."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str
    company_name: str
    admin_email: str
    subscription_plan: str
    status: TenantStatus
    steps: dict[str, StepState]
    api_key_hash: str
    request_fingerprint: str
    created_at: str
    updated_at: str
    revision: int = 1
    dataset_created: bool = False
    force_recreate_dataset: bool = False
    force_recreate_tables: bool = False
    error: str | None = None
    dataset_action: DatasetAction = "create"
    orphan_cleared: bool = False
    orphan_clear_lease: str | None = None

    def step(self, name: str) -> StepState:
        """The state of step `name`."""
        return self.steps[name]

    def prerequisites_done(self) -> bool:
        """Whether every step the view depends on is DONE."""
        return all(self.steps[name].status == "DONE" for name in PREREQUISITE_STEPS)

    def touched(self, now: str) -> TenantState:
        """A copy with the revision bumped: every write goes through here."""
        return self.model_copy(update={"updated_at": now, "revision": self.revision + 1})


def initial_steps() -> dict[str, StepState]:
    """Prerequisites start PENDING (published at once); the view WAITS for them."""
    steps = {name: StepState(status="PENDING") for name in PREREQUISITE_STEPS}
    steps[FINAL_STEP] = StepState(status="WAITING")
    return steps


def begin_attempt(state: TenantState, step: str, now: str) -> TenantState:
    """Count one more attempt at `step` and mark it RUNNING."""
    current = state.steps[step]
    updated = current.model_copy(update={"status": "RUNNING", "attempts": current.attempts + 1, "started_at": current.started_at or now})
    return _with_step(state, step, updated).touched(now)


def record_failure(state: TenantState, step: str, error: str, now: str) -> TenantState:
    """Keep the latest error of `step`; it stays retryable."""
    updated = state.steps[step].model_copy(update={"status": "PENDING", "error": error})
    return _with_step(state, step, updated).touched(now)


def complete_step(state: TenantState, step: str, now: str) -> tuple[TenantState, bool]:
    """Mark `step` DONE; the second value is True when this completion releases the view step."""
    updated = state.steps[step].model_copy(update={"status": "DONE", "error": None, "completed_at": now})
    new_state = _with_step(state, step, updated)
    releases_view = step in PREREQUISITE_STEPS and new_state.prerequisites_done() and new_state.steps[FINAL_STEP].status == "WAITING"
    if releases_view:
        view = new_state.steps[FINAL_STEP].model_copy(update={"status": "PENDING"})
        new_state = _with_step(new_state, FINAL_STEP, view)
    if step == FINAL_STEP:
        new_state = new_state.model_copy(update={"status": "ACTIVE", "error": None})
    return new_state.touched(now), releases_view


def fail_step(state: TenantState, step: str, error: str, now: str) -> TenantState:
    """The step gave up (dead letter): the step and the tenant are FAILED with the error."""
    updated = state.steps[step].model_copy(update={"status": "FAILED", "error": error})
    failed = _with_step(state, step, updated).model_copy(update={"status": "FAILED", "error": f"step {step} failed: {error}"})
    return failed.touched(now)


def _with_step(state: TenantState, step: str, value: StepState) -> TenantState:
    steps = dict(state.steps)
    steps[step] = value
    return state.model_copy(update={"steps": steps})


def dataset_action_for(dataset_exists: bool, force_recreate_dataset: bool, force_recreate_tables: bool) -> DatasetAction:
    """At onboarding (the tenant does not exist yet), any dataset of its name is an orphan.

    The force flags apply to that orphan only; with no orphan they have nothing to do.
    """
    if not dataset_exists:
        return "create"
    if force_recreate_dataset:
        return "recreate_orphan"
    if force_recreate_tables:
        return "recreate_orphan_tables"
    return "reuse_orphan"


def step_is_current(state: TenantState, step: str, generation: int) -> bool:
    """Whether a command of `generation` may still change `step`.

    Not once it is DONE, not once it was given up (FAILED: only an operator retry, under a
    new generation, runs it again), and not after a retry superseded the generation.
    """
    current = state.steps[step]
    return current.generation == generation and current.status not in ("DONE", "FAILED")


def retry_failed_steps(state: TenantState, now: str) -> tuple[TenantState, list[str]]:
    """A FAILED tenant back to PROVISIONING: each FAILED step gets a new generation (a new event id)."""
    retried = [name for name, step in state.steps.items() if step.status == "FAILED"]
    new_state = state
    for name in retried:
        current = state.steps[name]
        waiting = name == FINAL_STEP and not state.prerequisites_done()
        fresh = StepState(status="WAITING" if waiting else "PENDING", generation=current.generation + 1)
        new_state = _with_step(new_state, name, fresh)
    return new_state.model_copy(update={"status": "PROVISIONING", "error": None}).touched(now), retried
