"""The tenant state document and its transitions (pure functions, no I/O)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.domain import steps as step_graph

TenantStatus = Literal["PROVISIONING", "ACTIVE", "FAILED", "SUSPENDED", "OFFBOARDED"]
StepStatusName = Literal["WAITING", "PENDING", "RUNNING", "DONE", "FAILED"]
RunStatus = Literal["SUCCEEDED", "FAILED"]

# The four steps declared in shared.domain.steps (the graph itself is read from there).
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


class QuotaUsage(BaseModel):
    """The tenant's pipeline runs on `usage_date` (UTC) and in its month: the system of record of its usage quota.

    `pipelines_run` counts every run of the day, the platform's own (onboarding's validation
    run, `platform_runs`) included: that is the usage the view reports. Admission charges the
    tenant's runs only: `pipelines_run - platform_runs` against the daily limit, and the same
    of the month against the monthly one. Fields added after documents were stored default so
    older documents read as they were (their month counts their day, the only one recorded).
    """

    model_config = ConfigDict(extra="forbid")

    usage_date: str
    pipelines_run: int = 0
    pipelines_succeeded: int = 0
    pipelines_failed: int = 0
    platform_runs: int = 0
    usage_month: str | None = None  # YYYY-MM of the month counters
    pipelines_run_month: int = 0
    platform_runs_month: int = 0
    max_concurrent_reached: int = 0

    def on(self, day: date) -> QuotaUsage:
        """The usage as of `day`: a later day starts from zero, a later month too (a day without runs reads as zero)."""
        current = self._with_month()
        if current.usage_date == day.isoformat():
            return current
        if current.usage_month == day.isoformat()[:7]:
            kept = {"usage_month": current.usage_month, "pipelines_run_month": current.pipelines_run_month}
            return QuotaUsage(usage_date=day.isoformat(), platform_runs_month=current.platform_runs_month, **kept)
        return QuotaUsage(usage_date=day.isoformat(), usage_month=day.isoformat()[:7])

    def _with_month(self) -> QuotaUsage:
        if self.usage_month is not None:
            return self
        return self.model_copy(
            update={
                "usage_month": self.usage_date[:7],
                "pipelines_run_month": max(self.pipelines_run_month, self.pipelines_run),
                "platform_runs_month": max(self.platform_runs_month, self.platform_runs),
            }
        )

    @property
    def charged_today(self) -> int:
        """The tenant's own runs of the day: what the daily limit counts."""
        return self.pipelines_run - self.platform_runs

    @property
    def charged_month(self) -> int:
        """The tenant's own runs of the month: what the monthly limit counts."""
        return self.pipelines_run_month - self.platform_runs_month


class RunLease(BaseModel):
    """An admitted run not finished yet: it holds one concurrent slot until it finishes or its lease ends."""

    model_config = ConfigDict(extra="forbid")

    lease_until: str
    admitted_at: str


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
    # Keys rotated out and still in their grace period (hashes); absent in documents written before rotation existed.
    retiring_key_hashes: list[str] = []
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
    # Billing lifecycle (absent in documents written before it existed, hence the defaults).
    status_event_at: str | None = None
    plan_event_at: str | None = None
    offboarded_at: str | None = None
    purge_after: str | None = None
    # Subscription and usage quota (Firestore is their system of record; BigQuery holds a copy).
    subscription_started_at: str | None = None
    quota: QuotaUsage | None = None
    # Pipeline runs admitted and not finished, by pipeline_logging_id: the concurrent slots in use.
    running: dict[str, RunLease] = Field(default_factory=dict)

    def step(self, name: str) -> StepState:
        """The state of step `name`."""
        return self.steps[name]

    @property
    def incarnation(self) -> str:
        """The creation time as digits: tells this tenant from a later one of the same id (after a purge)."""
        return "".join(character for character in self.created_at if character.isdigit())

    def prerequisites_done(self, step: str = FINAL_STEP) -> bool:
        """Whether every prerequisite of `step` is DONE."""
        return all(self.steps[name].status == "DONE" for name in step_graph.prerequisites_of(step))

    def usage_on(self, day: date) -> QuotaUsage:
        """Runs on `day` as the state document records them (zero for a day it has none for)."""
        return (self.quota or QuotaUsage(usage_date=day.isoformat())).on(day)

    def touched(self, now: str) -> TenantState:
        """A copy with the revision bumped: every write goes through here."""
        return self.model_copy(update={"updated_at": now, "revision": self.revision + 1})


