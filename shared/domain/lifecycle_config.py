"""Lifecycle policy, loaded from `configs/lifecycle.yml`."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.config import CONFIG_DIR


class LifecyclePolicy(BaseModel):
    """How long an offboarded tenant's data is kept before it is purged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retention_days: int = Field(default=30, ge=0, le=3650)

    @property
    def retention(self) -> timedelta:
        """The retention period."""
        return timedelta(days=self.retention_days)


def load_lifecycle_policy(path: Path | None = None) -> LifecyclePolicy:
    """Parse and validate the lifecycle file."""
    raw = yaml.safe_load((path or CONFIG_DIR / "lifecycle.yml").read_text()) or {}
    return LifecyclePolicy.model_validate(raw)


@lru_cache(maxsize=1)
def default_lifecycle_policy() -> LifecyclePolicy:
    """The lifecycle file of this deployment, parsed once per process."""
    return load_lifecycle_policy()
