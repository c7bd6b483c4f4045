"""Pub/Sub payloads. Each carries its own event_id: handlers dedupe on it, not on the
transport's message id, because a republished message gets a new one."""

from __future__ import annotations

from typing import Literal

from schemas.base import Contract
from schemas.http import CheckResult

StepName = Literal["subscription", "quota", "dataset", "view"]


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
