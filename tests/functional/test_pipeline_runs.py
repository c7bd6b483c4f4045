"""Pipeline runs through the real app: admission against each plan, the executor's reports, leases, UTC windows, plans."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from functions.local import LocalPlatform
from schemas.http import PipelineRunRequest
from shared import sql
from shared.bootstrap import build_embedded_services
from shared.config import Settings
from shared.domain.errors import QuotaExceeded, TenantSuspended
from shared.domain.tenant import TenantState
from shared.handlers.analytics_copy import tenant_copy_differences
from shared.handlers.pipeline_runs import PipelinePath, admit_pipeline_run
from shared.handlers.sweep import sweep_expired
from shared.handlers.tenant_store import load_tenant
from shared.handlers.warehouse_setup import bootstrap_warehouse
from shared.services import PIPELINE_RUNS, TENANTS, Services
from tests.conftest import SEED_REQUEST, fast_settings, onboard_seed, operator_client
from tests.functional.billing_support import billing_message, post_billing, view_row
from tests.pipeline_support import active_tenant, report

RUN = "/api/v1/pipelines/run/{tenant}/gcp/cost/billing"
RESULTS = "/api/v1/pipelines/results"
PLANS = {"STARTER": (6, 180, 3), "PROFESSIONAL": (25, 750, 5), "SCALE": (100, 3000, 10)}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """No local executor: the tests report each run themselves, as an executor would."""
    return fast_settings(tmp_path / "data", ONBOARDING_LOCAL_EXECUTOR="false")


def _admit(platform: Any, tenant: str, key: str, **kwargs: Any) -> Any:
    return platform.app.test_client().post(RUN.format(tenant=tenant), headers={"X-API-Key": key, **kwargs.pop("headers", {})}, **kwargs)


def _report(client: FlaskClient, tenant: str, run_id: str, status: str, event_id: str | None = None) -> dict[str, Any]:
    body = {
        "event_id": event_id or f"{run_id}.{status}",
        "pipeline_logging_id": run_id,
        "tenant_id": tenant,
        "status": status,
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    response = client.post(RESULTS, json=body)
    assert response.status_code == 200, response.get_json()
    result: dict[str, Any] = response.get_json()
    return result


def _usage_rows(services: Services, tenant: str) -> list[dict[str, Any]]:
    rows = services.warehouse.query(
        f"SELECT * FROM `{services.central}.tenant_usage_quotas_latest` WHERE tenant_id = @tenant_id ORDER BY usage_date",
        {"tenant_id": tenant},
    )
    return rows


def _seconds_to_midnight(moment: datetime) -> float:
    midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), UTC)
    return (midnight - moment).total_seconds()


@pytest.mark.parametrize("plan", list(PLANS))
def test_each_plan_is_admitted_exactly_up_to_its_daily_limit_then_refused_naming_daily(
    plan: str, client: FlaskClient, platform: Any
) -> None:
    daily, monthly, concurrent = PLANS[plan]
    tenant = f"runs_{plan.lower()}"
    key = onboard_seed(client, {**SEED_REQUEST, "tenant_id": tenant, "subscription_plan": plan})["api_key"]
    assert platform.bus.wait_idle(30)

    admitted = []
    for index in range(daily):
        response = _admit(platform, tenant, key, json={"date": "2025-11-17", "parameters": {"run": index}})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert (body["tenant_id"], body["pipeline_id"], body["status"]) == (tenant, "gcp/cost/billing", "PENDING")
        assert body["quota"] == {
            "daily": {"used": index + 1, "limit": daily},
            "monthly": {"used": index + 1, "limit": monthly},
            "concurrent": {"used": 1, "limit": concurrent},
        }
        admitted.append(body["pipeline_logging_id"])
        assert _report(client, tenant, body["pipeline_logging_id"], "SUCCEEDED")["status"] == "SUCCEEDED"

    before = datetime.now(UTC)
    refused = _admit(platform, tenant, key)
    after = datetime.now(UTC)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "QUOTA_EXCEEDED" and refused.get_json()["error"]["field"] == "daily"
    assert _seconds_to_midnight(after) - 1 <= int(refused.headers["Retry-After"]) <= _seconds_to_midnight(before) + 1
    assert len(set(admitted)) == daily

    # The usage row agrees with what was admitted (and onboarding's validation run, counted but not charged).
    [row] = _usage_rows(platform.services, tenant)
    assert row["usage_date"] == datetime.now(UTC).date()
    assert {name: row[name] for name in ("pipelines_run_today", "pipelines_succeeded_today", "pipelines_failed_today")} == {
        "pipelines_run_today": daily + 1,
        "pipelines_succeeded_today": daily + 1,
        "pipelines_failed_today": 0,
    }
    assert (row["pipelines_run_month"], row["platform_runs_today"], row["platform_runs_month"]) == (daily + 1, 1, 1)
    assert (row["concurrent_pipelines_running"], row["max_concurrent_reached"]) == (0, 1)
    assert (row["daily_limit"], row["monthly_limit"], row["concurrent_limit"]) == (daily, monthly, concurrent)
    overview = platform.app.test_client().get(f"/api/v1/tenants/{tenant}/overview", headers={"X-API-Key": key}).get_json()
    assert overview["quota_status"] == "EXCEEDED" and overview["pipelines_run_today"] == daily + 1
    view = view_row(platform.services, tenant)
    assert {**view, "daily_usage_percent": float(view["daily_usage_percent"])} == {
        k: v for k, v in overview.items() if k != "schema_version"
    }
    state = load_tenant(platform.services, tenant)
    assert state is not None and tenant_copy_differences(platform.services, state) == []


def test_an_idempotency_key_admits_once_and_refuses_another_request(client: FlaskClient, platform: Any) -> None:
    key = onboard_seed(client)["api_key"]
    first = _admit(platform, "customer_123", key, headers={"Idempotency-Key": "nightly-2025-11-17"}, json={"date": "2025-11-17"})
    again = _admit(platform, "customer_123", key, headers={"Idempotency-Key": "nightly-2025-11-17"}, json={"date": "2025-11-17"})
    assert first.status_code == again.status_code == 200 and first.get_json() == again.get_json()
    other = _admit(platform, "customer_123", key, headers={"Idempotency-Key": "nightly-2025-11-17"}, json={"date": "2025-11-18"})
    assert other.status_code == 422 and other.get_json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    state = load_tenant(platform.services, "customer_123")
    assert state is not None and state.usage_on(datetime.now(UTC).date()).charged_today == 1 and len(state.running) == 1


def test_callers_paths_and_a_suspended_tenant_get_clear_refusals(client: FlaskClient, platform: Any, anonymous: FlaskClient) -> None:
    key = onboard_seed(client)["api_key"]
    other = onboard_seed(client, {**SEED_REQUEST, "tenant_id": "other_tenant"})["api_key"]
    assert anonymous.post(RUN.format(tenant="customer_123")).status_code == 401
    assert _admit(platform, "customer_123", other).status_code == 403
    assert client.post(RUN.format(tenant="customer_123")).status_code == 403  # an operator: the route is the tenant's
    for path, field in (
        ("/api/v1/pipelines/run/customer_123/gcp/cost/-x", "template"),
        ("/api/v1/pipelines/run/customer_123/g%C3%A9/cost/x", "provider"),
        ("/api/v1/pipelines/run/customer_123/gcp/" + "d" * 51 + "/x", "domain"),
        ("/api/v1/pipelines/run/ab/gcp/cost/x", "tenant_id"),
    ):
        refused = anonymous.post(path, headers={"X-API-Key": key})
        assert (refused.status_code, refused.get_json()["error"]["field"]) == (422, field), path
    bad_body = _admit(platform, "customer_123", key, json={"date": "yesterday"})
    assert bad_body.status_code == 422 and bad_body.get_json()["error"]["field"] == "date"

    post_billing(client, billing_message("evt-susp", "customer_123", "payment_failed", 1))
    assert platform.bus.wait_idle(30)
    suspended = _admit(platform, "customer_123", key)
    assert (suspended.status_code, suspended.get_json()["error"]["code"]) == (403, "TENANT_SUSPENDED")
    state = load_tenant(platform.services, "customer_123")
    assert state is not None and state.usage_on(datetime.now(UTC).date()).charged_today == 0


def test_reports_apply_once_in_any_order_over_http_and_the_results_topic(client: FlaskClient, platform: Any) -> None:
    key = onboard_seed(client)["api_key"]
    first, second = (_admit(platform, "customer_123", key).get_json()["pipeline_logging_id"] for _ in range(2))

    assert _report(client, "customer_123", first, "SUCCEEDED")["outcome"] == "applied"
    late = _report(client, "customer_123", first, "RUNNING")  # arrives after its SUCCEEDED
    assert (late["status"], late["outcome"]) == ("SUCCEEDED", "ignored")
    assert _report(client, "customer_123", first, "SUCCEEDED")["outcome"] == "ignored"  # a duplicate
    assert _report(client, "customer_123", first, "FAILED", "other-id")["status"] == "SUCCEEDED"
    unknown = client.post(RESULTS, json={**_body(second), "pipeline_logging_id": "no-such-run"})
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "RUN_NOT_FOUND"
    foreign = client.post(RESULTS, json={**_body(second), "tenant_id": "other_tenant"})
    assert foreign.status_code == 404

    # Through Pub/Sub: at least once, so the same report twice.
    topic = platform.services.settings.topics.pipeline_run_results
    for _ in range(2):
        platform.services.bus.publish(topic, _json(_body(second, "FAILED", reason="exit code 3")), {"tenant_id": "customer_123"})
    assert platform.bus.wait_idle(30)
    run = platform.services.documents.get(PIPELINE_RUNS, second)
    assert run is not None and (run["status"], run["reason"]) == ("FAILED", "exit code 3") and "lease_until" not in run
    state = load_tenant(platform.services, "customer_123")
    assert state is not None and state.running == {}
    usage = state.usage_on(datetime.now(UTC).date())
    assert (usage.pipelines_run, usage.pipelines_succeeded, usage.pipelines_failed) == (3, 2, 1)
    assert tenant_copy_differences(platform.services, state) == []


def _body(run_id: str, status: str = "SUCCEEDED", reason: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": f"{run_id}.{status}.topic",
        "pipeline_logging_id": run_id,
        "tenant_id": "customer_123",
        "status": status,
        "occurred_at": "2026-01-01T00:00:00Z",
    }
    if reason is not None:
        body["reason"] = reason
    return body


def _json(body: dict[str, Any]) -> bytes:
    import json

    return json.dumps(body).encode()


def test_a_plan_change_from_billing_changes_the_limits_at_once(client: FlaskClient, platform: Any) -> None:
    key = onboard_seed(client)["api_key"]  # PROFESSIONAL: 25 a day
    for _ in range(7):
        run_id = _admit(platform, "customer_123", key).get_json()["pipeline_logging_id"]
        _report(client, "customer_123", run_id, "SUCCEEDED")
    post_billing(client, billing_message("evt-down", "customer_123", "plan_changed", 1, new_plan="STARTER"))
    assert platform.bus.wait_idle(30)
    refused = _admit(platform, "customer_123", key)  # 7 already today: above STARTER's 6
    assert (refused.status_code, refused.get_json()["error"]["field"]) == (429, "daily")
    post_billing(client, billing_message("evt-up", "customer_123", "plan_changed", 2, new_plan="SCALE"))
    assert platform.bus.wait_idle(30)
    again = _admit(platform, "customer_123", key)
    assert again.status_code == 200 and again.get_json()["quota"]["daily"] == {"used": 8, "limit": 100}


# ---------------------------------------------------------------- an injected clock: leases and UTC windows


@dataclass
class Clock:
    """A clock the test moves."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[Services, Clock]]:
    """Embedded services on a clock the test sets, with a 60-second lease."""
    clock = Clock(datetime(2026, 1, 31, 23, 59, 30, tzinfo=UTC))
    services = build_embedded_services(fast_settings(tmp_path / "data", ONBOARDING_RUN_LEASE_SECONDS="60"))
    services.clock = clock
    bootstrap_warehouse(services)
    yield services, clock
    services.close()


