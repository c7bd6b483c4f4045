"""The analytics copy: Firestore's tenant, subscription and quota, appended to the central BigQuery tables.

Firestore (the document store) is the system of record; the central tables are a copy for
analytics, written without DML. Every change of a live tenant appends one row per table,
stamped with the state document's revision (`version`); the `*_latest` views keep each key's
highest version, so appends may arrive twice, late or out of order and the copy still reads
as the newest state. `copy_differences` checks that the copy equals Firestore.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import Any

from shared import sql
from shared.domain import tenant as transitions
from shared.domain.errors import PermanentEventError
from shared.domain.plans import Plan, PlanCatalog
from shared.domain.tenant import TenantState
from shared.ports import Row, Warehouse
from shared.services import Services

PROFILES = "tenant_profiles"
SUBSCRIPTIONS = "tenant_subscriptions"
QUOTAS = "tenant_usage_quotas"
PIPELINE_RUNS = "tenant_pipeline_runs"
VALIDATION_PIPELINE = "onboarding_validation"


def plan_of(state: TenantState, services: Services) -> Plan:
    """The tenant's plan from the catalog; a plan that vanished from config cannot be retried into existence."""
    return _plan(services.plans, state)


def _plan(plans: PlanCatalog, state: TenantState) -> Plan:
    plan = plans.get(state.subscription_plan)
    if plan is None:
        raise PermanentEventError(f"plan {state.subscription_plan} is not in plans.yml")
    return plan


def overview_of(state: TenantState, services: Services) -> dict[str, Any]:
    """The tenant's row of tenant_comprehensive_view, from the state document alone (no query)."""
    plan = plan_of(state, services)
    limits = plan.daily_pipeline_limit, plan.monthly_pipeline_limit, plan.concurrent_pipeline_limit
    return transitions.overview(state, *limits, day=services.clock().date())


def in_copy(state: TenantState) -> bool:
    """Tenants that went live are copied; a tenant still provisioning (or failed before that) is not yet."""
    return transitions.accepts_billing(state)


def _moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def copy_rows(state: TenantState, plan: Plan, day: date, recorded_at: datetime) -> dict[str, list[Row]]:
    """The rows that copy `state`: its profile, its subscription and its quota of `day`."""
    limits = {
        "daily_limit": plan.daily_pipeline_limit,
        "monthly_limit": plan.monthly_pipeline_limit,
        "concurrent_limit": plan.concurrent_pipeline_limit,
    }
    stamp = {"version": state.revision, "recorded_at": recorded_at}
    updated = _moment(state.updated_at)
    return {
        PROFILES: [
            {
                "tenant_id": state.tenant_id,
                "company_name": state.company_name,
                "admin_email": state.admin_email,
                "status": state.status,
                "created_at": _moment(state.created_at),
                "updated_at": updated,
                **stamp,
            }
        ],
        SUBSCRIPTIONS: [
            {
                "tenant_id": state.tenant_id,
                "plan_name": plan.name,
                "status": transitions.subscription_status(state.status),
                **limits,
                "started_at": _moment(state.subscription_started_at or state.created_at),
                "updated_at": updated,
                **stamp,
            }
        ],
        QUOTAS: [{"tenant_id": state.tenant_id, "usage_date": day, **usage_columns(state, day), **limits, "updated_at": updated, **stamp}],
    }


def usage_columns(state: TenantState, day: date) -> dict[str, int]:
    """The day's usage as tenant_usage_quotas carries it (the columns of the system it replaces, plus the platform's own runs)."""
    usage = state.usage_on(day)
    return {
        "pipelines_run_today": usage.pipelines_run,
        "pipelines_succeeded_today": usage.pipelines_succeeded,
        "pipelines_failed_today": usage.pipelines_failed,
        "pipelines_run_month": usage.pipelines_run_month,
        "concurrent_pipelines_running": len(state.running),
        "max_concurrent_reached": usage.max_concurrent_reached,
        "platform_runs_today": usage.platform_runs,
        "platform_runs_month": usage.platform_runs_month,
    }


