"""Lifecycle policy: what `configs/lifecycle.yml` declares (read by `shared.bootstrap`)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field


class LifecyclePolicy(BaseModel):
    """How long an offboarded tenant's data is kept before it is purged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retention_days: int = Field(default=30, ge=0, le=3650)

    @property
    def retention(self) -> timedelta:
        """The retention period."""
        return timedelta(days=self.retention_days)