def _admit_direct(services: Services, tenant: str, key: str) -> str:
    return admit_pipeline_run(services, PipelinePath(tenant, "gcp", "cost", "billing"), key, PipelineRunRequest()).pipeline_logging_id


def _state(services: Services, tenant: str) -> TenantState:
    raw = services.documents.get(TENANTS, tenant)
    assert raw is not None
    return TenantState.model_validate(raw)


def test_a_run_with_no_report_within_its_lease_fails_timed_out_and_frees_its_slot(clocked: tuple[Services, Clock]) -> None:
    services, clock = clocked
    clock.now = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    key = active_tenant(services.documents, "lease_tenant", "STARTER", clock.now)
    held = [_admit_direct(services, "lease_tenant", key) for _ in range(3)]
    with pytest.raises(QuotaExceeded) as full:
        _admit_direct(services, "lease_tenant", key)
    assert (full.value.limit, full.value.retry_after) == ("concurrent", 30)
    clock.now += timedelta(seconds=45)
    report(services, "lease_tenant", held[0], "RUNNING")  # a sign of life renews its lease
    clock.now += timedelta(seconds=20)  # the other two are past their lease; the first is not

    fresh = _admit_direct(services, "lease_tenant", key)  # lazily: admission times them out first
    assert {run: services.documents.get(PIPELINE_RUNS, run)["status"] for run in held} == {  # type: ignore[index]
        held[0]: "RUNNING",
        held[1]: "FAILED",
        held[2]: "FAILED",
    }
    assert services.documents.get(PIPELINE_RUNS, held[1])["reason"] == "TIMED_OUT"  # type: ignore[index]
    assert set(_state(services, "lease_tenant").running) == {held[0], fresh}

    clock.now += timedelta(seconds=61)  # and by the sweeper, with no admission at all
    assert sweep_expired(services).timed_out_runs == 2
    state = _state(services, "lease_tenant")
    usage = state.usage_on(clock.now.date())
    assert state.running == {} and (usage.pipelines_run, usage.pipelines_failed) == (4, 4)
    assert report(services, "lease_tenant", fresh, "SUCCEEDED") == "FAILED"  # too late: the run stays as it ended
    latest = _usage_rows(services, "lease_tenant")[-1]
    assert (latest["pipelines_failed_today"], latest["concurrent_pipelines_running"], latest["max_concurrent_reached"]) == (4, 0, 3)


