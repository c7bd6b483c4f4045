"""Cloud Functions source root: every function's entry point, by name (see deploy.sh)."""

from functions.api import dryrun, healthz, onboard_tenant, tenant_overview, tenant_status
from functions.steps import step_dataset, step_dead_letter, step_quota, step_subscription, step_view

__all__ = [
    "dryrun",
    "healthz",
    "onboard_tenant",
    "step_dataset",
    "step_dead_letter",
    "step_quota",
    "step_subscription",
    "step_view",
    "tenant_overview",
    "tenant_status",
]