def initial_steps() -> dict[str, StepState]:
    """Steps without prerequisites start PENDING (published at once); the others WAIT for theirs."""
    return {step.name: StepState(status="WAITING" if step.prerequisites else "PENDING") for step in step_graph.steps()}


def begin_attempt(state: TenantState, step: str, now: str) -> TenantState:
    """Count one more attempt at `step` and mark it RUNNING."""
    current = state.steps[step]
    updated = current.model_copy(update={"status": "RUNNING", "attempts": current.attempts + 1, "started_at": current.started_at or now})
    return _with_step(state, step, updated).touched(now)


def record_failure(state: TenantState, step: str, error: str, now: str) -> TenantState:
    """Keep the latest error of `step`; it stays retryable."""
    updated = state.steps[step].model_copy(update={"status": "PENDING", "error": error})
    return _with_step(state, step, updated).touched(now)


def complete_step(state: TenantState, step: str, now: str) -> tuple[TenantState, list[str]]:
    """Mark `step` DONE; also returns the steps this completion releases (their last prerequisite).

    The tenant becomes ACTIVE with the completion of its last step, whatever the graph.
    """
    updated = state.steps[step].model_copy(update={"status": "DONE", "error": None, "completed_at": now})
    new_state = _with_step(state, step, updated)
    released = [
        name for name in step_graph.dependents_of(step) if new_state.steps[name].status == "WAITING" and new_state.prerequisites_done(name)
    ]
    for name in released:
        new_state = _with_step(new_state, name, new_state.steps[name].model_copy(update={"status": "PENDING"}))
    if all(current.status == "DONE" for current in new_state.steps.values()):
        new_state = new_state.model_copy(update={"status": "ACTIVE", "error": None})
    return new_state.touched(now), released


def releasable_steps(state: TenantState) -> list[str]:
    """Steps whose prerequisites are done and that no attempt has started: the ones to (re)publish."""
    return [
        name
        for name, step in state.steps.items()
        if step.status == "PENDING" and step.attempts == 0 and step_graph.prerequisites_of(name) and state.prerequisites_done(name)
    ]


def record_run(state: TenantState, status: RunStatus, day: date, *, platform: bool = False) -> TenantState:
    """One more finished pipeline run on `day` in the state's usage (the caller bumps the revision).

    `platform`: a run the platform made itself (onboarding's validation), counted as usage but not charged.
    """
    usage = state.usage_on(day)
    counted = usage.model_copy(
        update={
            "pipelines_run": usage.pipelines_run + 1,
            "pipelines_succeeded": usage.pipelines_succeeded + (status == "SUCCEEDED"),
            "pipelines_failed": usage.pipelines_failed + (status == "FAILED"),
            "platform_runs": usage.platform_runs + platform,
            "pipelines_run_month": usage.pipelines_run_month + 1,
            "platform_runs_month": usage.platform_runs_month + platform,
        }
    )
    return state.model_copy(update={"quota": counted})


def quota_reached(usage: QuotaUsage, running: int, daily_limit: int, monthly_limit: int, concurrent_limit: int) -> bool:
    """Whether admission would refuse the next run: a daily, monthly or concurrent limit is reached."""
    return usage.charged_today >= daily_limit or usage.charged_month >= monthly_limit or running >= concurrent_limit


