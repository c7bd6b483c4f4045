"""The dry-run configuration: which checks run and how long a pass stays valid (read by `shared.bootstrap`)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

CHECK_NAMES: tuple[str, ...] = (
    "tenant_id_format",
    "email_format",
    "gcp_credentials",
    "bigquery_connectivity",
    "subscription_plan",
    "tenant_existence",
    "central_tables",
    "dryrun_config",
)


class DryRunConfig(BaseModel):
    """Validated contents of `configs/setup/dryrun/dryrun.yml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    validation_ttl_minutes: int = Field(gt=0, le=7 * 24 * 60)
    checks: dict[str, bool]

    @field_validator("checks")
    @classmethod
    def _every_check_named(cls, checks: dict[str, bool]) -> dict[str, bool]:
        unknown = sorted(set(checks) - set(CHECK_NAMES))
        missing = [name for name in CHECK_NAMES if name not in checks]
        if unknown or missing:
            raise ValueError(f"checks must name exactly the eight checks (unknown: {unknown}, missing: {missing})")
        return checks


@dataclass(frozen=True)
class DryRunSetup:
    """The dry-run config as read at start, or why it did not load (the dryrun_config check reports it)."""

    config: DryRunConfig | None
    problem: str = ""
