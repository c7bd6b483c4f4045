"""Cloud Functions source root: every function's entry point, by name (see deploy.sh)."""

from functions.api import dead_letters, dryrun, healthz, onboard_tenant, retry_tenant_steps, tenant_overview, tenant_status
from functions.billing import (
    billing_dead_letter,
    billing_event,
    billing_events_http,
    purge_expired,
    purge_expired_http,
    sweep_expired_records,
    tenant_events_http,
)
from functions.steps import reconcile_steps, step_dataset, step_dead_letter, step_quota, step_subscription, step_view

__all__ = [
    "billing_dead_letter",
    "billing_event",
    "billing_events_http",
    "dead_letters",
    "dryrun",
    "healthz",
    "onboard_tenant",
    "purge_expired",
    "purge_expired_http",
    "reconcile_steps",
    "retry_tenant_steps",
    "step_dataset",
    "step_dead_letter",
    "step_quota",
    "step_subscription",
    "step_view",
    "sweep_expired_records",
    "tenant_events_http",
    "tenant_overview",
    "tenant_status",
]
