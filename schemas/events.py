"""Pub/Sub payloads. Each carries its own event_id: handlers dedupe on it, not on the
transport's message id, because a republished message gets a new one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, Field, field_validator, model_validator

from schemas.base import Contract
from schemas.http import CheckResult, TenantStatus
from shared.domain.steps import step_names


def _declared_step(name: str) -> str:
    if name not in step_names():
        raise ValueError(f"no step named '{name}' (steps: {', '.join(step_names())})")
    return name


def _declared_steps_schema(schema: dict[str, Any]) -> None:
    schema["enum"] = list(step_names())


# A step declared in shared/domain/steps.py; the JSON Schema lists those declared when it was generated.
StepName = Annotated[str, AfterValidator(_declared_step), Field(json_schema_extra=_declared_steps_schema)]


class ValidationRecorded(Contract):
    """A dry run was performed (topic tenant-validations)."""

    event_id: str
    validation_id: str
    tenant_id: str
    subscription_plan: str
    passed: bool
    checks: list[CheckResult]
    occurred_at: str


class StepRequested(Contract):
    """Run one provisioning step for a tenant (one topic per step)."""

    event_id: str
    tenant_id: str
    step: StepName
    generation: int
    force_recreate_dataset: bool = False
    force_recreate_tables: bool = False
    occurred_at: str


BillingEventType = Literal["plan_changed", "payment_failed", "payment_recovered", "subscription_cancelled"]
LifecycleEventType = Literal["tenant.activated", "tenant.suspended", "tenant.resumed", "tenant.plan_changed", "tenant.offboarded"]
# A document id in Firestore and a readable token in logs: no slashes, no spaces.
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,199}$"


class BillingEvent(Contract):
    """Something the billing system decided about a tenant (topic billing-events)."""

    event_id: str = Field(pattern=EVENT_ID_PATTERN)
    tenant_id: str = Field(min_length=1, max_length=100)
    type: BillingEventType
    new_plan: str | None = Field(default=None, min_length=1, max_length=50)
    occurred_at: AwareDatetime = Field(strict=False, description="When the billing system decided it (RFC 3339, with offset)")
    source: str = Field(min_length=1, max_length=100)

    @field_validator("occurred_at")
    @classmethod
    def _representable_in_utc(cls, value: datetime) -> datetime:
        """9999-12-31T23:59:59-01:00 is a valid RFC 3339 time with no UTC form in Python: refused here, not later."""
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("occurred_at is out of range once converted to UTC") from None
        return value

    @model_validator(mode="after")
    def _new_plan_only_for_plan_changes(self) -> BillingEvent:
        if self.type == "plan_changed" and self.new_plan is None:
            raise ValueError("new_plan is required when type is plan_changed")
        if self.type != "plan_changed" and self.new_plan is not None:
            raise ValueError(f"new_plan must be absent when type is {self.type}")
        return self


class TenantLifecycleEvent(Contract):
    """A tenant's status or plan changed (topic tenant-lifecycle), for downstream systems."""

    event_id: str
    tenant_id: str
    type: LifecycleEventType
    status: TenantStatus
    subscription_plan: str
    previous_status: TenantStatus | None = None
    previous_plan: str | None = None
    cause_event_id: str
    occurred_at: str


class PipelineRunRequested(Contract):
    """An admitted pipeline run for the executor (topic pipeline-runs); its event_id is the pipeline_logging_id."""

    event_id: str
    pipeline_logging_id: str
    tenant_id: str
    pipeline_id: str
    provider: str
    domain: str
    template: str
    date: str | None = None
    parameters: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    lease_until: str = Field(description="The run is FAILED (TIMED_OUT) unless a report comes by then; RUNNING renews it")
    occurred_at: str


class PipelineRunResult(Contract):
    """An executor's report on a run (topic pipeline-run-results, or the executors' HTTP route)."""

    event_id: str = Field(pattern=EVENT_ID_PATTERN)
    pipeline_logging_id: str = Field(min_length=1, max_length=100)
    tenant_id: str = Field(min_length=1, max_length=100)
    status: Literal["RUNNING", "SUCCEEDED", "FAILED"]
    reason: str | None = Field(default=None, max_length=500)
    occurred_at: AwareDatetime = Field(strict=False, description="When the executor saw it (RFC 3339, with offset)")
