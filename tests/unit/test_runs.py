"""Admission, reports and leases as pure changes of the state document."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.domain import runs
from shared.domain.errors import QuotaExceeded
from shared.domain.plans import Plan
from shared.domain.tenant import QuotaUsage, StepState, TenantState, record_run

STARTER = Plan(name="STARTER", display_name="Starter", daily_pipeline_limit=6, monthly_pipeline_limit=180, concurrent_pipeline_limit=3)
NOON = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


def _state(**update: object) -> TenantState:
    state = TenantState(
        tenant_id="acme",
        company_name="Acme",
        admin_email="a@acme.example",
        subscription_plan="STARTER",
        status="ACTIVE",
        steps={"view": StepState(status="DONE")},
        api_key_hash="h",
        request_fingerprint="f",
        created_at="2026-05-01T00:00:00.000Z",
        updated_at="2026-05-01T00:00:00.000Z",
    )
    return state.model_copy(update=update)


def test_a_later_day_of_the_month_keeps_the_month_and_a_later_month_starts_from_zero() -> None:
    usage = QuotaUsage(usage_date="2026-05-20", usage_month="2026-05", pipelines_run=4, pipelines_run_month=9, platform_runs_month=1)
    assert usage.on(date(2026, 5, 21)).model_dump(include={"pipelines_run", "pipelines_run_month", "platform_runs_month"}) == {
        "pipelines_run": 0,
        "pipelines_run_month": 9,
        "platform_runs_month": 1,
    }
    assert (usage.on(date(2026, 6, 1)).pipelines_run_month, usage.on(date(2026, 6, 1)).usage_month) == (0, "2026-06")
    older = QuotaUsage(usage_date="2026-05-20", pipelines_run=2)  # written before months were counted
    assert older.on(date(2026, 5, 22)).pipelines_run_month == 2


def test_the_platforms_own_run_is_usage_but_not_charged() -> None:
    state = record_run(_state(), "SUCCEEDED", NOON.date(), platform=True)
    usage = state.usage_on(NOON.date())
    assert (usage.pipelines_run, usage.charged_today, usage.charged_month) == (1, 0, 0)
    for index in range(6):
        state = runs.finish(runs.admit(state, STARTER, f"r{index}", NOON, LEASE), f"r{index}", "SUCCEEDED", NOON.date())
    with pytest.raises(QuotaExceeded) as refused:
        runs.admit(state, STARTER, "r7", NOON, LEASE)
    assert (refused.value.limit, refused.value.retry_after) == ("daily", 12 * 3600)


@pytest.mark.parametrize(
    ("charged_today", "charged_month", "running", "named"),
    [(6, 180, 3, "monthly"), (6, 10, 3, "daily"), (2, 10, 3, "concurrent"), (2, 10, 2, None)],
)
def test_the_limit_named_is_the_one_whose_wait_is_longest(charged_today: int, charged_month: int, running: int, named: str | None) -> None:
    usage = QuotaUsage(usage_date="2026-05-20", usage_month="2026-05", pipelines_run=charged_today, pipelines_run_month=charged_month)
    leases = {
        f"r{i}": runs.RunLease(lease_until="2026-05-20T12:05:00.000Z", admitted_at="2026-05-20T11:55:00.000Z") for i in range(running)
    }
    refused = runs.refusal(_state(quota=usage, running=leases), STARTER, NOON)
    assert (refused.limit if refused else None) == named
    if named == "concurrent":
        assert refused is not None and refused.retry_after == 30
    if named == "monthly":
        assert refused is not None and refused.retry_after == (datetime(2026, 6, 1, tzinfo=UTC) - NOON).total_seconds()


def test_a_finished_run_stays_finished_whatever_arrives_after() -> None:
    assert runs.next_status("PENDING", "SUCCEEDED") == "SUCCEEDED"
    assert runs.next_status("PENDING", "RUNNING") == "RUNNING"
    assert runs.next_status("RUNNING", "RUNNING") == "RUNNING"
    assert runs.next_status("SUCCEEDED", "RUNNING") is None
    assert runs.next_status("FAILED", "SUCCEEDED") is None


def test_leases_that_ended_free_their_slots_and_count_as_failed() -> None:
    state = runs.admit(runs.admit(_state(), STARTER, "a", NOON, LEASE), STARTER, "b", NOON + timedelta(minutes=5), LEASE)
    expired_state, expired = runs.expire_leases(state, NOON + LEASE)
    assert [run.run_id for run in expired] == ["a"] and set(expired_state.running) == {"b"}
    assert expired_state.usage_on(NOON.date()).pipelines_failed == 1
    assert runs.finish(expired_state, "a", "SUCCEEDED", NOON.date()) == expired_state  # no slot held: nothing counted twice
