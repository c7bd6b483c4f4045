"""Firestore is the system of record; the central BigQuery tables are an append-only copy that must equal it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient

from shared import sql
from shared.domain.tenant import TenantState
from shared.handlers.analytics_copy import PROFILES, SUBSCRIPTIONS, copy_rows, plan_of, tenant_copy_differences
from shared.handlers.pipeline_runs import record_pipeline_run
from shared.handlers.tenant_store import load_tenant
from shared.ports import Row, Warehouse
from shared.services import Services
from tests.conftest import SEED_OVERVIEW, SEED_REQUEST, onboard_seed
from tests.functional.billing_support import billing_message, post_billing, view_row

TENANT = SEED_REQUEST["tenant_id"]


def _settle(platform: Any) -> None:
    assert platform.bus.wait_idle(30), "the bus did not drain"


def _overview(client: FlaskClient, api_key: str, tenant_id: str = TENANT) -> dict[str, Any]:
    response = client.get(f"/api/v1/tenants/{tenant_id}/overview", headers={"X-API-Key": api_key})
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    body.pop("schema_version")
    return body


def _view(services: Services, tenant_id: str = TENANT) -> dict[str, Any]:
    row = view_row(services, tenant_id)
    return {**row, "daily_usage_percent": float(row["daily_usage_percent"])}


def _state(services: Services, tenant_id: str = TENANT) -> TenantState:
    state = load_tenant(services, tenant_id)
    assert state is not None
    return state


class _Recording(Warehouse):
    """A warehouse that records every statement and append on their way to the real one."""

    def __init__(self, inner: Warehouse) -> None:
        self.inner = inner
        self.statements: list[str] = []
        self.appends: list[str] = []

    def ping(self) -> None:
        self.inner.ping()

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        return self.inner.query(sql, params)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self.statements.append(sql)
        self.inner.execute(sql, params)

    def append_rows(self, dataset: str, table: str, rows: list[Row]) -> None:
        self.appends.append(f"{dataset}.{table}")
        self.inner.append_rows(dataset, table, rows)

    def dataset_exists(self, dataset: str) -> bool:
        return self.inner.dataset_exists(dataset)

    def create_dataset(self, dataset: str) -> bool:
        return self.inner.create_dataset(dataset)

    def delete_dataset(self, dataset: str) -> None:
        self.inner.delete_dataset(dataset)

    def table_columns(self, dataset: str, table: str) -> dict[str, str] | None:
        return self.inner.table_columns(dataset, table)


def test_the_seed_overview_comes_from_firestore_and_equals_the_view_row(client: FlaskClient, platform: Any) -> None:
    created = onboard_seed(client)
    services: Services = platform.services
    recording = _Recording(services.warehouse)
    services.warehouse = recording

    overview = _overview(client, created["api_key"])

    assert overview == SEED_OVERVIEW
    assert recording.statements == [] and recording.appends == []  # no BigQuery job per request
    assert _view(services) == overview


def test_overview_and_view_agree_through_runs_plan_changes_and_suspension(client: FlaskClient, platform: Any) -> None:
    created = onboard_seed(client)
    _settle(platform)
    services: Services = platform.services
    for index in range(5):
        record_pipeline_run(services, TENANT, f"{TENANT}.nightly.{index}", "nightly", "FAILED" if index == 4 else "SUCCEEDED")
    record_pipeline_run(services, TENANT, f"{TENANT}.nightly.0", "nightly", "SUCCEEDED")  # the same run again counts once
    assert _overview(client, created["api_key"]) == _view(services)
    assert _view(services)["pipelines_run_today"] == 6 and _view(services)["pipelines_failed_today"] == 1

    # STARTER allows 6 of the tenant's own runs a day; onboarding's validation run is usage, not charged.
    post_billing(client, billing_message("evt-down", TENANT, "plan_changed", 1, new_plan="STARTER"))
    _settle(platform)
    downgraded = _overview(client, created["api_key"])
    assert (downgraded["quota_status"], downgraded["daily_usage_percent"]) == ("AVAILABLE", 100.0)
    assert downgraded == _view(services)
    record_pipeline_run(services, TENANT, f"{TENANT}.nightly.5", "nightly", "SUCCEEDED")
    downgraded = _overview(client, created["api_key"])
    assert (downgraded["quota_status"], downgraded["daily_usage_percent"]) == ("EXCEEDED", 116.7)
    assert downgraded == _view(services)

    post_billing(client, billing_message("evt-fail", TENANT, "payment_failed", 2))
    _settle(platform)
    suspended = _view(services)
    assert (suspended["tenant_status"], suspended["subscription_status"]) == ("SUSPENDED", "SUSPENDED")
    post_billing(client, billing_message("evt-back", TENANT, "payment_recovered", 3))
    _settle(platform)
    assert _overview(client, created["api_key"]) == _view(services)
    assert tenant_copy_differences(services, _state(services)) == []


def test_the_copy_equals_firestore_for_every_tenant(client: FlaskClient, platform: Any) -> None:
    services: Services = platform.services
    tenants = {f"copy_{plan.lower()}": plan for plan in ("STARTER", "PROFESSIONAL", "SCALE")}
    for tenant_id, plan in tenants.items():
        onboard_seed(client, {**SEED_REQUEST, "tenant_id": tenant_id, "subscription_plan": plan})
    _settle(platform)
    post_billing(client, billing_message("evt-up", "copy_starter", "plan_changed", 1, new_plan="SCALE"))
    post_billing(client, billing_message("evt-susp", "copy_professional", "payment_failed", 1))
    post_billing(client, billing_message("evt-cancel", "copy_scale", "subscription_cancelled", 1))
    _settle(platform)

    differences = {tenant_id: tenant_copy_differences(services, _state(services, tenant_id)) for tenant_id in tenants}
    assert differences == {tenant_id: [] for tenant_id in tenants}
    assert [_state(services, tenant_id).status for tenant_id in tenants] == ["ACTIVE", "SUSPENDED", "OFFBOARDED"]


def test_the_check_sees_a_copy_that_differs_and_the_latest_version_wins(client: FlaskClient, platform: Any) -> None:
    onboard_seed(client)
    _settle(platform)
    services: Services = platform.services
    state = _state(services)
    plan = plan_of(state, services)
    now = services.clock()

    # An older revision appended late (a slow writer) changes nothing: the view keeps the newest row.
    stale = copy_rows(state.model_copy(update={"revision": state.revision - 1, "company_name": "Old Name"}), plan, now.date(), now)
    services.warehouse.append_rows(services.central, PROFILES, stale[PROFILES])
    assert tenant_copy_differences(services, state) == []
    assert _view(services)["company_name"] == "Acme Corporation"

    # A newer row that Firestore never had is a difference the check reports.
    scale = services.plans.get("SCALE")
    assert scale is not None
    drifted = copy_rows(state.model_copy(update={"revision": state.revision + 1}), scale, now.date(), now + timedelta(seconds=1))
    services.warehouse.append_rows(services.central, SUBSCRIPTIONS, drifted[SUBSCRIPTIONS])
    differences = tenant_copy_differences(services, state)
    assert any(".plan_name: copy 'SCALE', Firestore 'PROFESSIONAL'" in line for line in differences), differences
    assert any(".daily_limit: copy 100, Firestore 25" in line for line in differences), differences


def test_onboarding_and_billing_run_no_dml_on_the_central_tables(client: FlaskClient, platform: Any) -> None:
    services: Services = platform.services
    recording = _Recording(services.warehouse)
    services.warehouse = recording
    onboard_seed(client)
    _settle(platform)
    for index, (kind, plan) in enumerate((("plan_changed", "SCALE"), ("payment_failed", None), ("payment_recovered", None))):
        post_billing(client, billing_message(f"evt-{index}", TENANT, kind, index + 1, new_plan=plan))
        _settle(platform)

    central = f"`{services.central}."
    assert [statement for statement in recording.statements if central in statement and "CREATE OR REPLACE VIEW" not in statement] == []
    # The only statements are the tenant's own DDL (and its validation row); the view reads the copy.
    assert all(f"`{TENANT}." in statement for statement in recording.statements), recording.statements
    tables = ("tenant_pipeline_runs", "tenant_profiles", "tenant_subscriptions", "tenant_usage_quotas")
    central_appends = sorted({target for target in recording.appends if target.startswith(f"{services.central}.")})
    assert central_appends == [f"{services.central}.{table}" for table in tables]
    # Outside the central tables, only the tenant's validation row is appended (once, into its new table).
    assert [target for target in recording.appends if not target.startswith(f"{services.central}.")] == [
        f"{TENANT}.onboarding_validation_test"
    ]
    counts = services.warehouse.query(sql.render("count_tenant_rows", central=services.central), {"tenant_id": TENANT})[0]
    assert counts == {"profiles": 1, "subscriptions": 1, "quotas": 1, "validation_runs": 1}
