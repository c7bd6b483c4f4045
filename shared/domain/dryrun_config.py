"""The dry-run configuration file: which checks run and how long a pass stays valid."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.config import CONFIG_DIR

CHECK_NAMES: tuple[str, ...] = (
    "tenant_id_format",
    "company_name_format",
    "email_format",
    "gcp_credentials",
    "bigquery_connectivity",
    "subscription_plan",
    "tenant_existence",
    "central_tables",
    "dryrun_config",
)
DRYRUN_CONFIG_PATH = CONFIG_DIR / "setup" / "dryrun" / "dryrun.yml"


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
            raise ValueError(f"checks must name exactly the checks of CHECK_NAMES (unknown: {unknown}, missing: {missing})")
        return checks


def load_dryrun_config(path: Path = DRYRUN_CONFIG_PATH) -> DryRunConfig:
    """Parse and validate the dry-run config; raises on any problem.

    The parse is cached per file version (mtime and size), so an edited file is read again.
    """
    stat = path.stat()
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _parse(path: Path, mtime_ns: int, size: int) -> DryRunConfig:
    return DryRunConfig.model_validate(yaml.safe_load(path.read_text()))