def test_the_daily_and_monthly_windows_roll_over_at_the_utc_boundary_with_no_job(clocked: tuple[Services, Clock]) -> None:
    services, clock = clocked  # 2026-01-31 23:59:30 UTC
    key = active_tenant(services.documents, "window_tenant", "STARTER", clock.now)
    for _ in range(6):
        report(services, "window_tenant", _admit_direct(services, "window_tenant", key))
    with pytest.raises(QuotaExceeded) as refused:
        _admit_direct(services, "window_tenant", key)
    assert (refused.value.limit, refused.value.retry_after) == ("daily", 30)

    clock.now = datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC)  # a new day and a new month
    _admit_direct(services, "window_tenant", key)
    usage = _state(services, "window_tenant").usage_on(clock.now.date())
    assert (usage.usage_date, usage.pipelines_run, usage.pipelines_run_month) == ("2026-02-01", 1, 1)
    rows = {row["usage_date"]: row for row in _usage_rows(services, "window_tenant")}
    assert (rows[date(2026, 1, 31)]["pipelines_run_today"], rows[date(2026, 1, 31)]["pipelines_run_month"]) == (6, 6)
    assert (rows[date(2026, 2, 1)]["pipelines_run_today"], rows[date(2026, 2, 1)]["pipelines_run_month"]) == (1, 1)

    clock.now = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)  # the next day of the same month: the month accumulates
    _admit_direct(services, "window_tenant", key)
    assert _state(services, "window_tenant").usage_on(clock.now.date()).pipelines_run_month == 2
    assert _usage_rows(services, "window_tenant")[-1]["pipelines_run_month"] == 2