def overview(state: TenantState, daily_limit: int, monthly_limit: int, concurrent_limit: int, day: date) -> dict[str, Any]:
    """The tenant's row of tenant_comprehensive_view, computed from the state document alone.

    Same rules as the view's SQL: runs of `day` only (every run, the platform's own included),
    EXCEEDED once admission would refuse a run (`quota_reached`), the percentage rounded to
    one decimal half away from zero (BigQuery's ROUND).
    """
    usage = state.usage_on(day)
    exceeded = quota_reached(usage, len(state.running), daily_limit, monthly_limit, concurrent_limit)
    percent = Decimal(usage.pipelines_run * 100) / Decimal(daily_limit)
    return {
        "tenant_id": state.tenant_id,
        "company_name": state.company_name,
        "admin_email": state.admin_email,
        "tenant_status": state.status,
        "plan_name": state.subscription_plan,
        "subscription_status": subscription_status(state.status),
        "subscription_daily_limit": daily_limit,
        "subscription_monthly_limit": monthly_limit,
        "subscription_concurrent_limit": concurrent_limit,
        "pipelines_run_today": usage.pipelines_run,
        "pipelines_succeeded_today": usage.pipelines_succeeded,
        "pipelines_failed_today": usage.pipelines_failed,
        "quota_status": "EXCEEDED" if exceeded else "AVAILABLE",
        "daily_usage_percent": float(percent.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)),
    }


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
        waiting = not state.prerequisites_done(name)
        fresh = StepState(status="WAITING" if waiting else "PENDING", generation=current.generation + 1)
        new_state = _with_step(new_state, name, fresh)
    return new_state.model_copy(update={"status": "PROVISIONING", "error": None}).touched(now), retried


# --- billing lifecycle -------------------------------------------------------------------------

BillingKind = Literal["plan_changed", "payment_failed", "payment_recovered", "subscription_cancelled"]
BillingOutcome = Literal["applied", "ignored", "refused"]
LifecycleKind = Literal["tenant.activated", "tenant.suspended", "tenant.resumed", "tenant.plan_changed", "tenant.offboarded"]
DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)
LIVE_STATUSES: frozenset[str] = frozenset({"ACTIVE", "SUSPENDED", "OFFBOARDED"})
_SUBSCRIPTION_STATUS = {"ACTIVE": "ACTIVE", "SUSPENDED": "SUSPENDED", "OFFBOARDED": "CANCELLED"}


@dataclass(frozen=True)
class BillingDecision:
    """What a billing event does to a tenant: the outcome, why, the new state, what to announce."""

    outcome: BillingOutcome
    detail: str
    state: TenantState
    lifecycle: LifecycleKind | None = None
    dead_letter: bool = False  # refused as untrustworthy, not just decided against: also a dead letter


def subscription_status(status: str) -> str:
    """The subscription row's status for a live tenant's status."""
    return _SUBSCRIPTION_STATUS.get(status, "ACTIVE")


def accepts_billing(state: TenantState) -> bool:
    """Billing events apply to tenants that went live; PROVISIONING and FAILED ones never did."""
    return state.status in LIVE_STATUSES


def purge_due(state: TenantState, now: datetime) -> bool:
    """An offboarded tenant whose retention period is over."""
    return state.status == "OFFBOARDED" and state.purge_after is not None and datetime.fromisoformat(state.purge_after) <= now


