"""Subscription plans, loaded from `configs/plans.yml`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.config import CONFIG_DIR


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


def load_plans(path: Path | None = None) -> PlanCatalog:
    """Parse and validate the plans file."""
    raw = yaml.safe_load((path or CONFIG_DIR / "plans.yml").read_text())
    plans = {name: Plan(name=name, **values) for name, values in raw["plans"].items()}
    return PlanCatalog(plans=plans)


@lru_cache(maxsize=1)
def default_plans() -> PlanCatalog:
    """The plans file of this deployment, parsed once per process."""
    return load_plans()
