"""Cloud Functions source root: every function's entry point, by name (see deploy.sh).

Each declared step's function (`step_<name>`) is found through `__getattr__` below.
"""

from collections.abc import Callable
from typing import Any

import functions.steps
from functions.api import dead_letters, dryrun, healthz, onboard_tenant, retry_tenant_steps, tenant_overview, tenant_status
from functions.billing import billing_dead_letter, billing_event, billing_events_http, purge_expired, purge_expired_http, tenant_events_http
from functions.steps import reconcile_steps, step_dead_letter
from shared.domain.steps import steps

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
    "step_dead_letter",
    "tenant_events_http",
    "tenant_overview",
    "tenant_status",
]
__all__ += [step.function for step in steps()]


def __getattr__(name: str) -> Callable[..., Any]:
    """The function of a declared step, by its entry-point name."""
    function: Callable[..., Any] = getattr(functions.steps, name)
    return function