def test_the_monthly_limit_refuses_until_the_first_of_next_month(clocked: tuple[Services, Clock]) -> None:
    services, clock = clocked
    clock.now = datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    key = active_tenant(services.documents, "month_tenant", "STARTER", clock.now)
    state = _state(services, "month_tenant")
    usage = state.usage_on(clock.now.date()).model_copy(update={"pipelines_run_month": 180})
    services.documents.set(TENANTS, "month_tenant", state.model_copy(update={"quota": usage}).model_dump())
    with pytest.raises(QuotaExceeded) as refused:
        _admit_direct(services, "month_tenant", key)
    assert (refused.value.limit, refused.value.retry_after) == ("monthly", 7200)


def test_a_suspended_tenant_is_refused_before_its_quota_is_looked_at(clocked: tuple[Services, Clock]) -> None:
    services, clock = clocked
    key = active_tenant(services.documents, "susp_tenant", "STARTER", clock.now)
    services.documents.set(TENANTS, "susp_tenant", _state(services, "susp_tenant").model_copy(update={"status": "SUSPENDED"}).model_dump())
    with pytest.raises(TenantSuspended):
        _admit_direct(services, "susp_tenant", key)


# ---------------------------------------------------------------- the local executor


def test_make_run_completes_each_admitted_run_with_the_local_executor(tmp_path: Path) -> None:
    local = LocalPlatform(build_embedded_services(fast_settings(tmp_path / "data", ONBOARDING_LOCAL_EXECUTOR_SECONDS="0.05")), 3600)
    local.start()
    try:
        key = onboard_seed(operator_client(local.app))["api_key"]
        run_id = _admit(local, "customer_123", key).get_json()["pipeline_logging_id"]
        deadline = time.monotonic() + 30
        while (local.services.documents.get(PIPELINE_RUNS, run_id) or {}).get("status") != "SUCCEEDED":
            assert time.monotonic() < deadline, local.services.documents.get(PIPELINE_RUNS, run_id)
            time.sleep(0.05)
        assert local.bus.wait_idle(30)
        overview = local.app.test_client().get("/api/v1/tenants/customer_123/overview", headers={"X-API-Key": key}).get_json()
        assert (overview["pipelines_run_today"], overview["pipelines_succeeded_today"]) == (2, 2)
    finally:
        local.stop()


