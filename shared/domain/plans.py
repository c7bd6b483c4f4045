"""Subscription plans: the catalog `configs/plans.yml` declares (read by `shared.bootstrap`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Plan(BaseModel):
    """Limits of one plan: pipelines per day, per month, and at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    display_name: str
    daily_pipeline_limit: int = Field(gt=0)
    monthly_pipeline_limit: int = Field(gt=0)
    concurrent_pipeline_limit: int = Field(gt=0)


class PlanCatalog(BaseModel):
    """Every plan we sell, by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plans: dict[str, Plan]

    def get(self, name: str) -> Plan | None:
        """The plan called `name` (exact, upper case), or None."""
        return self.plans.get(name)


def plan_catalog(raw: Mapping[str, Any]) -> PlanCatalog:
    """Validate the plans file's contents (`{"plans": {NAME: limits}}`)."""
    plans = {name: Plan(name=name, **values) for name, values in raw["plans"].items()}
    return PlanCatalog(plans=plans)
