"""The dry-run checks. Each returns (passed, detail) and never raises."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable

from email_validator import EmailNotValidError, validate_email

from schemas.http import CheckResult, TenantRequest
from shared.domain.dryrun_config import CHECK_NAMES
from shared.domain.identifiers import case_twin_problem, company_name_problem, folded_tenant_id, tenant_id_problem
from shared.handlers.warehouse_setup import expected_central_columns
from shared.ports import BackendError
from shared.services import TENANT_IDS, TENANTS, Services

Outcome = tuple[bool, str]
Check = Callable[[TenantRequest, Services], Outcome]


def tenant_id_format(request: TenantRequest, services: Services) -> Outcome:
    """Letters, digits, underscore; 3-50 characters; a valid, unreserved dataset name."""
    problem = tenant_id_problem(request.tenant_id, reserved=frozenset({services.central}))
    if problem:
        return False, problem
    return True, f"'{request.tenant_id}' is a valid tenant id and dataset name"


def company_name_format(request: TenantRequest, services: Services) -> Outcome:
    """No control or bidirectional control characters: the name is shown to people and written to logs."""
    problem = company_name_problem(request.company_name)
    if problem:
        return False, problem
    return True, "company_name has no control or bidirectional control characters"


def email_format(request: TenantRequest, services: Services) -> Outcome:
    """A syntactically valid address (no DNS look-up)."""
    try:
        validate_email(request.admin_email, check_deliverability=False)
    except EmailNotValidError as error:
        return False, f"admin_email is not valid: {error}"
    return True, "admin_email is a valid address"


def gcp_credentials(request: TenantRequest, services: Services) -> Outcome:
    """The configured backends can authenticate."""
    return services.credentials.check()


# A passing ping is kept this long per warehouse: on BigQuery SELECT 1 is a query job (about a
# second) on every dry run, and the dry run reaches the warehouse anyway (tenant_existence looks
# for the dataset), so an outage still fails it. A failing ping is never kept.
CONNECTIVITY_TTL_SECONDS = 60.0
_connectivity_passed: weakref.WeakKeyDictionary[object, float] = weakref.WeakKeyDictionary()


def bigquery_connectivity(request: TenantRequest, services: Services) -> Outcome:
    """The warehouse answers SELECT 1 (a pass is kept a minute per warehouse)."""
    kept = _connectivity_passed.get(services.warehouse)
    if kept is None or time.monotonic() - kept >= CONNECTIVITY_TTL_SECONDS:
        services.warehouse.ping()
        _connectivity_passed[services.warehouse] = time.monotonic()
    return True, f"warehouse answered SELECT 1 ({services.settings.backend} backend)"


def subscription_plan(request: TenantRequest, services: Services) -> Outcome:
    """The plan is one we sell."""
    plan = services.plans.get(request.subscription_plan)
    if plan is None:
        known = ", ".join(sorted(services.plans.plans))
        return False, f"unknown subscription_plan '{request.subscription_plan}' (plans: {known})"
    return True, (
        f"{plan.name}: {plan.daily_pipeline_limit} pipelines/day, {plan.monthly_pipeline_limit}/month, "
        f"{plan.concurrent_pipeline_limit} concurrent"
    )


def tenant_existence(request: TenantRequest, services: Services) -> Outcome:
    """No tenant with this id; says whether a dataset of that name is an orphan the force flags would act on."""
    if tenant_id_problem(request.tenant_id, reserved=frozenset({services.central})):
        return False, "not checked: the tenant id is not valid"
    # The id's claim is created with the tenant and deleted with it (one transaction each, in
    # onboard and purge): no claim, no tenant, and the tenant document need not be read.
    claim = services.documents.get(TENANT_IDS, folded_tenant_id(request.tenant_id))
    state = services.documents.get(TENANTS, request.tenant_id) if claim is not None else None
    if state is not None and state.get("status") == "OFFBOARDED":
        return False, (
            f"tenant '{request.tenant_id}' was offboarded on {state.get('offboarded_at')}; its data is kept until "
            f"{state.get('purge_after')} and the id can be onboarded again once it is purged"
        )
    if state is not None:
        return False, (
            f"tenant '{request.tenant_id}' already exists (status {state.get('status')}); "
            "force_recreate_dataset and force_recreate_tables never touch an existing tenant's dataset"
        )
    problem = case_twin_problem(request.tenant_id, (claim or {}).get("tenant_id"))
    if problem is not None:
        return False, problem
    if services.warehouse.dataset_exists(request.tenant_id):
        return True, (
            f"no tenant '{request.tenant_id}', but an orphan dataset of that name exists: onboarding reuses it, "
            "force_recreate_dataset drops and recreates it, force_recreate_tables recreates its tables"
        )
    return True, f"no tenant or dataset named '{request.tenant_id}' yet"


# A passing central-tables check is kept this long per warehouse: the tables are created once,
# by the bootstrap, and reading four table schemas on every dry run would cost four metadata
# calls each time. A failing check is never kept, so a fix shows at the next dry run.
CENTRAL_TABLES_TTL_SECONDS = 300.0
_central_tables_passed: weakref.WeakKeyDictionary[object, tuple[float, str]] = weakref.WeakKeyDictionary()


def central_tables(request: TenantRequest, services: Services) -> Outcome:
    """All four central tables exist with the expected columns (a pass is kept a few minutes per warehouse)."""
    kept = _central_tables_passed.get(services.warehouse)
    if kept is not None and time.monotonic() - kept[0] < CENTRAL_TABLES_TTL_SECONDS and kept[1] == services.central:
        return True, f"{len(expected_central_columns(services.central))} central tables present in {services.central} with expected columns"
    passed, detail = _read_central_tables(services)
    if passed:
        _central_tables_passed[services.warehouse] = (time.monotonic(), services.central)
    return passed, detail


def _read_central_tables(services: Services) -> Outcome:
    problems = []
    expected = expected_central_columns(services.central)
    for table, columns in expected.items():
        actual = services.warehouse.table_columns(services.central, table)
        if actual is None:
            problems.append(f"{table} is missing")
            continue
        missing = [f"{name} {kind}" for name, kind in columns.items() if actual.get(name) != kind]
        if missing:
            problems.append(f"{table} lacks {', '.join(missing)}")
    if problems:
        return False, "; ".join(problems) + " (run the bootstrap command)"
    return True, f"{len(expected)} central tables present in {services.central} with expected columns"


def dryrun_config(request: TenantRequest, services: Services) -> Outcome:
    """The dry-run config file loaded and validated when the services were built."""
    config = services.dryrun.config
    if config is None:
        return False, services.dryrun.problem
    enabled = sum(config.checks.values())
    return (
        True,
        f"dryrun.yml v{config.version}: {enabled}/{len(CHECK_NAMES)} checks enabled, TTL {config.validation_ttl_minutes} min",
    )


CHECKS: dict[str, Check] = {
    "tenant_id_format": tenant_id_format,
    "company_name_format": company_name_format,
    "email_format": email_format,
    "gcp_credentials": gcp_credentials,
    "bigquery_connectivity": bigquery_connectivity,
    "subscription_plan": subscription_plan,
    "tenant_existence": tenant_existence,
    "central_tables": central_tables,
    "dryrun_config": dryrun_config,
}
assert tuple(CHECKS) == CHECK_NAMES


def run_check(name: str, enabled: bool, request: TenantRequest, services: Services) -> CheckResult:
    """Run one check, turning any failure of a backend or the config into a failed result."""
    if not enabled:
        return CheckResult(name=name, passed=True, detail="disabled in dryrun.yml")
    try:
        passed, detail = CHECKS[name](request, services)
    except BackendError as error:
        passed, detail = False, f"backend error: {type(error).__name__}: {error}"[:300]
    except Exception as error:  # a check must report, never crash the dry run
        passed, detail = False, f"{type(error).__name__}: {error}"[:300]
    return CheckResult(name=name, passed=passed, detail=detail)
