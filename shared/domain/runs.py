"""Pipeline runs against the tenant's quota: admission, results and leases, as pure changes of the state document.

Admission charges the tenant's own runs against its plan's daily and monthly limits (UTC
days and months, rolled over by the date alone: no job resets a counter) and counts the
runs admitted and not finished against its concurrent limit. A run holds its slot until its
executor reports it finished, or until its lease ends with no report (FAILED, TIMED_OUT).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from shared.domain.errors import QuotaExceeded, TenantNotReady, TenantSuspended
from shared.domain.plans import Plan
from shared.domain.tenant import QuotaUsage, RunLease, TenantState

LimitName = Literal["daily", "monthly", "concurrent"]
RunStatusName = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]
ReportedStatus = Literal["RUNNING", "SUCCEEDED", "FAILED"]
TERMINAL: frozenset[str] = frozenset({"SUCCEEDED", "FAILED"})
TIMED_OUT = "TIMED_OUT"
# A slot frees when a run finishes, which nobody can foretell: a client refused for concurrency
# is told to come back after this long, or when the oldest lease ends if that is sooner.
CONCURRENT_RETRY_SECONDS = 30


@dataclass(frozen=True)
class QuotaFigure:
    """One limit after an admission: how much is used and the plan's limit."""

    used: int
    limit: int


@dataclass(frozen=True)
class QuotaSnapshot:
    """The tenant's three limits as admission counts them."""

    daily: QuotaFigure
    monthly: QuotaFigure
    concurrent: QuotaFigure


@dataclass(frozen=True)
class Expired:
    """A run whose lease ended with no report: FAILED, TIMED_OUT, its slot freed."""

    run_id: str
    lease: RunLease


def _moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def snapshot(state: TenantState, plan: Plan, day: date) -> QuotaSnapshot:
    """Used and limit of each quota as the state document records them on `day`."""
    usage = state.usage_on(day)
    return QuotaSnapshot(
        daily=QuotaFigure(usage.charged_today, plan.daily_pipeline_limit),
        monthly=QuotaFigure(usage.charged_month, plan.monthly_pipeline_limit),
        concurrent=QuotaFigure(len(state.running), plan.concurrent_pipeline_limit),
    )


def expire_leases(state: TenantState, now: datetime) -> tuple[TenantState, list[Expired]]:
    """Every run whose lease ended by `now` finishes FAILED (TIMED_OUT) on `now`'s day and frees its slot."""
    expired = [Expired(run_id, lease) for run_id, lease in sorted(state.running.items()) if _moment(lease.lease_until) <= now]
    if not expired:
        return state, []
    running = {run_id: lease for run_id, lease in state.running.items() if _moment(lease.lease_until) > now}
    usage = state.usage_on(now.date())
    usage = usage.model_copy(update={"pipelines_failed": usage.pipelines_failed + len(expired)})
    return state.model_copy(update={"running": running, "quota": usage}), expired


def seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds from `now` until `moment`, at least 1 (a Retry-After of 0 invites a busy loop)."""
    return max(1, math.ceil((moment - now).total_seconds()))


def _next_day(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)


def _next_month(now: datetime) -> datetime:
    day = now.astimezone(UTC).date()
    first = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return datetime.combine(first, datetime.min.time(), UTC)


def refusal(state: TenantState, plan: Plan, now: datetime) -> QuotaExceeded | None:
    """The limit the next run would break, with when to try again; None when it may run.

    The monthly limit is named first (its wait is the longest), then the daily one: a run
    refused for either gains nothing from a freed slot.
    """
    quota = snapshot(state, plan, now.date())
    if quota.monthly.used >= quota.monthly.limit:
        return QuotaExceeded("monthly", quota.monthly.used, quota.monthly.limit, seconds_until(_next_month(now), now))
    if quota.daily.used >= quota.daily.limit:
        return QuotaExceeded("daily", quota.daily.used, quota.daily.limit, seconds_until(_next_day(now), now))
    if quota.concurrent.used >= quota.concurrent.limit:
        first_end = min(_moment(lease.lease_until) for lease in state.running.values())
        wait = min(CONCURRENT_RETRY_SECONDS, seconds_until(first_end, now))
        return QuotaExceeded("concurrent", quota.concurrent.used, quota.concurrent.limit, wait)
    return None


def admit(state: TenantState, plan: Plan, run_id: str, now: datetime, lease: timedelta) -> TenantState:
    """Charge one run to the tenant and give it a slot until `now + lease` (the caller bumps the revision).

    Raises TenantSuspended, TenantNotReady or QuotaExceeded instead; expired leases must have
    been applied first (`expire_leases`), so a slot they held counts as free.
    """
    if state.status == "SUSPENDED":
        raise TenantSuspended(f"tenant '{state.tenant_id}' is suspended until its payment is recovered", field="tenant_id")
    if state.status != "ACTIVE":
        raise TenantNotReady(f"tenant '{state.tenant_id}' is {state.status}: it cannot run pipelines", field="tenant_id")
    refused = refusal(state, plan, now)
    if refused is not None:
        raise refused
    usage = state.usage_on(now.date())
    running = {**state.running, run_id: RunLease(lease_until=_stamp(now + lease), admitted_at=_stamp(now))}
    charged = usage.model_copy(
        update={
            "pipelines_run": usage.pipelines_run + 1,
            "pipelines_run_month": usage.pipelines_run_month + 1,
            "max_concurrent_reached": max(usage.max_concurrent_reached, len(running)),
        }
    )
    return state.model_copy(update={"running": running, "quota": charged})


def finish(state: TenantState, run_id: str, status: Literal["SUCCEEDED", "FAILED"], day: date) -> TenantState:
    """A run finished: its slot is freed and the day's succeeded or failed count grows (once: only while it holds a slot)."""
    if run_id not in state.running:
        return state
    running = {other: lease for other, lease in state.running.items() if other != run_id}
    usage: QuotaUsage = state.usage_on(day)
    field = "pipelines_succeeded" if status == "SUCCEEDED" else "pipelines_failed"
    counted = usage.model_copy(update={field: getattr(usage, field) + 1})
    return state.model_copy(update={"running": running, "quota": counted})


def renew(state: TenantState, run_id: str, now: datetime, lease: timedelta) -> TenantState:
    """A RUNNING report: the run's lease starts again from `now` (a report is a sign of life)."""
    current = state.running.get(run_id)
    if current is None:
        return state
    running = {**state.running, run_id: current.model_copy(update={"lease_until": _stamp(now + lease)})}
    return state.model_copy(update={"running": running})


def next_status(current: RunStatusName, reported: ReportedStatus) -> RunStatusName | None:
    """The run's status after a report, or None when the report changes nothing.

    A finished run stays as it finished (a duplicate, a RUNNING that arrives after its
    SUCCEEDED, a result after the lease ran out); RUNNING after RUNNING only renews the lease.
    """
    if current in TERMINAL:
        return None
    if reported == "RUNNING":
        return "RUNNING"
    return reported


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
