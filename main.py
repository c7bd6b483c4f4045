"""Cloud Functions source root: every function's entry point, by name (see deploy.sh)."""

from functions.api import dead_letters, dryrun, healthz, onboard_tenant, retry_tenant_steps, tenant_overview, tenant_status
from functions.steps import step_dataset, step_dead_letter, step_quota, step_subscription, step_view

__all__ = [
    "dead_letters",
    "dryrun",
    "healthz",
    "onboard_tenant",
    "retry_tenant_steps",
    "step_dataset",
    "step_dead_letter",
    "step_quota",
    "step_subscription",
    "step_view",
    "tenant_overview",
    "tenant_status",
]
