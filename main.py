"""Cloud Functions source root: every function's entry point, by name (see deploy.sh).

An entry point's module is imported on first access (PEP 562 module `__getattr__`, which the
Functions Framework's `hasattr`/`getattr` lookup goes through), so a deployed function loads
its own module and what that imports, not every function's: a shorter cold start. Each
declared step's function (`step_<name>`, shared/domain/steps.py) comes from functions.steps.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shared.domain.steps import steps

if TYPE_CHECKING:
    from functions.admin import tenant_admin
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
    from functions.pipelines import pipeline_result_dead_letter, pipeline_results_http, pipeline_run_result, run_pipeline
    from functions.steps import reconcile_steps, step_dead_letter

_BY_MODULE = {
    "functions.admin": ("tenant_admin",),
    "functions.api": ("dead_letters", "dryrun", "healthz", "onboard_tenant", "retry_tenant_steps", "tenant_overview", "tenant_status"),
    "functions.billing": (
        "billing_dead_letter",
        "billing_event",
        "billing_events_http",
        "purge_expired",
        "purge_expired_http",
        "sweep_expired_records",
        "tenant_events_http",
    ),
    "functions.steps": ("reconcile_steps", "step_dead_letter"),
    "functions.pipelines": ("pipeline_result_dead_letter", "pipeline_results_http", "pipeline_run_result", "run_pipeline"),
}
_MODULES = {name: module for module, names in _BY_MODULE.items() for name in names}

__all__ = [
    "billing_dead_letter",
    "billing_event",
    "billing_events_http",
    "dead_letters",
    "dryrun",
    "healthz",
    "onboard_tenant",
    "pipeline_result_dead_letter",
    "pipeline_results_http",
    "pipeline_run_result",
    "purge_expired",
    "purge_expired_http",
    "reconcile_steps",
    "retry_tenant_steps",
    "run_pipeline",
    "step_dead_letter",
    "sweep_expired_records",
    "tenant_admin",
    "tenant_events_http",
    "tenant_overview",
    "tenant_status",
]
__all__ += [step.function for step in steps()]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None and any(step.function == name for step in steps()):
        module = "functions.steps"
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return list(__all__)
