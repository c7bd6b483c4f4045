"""The onboarding story through the real app and the embedded bus."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from shared import sql
from shared.services import Services
from tests.conftest import SEED_OVERVIEW, SEED_REQUEST, onboard_seed


def test_dry_run_reports_eight_named_checks_and_creates_nothing(client: FlaskClient, platform: Any) -> None:
    response = client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
    body = response.get_json()
    assert response.status_code == 200
    assert [check["name"] for check in body["checks"]] == [
        "tenant_id_format",
        "email_format",
        "gcp_credentials",
        "bigquery_connectivity",
        "subscription_plan",
        "tenant_existence",
        "central_tables",
        "dryrun_config",
    ]
    assert body["status"] == "SUCCESS"
    assert body["validation_summary"] == {"total_checks": 8, "passed": 8, "failed": 0, "all_passed": True}
    assert body["message"] == "Dry-run validation passed: 8/8 checks passed"
    services: Services = platform.services
    assert services.documents.get("validations", body["validation_id"])["fingerprint"]
    assert services.documents.get("tenants", "customer_123") is None
    assert not services.warehouse.dataset_exists("customer_123")


def test_dry_run_is_published_on_the_validations_topic(client: FlaskClient, platform: Any) -> None:
    body = client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST).get_json()
    published = platform.bus.messages(platform.services.settings.topics.validations)
    assert any(body["validation_id"].encode() in data for data, _ in published)


def test_malformed_values_are_failed_checks_with_counts_that_add_up(client: FlaskClient) -> None:
    bad = {**SEED_REQUEST, "tenant_id": "a b", "admin_email": "not-an-email", "subscription_plan": "GOLD"}
    body = client.post("/api/v1/tenants/dryrun", json=bad).get_json()
    failed = {check["name"] for check in body["checks"] if not check["passed"]}
    assert failed == {"tenant_id_format", "email_format", "subscription_plan", "tenant_existence"}
    summary = body["validation_summary"]
    assert summary["total_checks"] == summary["passed"] + summary["failed"] == 8
    assert body["status"] == "FAILED" and body["ready_for_onboarding"] is False


def test_seed_session_ends_active_with_the_expected_overview(client: FlaskClient, platform: Any) -> None:
    created = onboard_seed(client)
    assert created["status"] == "ACTIVE"
    assert created["tables_created"] == ["onboarding_validation_test"]
    assert created["views_created"] == ["tenant_comprehensive_view"]
    assert created["dataset_created"] is True
    assert created["api_key"].startswith("customer_123_api_") and len(created["api_key"]) == len("customer_123_api_") + 16

    status = client.get("/api/v1/tenants/customer_123").get_json()
    assert status["status"] == "ACTIVE"
    assert {step["name"]: step["status"] for step in status["steps"]} == dict.fromkeys(("subscription", "quota", "dataset", "view"), "DONE")

    overview = client.get("/api/v1/tenants/customer_123/overview", headers={"X-API-Key": created["api_key"]}).get_json()
    assert overview == {"schema_version": "1", **SEED_OVERVIEW}


def test_onboard_without_wait_answers_202_then_the_tenant_becomes_active(client: FlaskClient, platform: Any) -> None:
    client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
    response = client.post("/api/v1/tenants/onboard", json=SEED_REQUEST)
    body = response.get_json()
    assert response.status_code == 202
    assert body["status"] == "PROVISIONING" and body["status_url"] == "/api/v1/tenants/customer_123"
    assert response.headers["Location"] == body["status_url"]
    assert platform.bus.wait_idle(20)
    assert client.get("/api/v1/tenants/customer_123").get_json()["status"] == "ACTIVE"


def test_api_key_is_stored_hashed_and_encrypted_never_in_clear(client: FlaskClient, platform: Any) -> None:
    created = onboard_seed(client)
    key = created["api_key"]
    assert platform.bus.wait_idle(30)
    stored = [path for path in platform.services.settings.data_dir.rglob("*") if path.is_file()]
    assert {path.name for path in stored} >= {"documents.db", "events.db", "warehouse.duckdb"}, stored
    for path in stored:  # the databases and their write-ahead logs, where the latest writes sit
        raw = path.read_bytes()
        assert key.encode() not in raw and key.split("_api_")[1].encode() not in raw, f"the API key is readable in {path.name}"
    hashed = platform.services.documents.find("api_keys", "tenant_id", "customer_123")
    assert len(hashed) == 1 and hashed[0]["ciphertext"]


def test_overview_requires_the_tenants_own_key(client: FlaskClient) -> None:
    first = onboard_seed(client)
    other = onboard_seed(client, {**SEED_REQUEST, "tenant_id": "other_tenant"})
    url = "/api/v1/tenants/customer_123/overview"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"X-API-Key": "customer_123_api_AAAAAAAAAAAAAAAA"}).status_code == 401
    forbidden = client.get(url, headers={"X-API-Key": other["api_key"]})
    assert forbidden.status_code == 403 and forbidden.get_json()["error"]["code"] == "FORBIDDEN"
    assert client.get(url, headers={"X-API-Key": first["api_key"]}).status_code == 200


def test_idempotency_key_replays_the_first_response(client: FlaskClient, platform: Any) -> None:
    client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
    headers = {"Idempotency-Key": "req-42"}
    first = client.post("/api/v1/tenants/onboard", json=SEED_REQUEST, headers=headers)
    again = client.post("/api/v1/tenants/onboard", json=SEED_REQUEST, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.get_json() == again.get_json()
    different = client.post("/api/v1/tenants/onboard", json={**SEED_REQUEST, "company_name": "Other"}, headers=headers)
    assert different.status_code == 422 and different.get_json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert client.post("/api/v1/tenants/onboard", json=SEED_REQUEST).status_code == 409


def test_every_plan_provisions_its_limits(client: FlaskClient, platform: Any) -> None:
    services: Services = platform.services
    for plan, tenant in (("STARTER", "starter_co"), ("SCALE", "scale_co")):
        onboard_seed(client, {**SEED_REQUEST, "tenant_id": tenant, "subscription_plan": plan})
        row = services.warehouse.query(sql.render("read_comprehensive_view", dataset=tenant))[0]
        expected = services.plans.get(plan)
        assert expected is not None
        assert (row["subscription_daily_limit"], row["subscription_monthly_limit"], row["subscription_concurrent_limit"]) == (
            expected.daily_pipeline_limit,
            expected.monthly_pipeline_limit,
            expected.concurrent_pipeline_limit,
        )


def test_restart_loses_no_tenant_validation_or_queued_event(settings: Any) -> None:
    from functions.local import LocalPlatform
    from shared.bootstrap import build_embedded_services

    first = LocalPlatform(build_embedded_services(settings), reconcile_every=3600)
    first.start()
    first.bus.stop()  # workers stop: the steps stay queued
    client = first.app.test_client()
    validation = client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST).get_json()["validation_id"]
    assert client.post("/api/v1/tenants/onboard", json=SEED_REQUEST).status_code == 202
    first.stop()

    second = LocalPlatform(build_embedded_services(settings), reconcile_every=3600)
    second.start()
    try:
        assert second.services.documents.get("validations", validation) is not None
        assert second.bus.wait_idle(20)
        status = second.app.test_client().get("/api/v1/tenants/customer_123").get_json()
        assert status["status"] == "ACTIVE"
    finally:
        second.stop()


def test_an_id_differing_only_by_case_from_an_existing_tenant_is_refused(client: FlaskClient, platform: Any) -> None:
    twin = {**SEED_REQUEST, "tenant_id": "Customer_123"}
    assert client.post("/api/v1/tenants/dryrun", json=twin).get_json()["ready_for_onboarding"]  # before the tenant exists
    onboard_seed(client)

    dry = client.post("/api/v1/tenants/dryrun", json=twin).get_json()
    existence = next(check for check in dry["checks"] if check["name"] == "tenant_existence")
    assert not dry["ready_for_onboarding"] and not existence["passed"]
    assert existence["detail"] == "tenant id 'Customer_123' differs only by case from the existing tenant 'customer_123'"
    # The earlier passed dry run is still valid, so the onboarding itself must refuse.
    refused = client.post("/api/v1/tenants/onboard", json=twin)
    assert refused.status_code == 409
    assert refused.get_json()["error"] == {
        "code": "TENANT_EXISTS",
        "field": "tenant_id",
        "message": "tenant id 'Customer_123' differs only by case from the existing tenant 'customer_123'",
    }
    assert platform.services.documents.get("tenants", "Customer_123") is None
    assert platform.services.documents.find("api_keys", "tenant_id", "Customer_123") == []


def test_a_dryrun_config_that_did_not_load_fails_its_check_and_the_dry_run(services: Services) -> None:
    from dataclasses import replace

    from schemas.http import TenantRequest
    from shared.domain.dryrun_config import DryRunSetup
    from shared.handlers.dryrun import run_dry_run

    broken = replace(services, dryrun=DryRunSetup(config=None, problem="dryrun.yml does not load: ScannerError: bad indent"))
    response = run_dry_run(TenantRequest.model_validate(SEED_REQUEST), broken)
    checks = {check.name: check for check in response.checks}
    assert response.status == "FAILED" and not response.ready_for_onboarding
    assert not checks["dryrun_config"].passed and checks["dryrun_config"].detail == broken.dryrun.problem
    assert all(check.passed for name, check in checks.items() if name != "dryrun_config")