def run_row(
    state: TenantState,
    run_id: str,
    *,
    pipeline_name: str,
    status: str,
    finished_at: str | None,
    recorded_at: datetime,
    started_at: str | None = None,
) -> Row:
    """One pipeline run as the copy keeps it (an unfinished one has no finished_at)."""
    started = started_at or finished_at
    if started is None:
        raise ValueError("a run row needs a start or an end")
    return {
        "run_id": run_id,
        "tenant_id": state.tenant_id,
        "pipeline_name": pipeline_name,
        "status": status,
        "started_at": _moment(started),
        "finished_at": _moment(finished_at) if finished_at else None,
        "version": state.revision,
        "recorded_at": recorded_at,
    }


def validation_run_id(tenant_id: str) -> str:
    """One onboarding validation per tenant: a redelivered or retried step records the same run."""
    return f"{tenant_id}.{VALIDATION_PIPELINE}"


def append_copy(services: Services, state: TenantState, runs: list[Row] | None = None, *, usage_only: bool = False) -> None:
    """Append the copy of a live tenant's `state` (and `runs`): one append per table, no DML.

    `usage_only`: a pipeline run changed the usage alone, so only the quota row (and the runs) go in.
    """
    if not in_copy(state):
        return
    now = services.clock()
    tables = copy_rows(state, plan_of(state, services), now.date(), now)
    if usage_only:
        tables = {QUOTAS: tables[QUOTAS]}
    if runs:
        tables[PIPELINE_RUNS] = runs
    # One append per table, sent together: each is its own request to its own table
    # (https://cloud.google.com/bigquery/docs/reference/rest/v2/tabledata/insertAll), so the copy
    # takes as long as the slowest, not the sum. The context goes along (log fields, attribution).
    with ThreadPoolExecutor(max_workers=len(tables), thread_name_prefix="copy-append") as pool:
        sent = [
            pool.submit(contextvars.copy_context().run, services.warehouse.append_rows, services.central, table, rows)
            for table, rows in tables.items()
        ]
    for append in sent:
        append.result()


def tenant_copy_differences(services: Services, state: TenantState) -> list[str]:
    """`copy_differences` with the services' warehouse, central dataset and plans."""
    return copy_differences(services.warehouse, services.central, services.plans, state)


def copy_differences(warehouse: Warehouse, central: str, plans: PlanCatalog, state: TenantState) -> list[str]:
    """Where the copy of one tenant differs from its state document (empty when it equals it).

    Compared: the latest profile (name, email, status), subscription (plan, status, limits)
    and the latest quota day (limits, runs) against what the state document and the plan
    catalog say. A copied quota day after Firestore's last one must read as zero runs.
    """
    rows = warehouse.query(sql.render("read_copy", central=central), {"tenant_id": state.tenant_id})
    if not in_copy(state):
        return [f"{state.tenant_id} is {state.status} but has a copied profile"] if rows else []
    if len(rows) != 1:
        return [f"{state.tenant_id}: {len(rows)} latest profile rows instead of one"]
    row, plan = rows[0], _plan(plans, state)
    limits = (plan.daily_pipeline_limit, plan.monthly_pipeline_limit, plan.concurrent_pipeline_limit)
    expected: dict[str, Any] = {
        "company_name": state.company_name,
        "admin_email": state.admin_email,
        "profile_status": state.status,
        "plan_name": plan.name,
        "subscription_status": transitions.subscription_status(state.status),
        "daily_limit": limits[0],
        "monthly_limit": limits[1],
        "concurrent_limit": limits[2],
        "quota_daily_limit": limits[0],
        "quota_monthly_limit": limits[1],
        "quota_concurrent_limit": limits[2],
    }
    differences = [
        f"{state.tenant_id}.{name}: copy {row[name]!r}, Firestore {value!r}" for name, value in expected.items() if row[name] != value
    ]
    copied_day = row["usage_date"]
    if copied_day is None:
        return [*differences, f"{state.tenant_id}: no quota row copied"]
    recorded = state.quota.usage_date if state.quota else None
    if recorded is not None and copied_day.isoformat() < recorded:
        return [*differences, f"{state.tenant_id}: latest copied quota day {copied_day} is older than Firestore's {recorded}"]
    for name, value in usage_columns(state, copied_day).items():
        if row[name] != value:
            differences.append(f"{state.tenant_id}.{name} on {copied_day}: copy {row[name]!r}, Firestore {value!r}")
    return differences