def apply_billing_event(
    state: TenantState,
    kind: BillingKind,
    *,
    occurred_at: datetime,
    new_plan: str | None,
    known_plans: Collection[str],
    now: datetime,
    retention: timedelta,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
) -> BillingDecision:
    """Decide one billing event against the state document (pure: the caller writes the result).

    An event dated more than `max_future_skew` after `now` is refused before anything else:
    applied, it would make every real event after it look older and be ignored.
    Order is judged per aspect: a payment event older than the last payment or cancellation
    applied is ignored, and so is a plan change older than the last plan change; the two do
    not shadow each other. A cancellation is final whatever its date, and nothing but a
    purge follows it. A plan change naming an unknown plan is refused first, whatever the
    tenant's state or the event's date, so its reason never depends on delivery order.
    """
    if not accepts_billing(state):
        raise ValueError(f"tenant {state.tenant_id} is {state.status}; billing events do not apply")
    refusal = _refusal(
        state, kind, occurred_at=occurred_at, new_plan=new_plan, known_plans=known_plans, now=now, max_future_skew=max_future_skew
    )
    if refusal is not None:
        return refusal
    stamp, moment = utc_stamp(occurred_at), _display(now)
    if state.status == "OFFBOARDED":
        if kind == "subscription_cancelled":
            return BillingDecision("ignored", f"already OFFBOARDED since {state.offboarded_at}", state)
        return BillingDecision("refused", f"tenant is OFFBOARDED: {kind} cannot apply", state)
    if kind == "subscription_cancelled":
        offboarded = state.model_copy(
            update={
                "status": "OFFBOARDED",
                "status_event_at": _later(state.status_event_at, stamp),
                "offboarded_at": moment,
                "purge_after": _display(now + retention),
            }
        )
        detail = f"{state.status} -> OFFBOARDED; data kept until {offboarded.purge_after}"
        return BillingDecision("applied", detail, offboarded.touched(moment), "tenant.offboarded")
    if kind == "plan_changed" and new_plan is not None:
        return _change_plan(state, stamp, new_plan, moment)
    return _change_payment_status(state, kind, stamp, moment)


def _refusal(
    state: TenantState,
    kind: BillingKind,
    *,
    occurred_at: datetime,
    new_plan: str | None,
    known_plans: Collection[str],
    now: datetime,
    max_future_skew: timedelta,
) -> BillingDecision | None:
    """Refusals that do not depend on the tenant's state or on delivery order."""
    if occurred_at > now + max_future_skew:
        detail = (
            f"occurred_at {utc_stamp(occurred_at)} is in the future: more than {max_future_skew.total_seconds():.0f} s "
            f"after this service's clock ({_display(now)})"
        )
        return BillingDecision("refused", detail, state, dead_letter=True)
    if kind == "plan_changed" and (new_plan is None or new_plan not in known_plans):
        return BillingDecision("refused", f"unknown plan '{new_plan}' (plans: {', '.join(sorted(known_plans))})", state)
    return None


def _change_plan(state: TenantState, stamp: str, new_plan: str, moment: str) -> BillingDecision:
    if _not_newer(stamp, state.plan_event_at):
        return BillingDecision("ignored", f"older than the last plan change applied ({state.plan_event_at})", state)
    changed = state.model_copy(update={"subscription_plan": new_plan, "plan_event_at": stamp}).touched(moment)
    if new_plan == state.subscription_plan:
        return BillingDecision("applied", f"already on {new_plan}", changed)
    return BillingDecision("applied", f"plan {state.subscription_plan} -> {new_plan}", changed, "tenant.plan_changed")


def _change_payment_status(state: TenantState, kind: BillingKind, stamp: str, moment: str) -> BillingDecision:
    if _not_newer(stamp, state.status_event_at):
        return BillingDecision("ignored", f"older than the last payment event applied ({state.status_event_at})", state)
    target = "SUSPENDED" if kind == "payment_failed" else "ACTIVE"
    changed = state.model_copy(update={"status": target, "status_event_at": stamp}).touched(moment)
    if state.status == target:
        return BillingDecision("applied", f"already {target}", changed)
    lifecycle: LifecycleKind = "tenant.suspended" if target == "SUSPENDED" else "tenant.resumed"
    return BillingDecision("applied", f"{state.status} -> {target}", changed, lifecycle)


def utc_stamp(moment: datetime) -> str:
    """UTC, microseconds, Z: strings of this fixed width compare as their instants do."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _display(moment: datetime) -> str:
    """The form every other timestamp of the state document has (milliseconds, Z)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _not_newer(stamp: str, last: str | None) -> bool:
    return last is not None and datetime.fromisoformat(stamp) <= datetime.fromisoformat(last)


def _later(current: str | None, stamp: str) -> str:
    return stamp if current is None or datetime.fromisoformat(stamp) > datetime.fromisoformat(current) else current