# ---------------------------------------------------------------- an existing deployment's table


def test_the_bootstrap_migrates_an_existing_usage_table_and_recreates_the_tenants_views(client: FlaskClient, platform: Any) -> None:
    services: Services = platform.services
    onboard_seed(client)
    assert platform.bus.wait_idle(30)
    central = services.central
    # The table as first deployed: its three run columns under their old names, one row in it.
    services.warehouse.execute(f"DROP VIEW IF EXISTS `{central}.tenant_usage_quotas_latest`")
    services.warehouse.execute(f"DROP TABLE `{central}.tenant_usage_quotas`")
    services.warehouse.execute(
        f"CREATE TABLE `{central}.tenant_usage_quotas` (tenant_id STRING NOT NULL, usage_date DATE NOT NULL, "
        "daily_limit INT64 NOT NULL, monthly_limit INT64 NOT NULL, concurrent_limit INT64 NOT NULL, pipelines_run INT64 NOT NULL, "
        "pipelines_succeeded INT64 NOT NULL, pipelines_failed INT64 NOT NULL, updated_at TIMESTAMP NOT NULL, version INT64 NOT NULL, "
        "recorded_at TIMESTAMP NOT NULL)"
    )
    now = datetime.now(UTC)
    old_row = {
        "tenant_id": "customer_123",
        "usage_date": now.date(),
        "daily_limit": 25,
        "monthly_limit": 750,
        "concurrent_limit": 5,
        "pipelines_run": 1,
        "pipelines_succeeded": 1,
        "pipelines_failed": 0,
        "updated_at": now,
        "version": 1,
        "recorded_at": now,
    }
    services.warehouse.append_rows(central, "tenant_usage_quotas", [old_row])

    bootstrap_warehouse(services)

    columns = services.warehouse.table_columns(central, "tenant_usage_quotas")
    assert columns is not None and "pipelines_run" not in columns
    assert {"pipelines_run_today", "pipelines_run_month", "concurrent_pipelines_running", "max_concurrent_reached"} <= set(columns)
    [row] = _usage_rows(services, "customer_123")
    assert (row["pipelines_run_today"], row["pipelines_succeeded_today"], row["pipelines_run_month"]) == (1, 1, None)
    view = view_row(services, "customer_123")  # the tenant's view, created again on the new columns
    assert (view["pipelines_run_today"], view["quota_status"], float(view["daily_usage_percent"])) == (1, "AVAILABLE", 4.0)
    assert bootstrap_warehouse(services) == list(sql.declared_columns(sql.render("central_tables", central=central)))  # idempotent
