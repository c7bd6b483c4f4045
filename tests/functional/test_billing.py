"""Billing events through the real HTTP app and the embedded bus: each transition, refusals, order, duplicates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient

from functions.local import wire_event_functions
from schemas.events import TenantLifecycleEvent
from shared import sql
from shared.adapters.embedded.sqlite_event_bus import SqliteEventBus
from shared.adapters.guarded import unwrap
from shared.entrypoints.runtime import install_services
from shared.handlers.pipeline_runs import record_pipeline_run
from shared.services import Services, utcnow
from tests.conftest import SEED_REQUEST, onboard_seed
from tests.functional.billing_support import api_key_status, billing_message, lifecycle_events, post_billing, trail, view_row

TENANT = SEED_REQUEST["tenant_id"]


def _settle(platform: Any) -> None:
    assert platform.bus.wait_idle(30), "the bus did not drain"


def _onboard(client: FlaskClient, platform: Any) -> dict[str, Any]:
    """Onboard the seed tenant and let the view step publish tenant.activated before billing starts.

    `?wait` answers once the state document says ACTIVE; the activation event follows it.
    """
    created = onboard_seed(client)
    _settle(platform)
    return created


def _status(client: FlaskClient, tenant_id: str = TENANT) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/v1/tenants/{tenant_id}").get_json()
    return body


def _overview(client: FlaskClient, api_key: str, tenant_id: str = TENANT) -> Any:
    return client.get(f"/api/v1/tenants/{tenant_id}/overview", headers={"X-API-Key": api_key})


def test_onboarding_announces_tenant_activated_once(client: FlaskClient, platform: Any) -> None:
    _onboard(client, platform)
    _settle(platform)
    events = lifecycle_events(platform, TENANT)
    assert [event["type"] for event in events] == ["tenant.activated"]
    activated = TenantLifecycleEvent.model_validate(events[0])
    assert (activated.status, activated.previous_status, activated.subscription_plan) == ("ACTIVE", "PROVISIONING", "PROFESSIONAL")


def test_upgrade_changes_subscription_quota_state_and_view(client: FlaskClient, platform: Any) -> None:
    created = _onboard(client, platform)
    accepted = post_billing(client, billing_message("evt-up-1", TENANT, "plan_changed", 1, new_plan="SCALE"))
    assert accepted == {
        "schema_version": "1",
        "event_id": "evt-up-1",
        "tenant_id": TENANT,
        "status": "ACCEPTED",
        "events_url": f"/api/v1/tenants/{TENANT}/events",
    }
    _settle(platform)

    services: Services = platform.services
    assert _status(client)["subscription_plan"] == "SCALE"
    overview = _overview(client, created["api_key"]).get_json()
    assert (overview["plan_name"], overview["subscription_daily_limit"], overview["subscription_monthly_limit"]) == ("SCALE", 100, 3000)
    assert overview["subscription_concurrent_limit"] == 10 and overview["daily_usage_percent"] == 1.0
    latest_quotas = f"`{services.central}.tenant_usage_quotas_latest`"
    quota = services.warehouse.query(
        f"SELECT daily_limit, monthly_limit, concurrent_limit FROM {latest_quotas} WHERE tenant_id = @tenant_id",
        {"tenant_id": TENANT},
    )
    assert quota == [{"daily_limit": 100, "monthly_limit": 3000, "concurrent_limit": 10}]
    [record] = trail(client, TENANT)
    assert (record["outcome"], record["plan_before"], record["plan_after"], record["lifecycle_event"]) == (
        "applied",
        "PROFESSIONAL",
        "SCALE",
        "tenant.plan_changed",
    )
    changed = lifecycle_events(platform, TENANT)[-1]
    assert (changed["type"], changed["previous_plan"], changed["subscription_plan"], changed["cause_event_id"]) == (
        "tenant.plan_changed",
        "PROFESSIONAL",
        "SCALE",
        "evt-up-1",
    )


def test_downgrade_below_current_usage_is_applied_and_shows_exceeded(client: FlaskClient, platform: Any) -> None:
    created = _onboard(client, platform)
    services: Services = platform.services
    for index in range(7):  # eight runs today with the onboarding validation run; STARTER allows six
        record_pipeline_run(services, TENANT, f"{TENANT}.nightly.{index}", "nightly", "SUCCEEDED")
    post_billing(client, billing_message("evt-down-1", TENANT, "plan_changed", 1, new_plan="STARTER"))
    _settle(platform)

    overview = _overview(client, created["api_key"]).get_json()
    assert overview["plan_name"] == "STARTER" and overview["subscription_daily_limit"] == 6
    assert overview["pipelines_run_today"] == 8
    assert overview["quota_status"] == "EXCEEDED"
    assert overview["daily_usage_percent"] == 133.3
    assert trail(client, TENANT)[0]["outcome"] == "applied"


def test_payment_failed_suspends_and_recovery_resumes_with_the_same_key(client: FlaskClient, platform: Any) -> None:
    created = _onboard(client, platform)
    services: Services = platform.services
    post_billing(client, billing_message("evt-fail-1", TENANT, "payment_failed", 1))
    _settle(platform)

    assert _status(client)["status"] == "SUSPENDED"
    refused = _overview(client, created["api_key"])
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "TENANT_SUSPENDED"
    row = view_row(services, TENANT)
    assert (row["tenant_status"], row["subscription_status"]) == ("SUSPENDED", "SUSPENDED")
    assert api_key_status(services, TENANT) == ["ACTIVE"]

    post_billing(client, billing_message("evt-recover-1", TENANT, "payment_recovered", 2))
    _settle(platform)
    assert _status(client)["status"] == "ACTIVE"
    overview = _overview(client, created["api_key"])
    assert overview.status_code == 200
    assert (overview.get_json()["tenant_status"], overview.get_json()["subscription_status"]) == ("ACTIVE", "ACTIVE")
    assert [event["type"] for event in lifecycle_events(platform, TENANT)] == ["tenant.activated", "tenant.suspended", "tenant.resumed"]
    assert [(record["event_id"], record["status_before"], record["status_after"]) for record in trail(client, TENANT)] == [
        ("evt-fail-1", "ACTIVE", "SUSPENDED"),
        ("evt-recover-1", "SUSPENDED", "ACTIVE"),
    ]


def test_a_late_payment_failed_after_recovery_is_recorded_and_ignored(client: FlaskClient, platform: Any) -> None:
    created = _onboard(client, platform)
    post_billing(client, billing_message("evt-fail-1", TENANT, "payment_failed", 10))
    _settle(platform)
    post_billing(client, billing_message("evt-recover-1", TENANT, "payment_recovered", 30))
    _settle(platform)
    post_billing(client, billing_message("evt-fail-late", TENANT, "payment_failed", 20))  # dated before the recovery
    _settle(platform)

    assert _status(client)["status"] == "ACTIVE"
    assert _overview(client, created["api_key"]).status_code == 200
    records = {record["event_id"]: record for record in trail(client, TENANT)}
    late = records["evt-fail-late"]
    assert (late["outcome"], late["status_before"], late["status_after"]) == ("ignored", "ACTIVE", "ACTIVE")
    assert "older than the last payment event" in late["detail"]
    assert [record["event_id"] for record in trail(client, TENANT)] == ["evt-fail-1", "evt-fail-late", "evt-recover-1"]
    assert [event["type"] for event in lifecycle_events(platform, TENANT)] == ["tenant.activated", "tenant.suspended", "tenant.resumed"]


def test_a_plan_change_is_not_shadowed_by_a_newer_payment_event(client: FlaskClient, platform: Any) -> None:
    _onboard(client, platform)
    post_billing(client, billing_message("evt-fail-9", TENANT, "payment_failed", 9))
    _settle(platform)
    post_billing(client, billing_message("evt-plan-5", TENANT, "plan_changed", 5, new_plan="SCALE"))
    _settle(platform)
    status = _status(client)
    assert (status["status"], status["subscription_plan"]) == ("SUSPENDED", "SCALE")


def test_duplicates_are_applied_once(client: FlaskClient, platform: Any) -> None:
    _onboard(client, platform)
    message = billing_message("evt-dup-1", TENANT, "payment_failed", 1)
    for _ in range(3):
        post_billing(client, message)
    _settle(platform)
    platform.bus.publish(platform.services.settings.topics.billing, b"", {})  # stray empty message, dead-lettered
    _settle(platform)

    assert [record["event_id"] for record in trail(client, TENANT)] == ["evt-dup-1"]
    suspended = [event["event_id"] for event in lifecycle_events(platform, TENANT) if event["type"] == "tenant.suspended"]
    assert set(suspended) == {"evt-dup-1.tenant.suspended"}
    state = platform.services.documents.get("tenants", TENANT)
    assert state["status"] == "SUSPENDED"
    marker = platform.services.documents.get("processed_events", "billing:evt-dup-1")
    assert marker["outcome"] == "applied" and marker["effects_done"] is True


def test_cancellation_offboards_revokes_the_key_and_keeps_data_until_purged(client: FlaskClient, platform: Any) -> None:
    services: Services = platform.services
    client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
    first = client.post("/api/v1/tenants/onboard?wait=20", json=SEED_REQUEST, headers={"Idempotency-Key": "first-onboarding"})
    created = first.get_json()
    assert first.status_code == 201 and len(services.documents.find("idempotency_keys", "tenant_id", TENANT)) == 1
    _settle(platform)
    post_billing(client, billing_message("evt-cancel-1", TENANT, "subscription_cancelled", 1))
    _settle(platform)

    assert _status(client)["status"] == "OFFBOARDED"
    assert api_key_status(services, TENANT) == ["REVOKED"]
    assert _overview(client, created["api_key"]).status_code == 401
    row = view_row(services, TENANT)
    assert (row["tenant_status"], row["subscription_status"]) == ("OFFBOARDED", "CANCELLED")
    assert services.warehouse.dataset_exists(TENANT)
    assert lifecycle_events(platform, TENANT)[-1]["type"] == "tenant.offboarded"

    dry = client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST).get_json()
    existence = next(check for check in dry["checks"] if check["name"] == "tenant_existence")
    assert existence["passed"] is False and "offboarded" in existence["detail"] and "purged" in existence["detail"]
    assert client.post("/api/v1/tenants/onboard", json=SEED_REQUEST).status_code in {409, 412}

    kept = client.post("/api/v1/tenants/purge-expired").get_json()
    assert (kept["purged"], kept["retained"], kept["retention_days"]) == ([], 1, 30)
    assert services.warehouse.dataset_exists(TENANT)

    real_clock = services.clock
    services.clock = lambda: utcnow() + timedelta(days=31)
    try:
        purged = client.post("/api/v1/tenants/purge-expired").get_json()
        assert (purged["purged"], purged["retained"]) == ([TENANT], 0)
        assert client.post("/api/v1/tenants/purge-expired").get_json()["purged"] == []
    finally:
        services.clock = real_clock
    assert not services.warehouse.dataset_exists(TENANT)
    counts = services.warehouse.query(sql.render("count_tenant_rows", central=services.central), {"tenant_id": TENANT})[0]
    assert set(counts.values()) == {0}
    assert client.get(f"/api/v1/tenants/{TENANT}").status_code == 404
    assert [record["type"] for record in trail(client, TENANT)] == ["subscription_cancelled", "tenant_purged"]

    assert services.documents.find("idempotency_keys", "tenant_id", TENANT) == [], "a replay must not hand out the revoked key"
    assert services.documents.get("tenant_ids", TENANT.lower()) is None, "the purge frees the id in every spelling"
    again = _onboard(client, platform)
    assert again["status"] == "ACTIVE" and again["api_key"] != created["api_key"]
    assert _overview(client, again["api_key"]).get_json()["pipelines_run_today"] == 1


def test_refused_transitions_are_recorded_once_and_not_retried(client: FlaskClient, platform: Any) -> None:
    _onboard(client, platform)
    post_billing(client, billing_message("evt-plan-gold", TENANT, "plan_changed", 1, new_plan="GOLD"))
    post_billing(client, billing_message("evt-cancel", TENANT, "subscription_cancelled", 2))
    _settle(platform)
    post_billing(client, billing_message("evt-resume", TENANT, "payment_recovered", 3))
    post_billing(client, billing_message("evt-plan-after", TENANT, "plan_changed", 4, new_plan="SCALE"))
    post_billing(client, billing_message("evt-cancel-again", TENANT, "subscription_cancelled", 5))
    _settle(platform)

    records = {record["event_id"]: record for record in trail(client, TENANT)}
    assert {event_id: record["outcome"] for event_id, record in records.items()} == {
        "evt-plan-gold": "refused",
        "evt-cancel": "applied",
        "evt-resume": "refused",
        "evt-plan-after": "refused",
        "evt-cancel-again": "ignored",
    }
    assert "unknown plan 'GOLD'" in records["evt-plan-gold"]["detail"]
    assert "OFFBOARDED" in records["evt-resume"]["detail"]
    status = _status(client)
    assert (status["status"], status["subscription_plan"]) == ("OFFBOARDED", "PROFESSIONAL")
    assert platform.bus.stats.snapshot().get("failed", 0) == 0, "refusals are decisions, never retried"
    assert platform.services.documents.find("dead_letters", "tenant_id", TENANT) == []


def test_unknown_tenants_and_malformed_messages_are_dead_lettered_with_a_reason(client: FlaskClient, platform: Any) -> None:
    services: Services = platform.services
    topic = services.settings.topics.billing
    post_billing(client, billing_message("evt-nobody", "nobody_here", "payment_failed", 1))
    services.bus.publish(topic, b"{not json", {})
    services.bus.publish(topic, b'{"event_id": "evt-bad-plan", "tenant_id": "x", "type": "payment_failed", "new_plan": "SCALE"}', {})
    _settle(platform)

    unknown = services.documents.get("dead_letters", "evt-nobody")
    assert unknown is not None and unknown["reason"] == "unknown tenant nobody_here" and unknown["tenant_id"] == "nobody_here"
    bad_plan = services.documents.get("dead_letters", "evt-bad-plan")
    assert bad_plan is not None and bad_plan["reason"].startswith("invalid message")
    not_json = services.documents.find("dead_letters", "payload_preview", "{not json")
    assert len(not_json) == 1 and not_json[0]["reason"].startswith("invalid message")
    assert platform.bus.stats.snapshot().get("failed", 0) == 0, "dead-lettered at once, never retried"
    assert client.get("/api/v1/tenants/nobody_here/events").status_code == 404


def test_http_refuses_a_malformed_billing_message_without_publishing(client: FlaskClient, platform: Any) -> None:
    bad = billing_message("evt-1", TENANT, "payment_failed", 1, new_plan="SCALE")
    response = client.post("/api/v1/billing/events", json=bad)
    assert response.status_code == 422 and "new_plan must be absent" in response.get_json()["error"]["message"]
    naive = {**billing_message("evt-2", TENANT, "payment_failed", 1), "occurred_at": "2026-03-01T09:00:00"}
    assert client.post("/api/v1/billing/events", json=naive).get_json()["error"]["field"] == "occurred_at"
    missing_plan = billing_message("evt-3", TENANT, "plan_changed", 1)
    assert client.post("/api/v1/billing/events", json=missing_plan).status_code == 422
    assert client.post("/api/v1/billing/events", data="nope", content_type="application/json").status_code == 400
    assert platform.bus.messages(platform.services.settings.topics.billing) == []


def test_events_for_a_tenant_still_provisioning_are_dead_lettered(services: Services) -> None:
    """No step function is subscribed here, so the tenant stays PROVISIONING while billing is delivered."""
    from functions.local import create_app

    install_services(services)
    try:
        bus = unwrap(services.bus)
        assert isinstance(bus, SqliteEventBus)
        wire_event_functions(services, bus, only={"billing_event"})
        client = create_app().test_client()
        assert client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST).get_json()["ready_for_onboarding"]
        assert client.post("/api/v1/tenants/onboard", json=SEED_REQUEST).status_code == 202
        post_billing(client, billing_message("evt-early", TENANT, "payment_failed", 1))
        while bus.deliver_one():
            pass
        dead = services.documents.get("dead_letters", "evt-early")
        assert dead is not None and "PROVISIONING" in dead["reason"]
        assert services.documents.get("tenants", TENANT)["status"] == "PROVISIONING"
        assert bus.pending_count() == 0
    finally:
        install_services(None)


def test_a_failure_after_the_decision_is_finished_by_the_redelivery(client: FlaskClient, platform: Any, monkeypatch: Any) -> None:
    """The warehouse fails once after the transaction committed: the retry must not re-decide, only finish."""
    from shared.handlers import billing as billing_handler
    from shared.ports import BackendUnavailable

    _onboard(client, platform)
    real_append_copy = billing_handler.append_copy
    failures: list[str] = []

    def flaky_append_copy(services: Services, state: Any) -> None:
        if not failures:
            failures.append(state.tenant_id)
            raise BackendUnavailable("warehouse timed out")
        real_append_copy(services, state)

    monkeypatch.setattr(billing_handler, "append_copy", flaky_append_copy)
    post_billing(client, billing_message("evt-flaky", TENANT, "payment_failed", 1))
    _settle(platform)

    assert failures == [TENANT]
    assert platform.bus.stats.snapshot()["failed"] == 1
    row = view_row(platform.services, TENANT)
    assert (row["tenant_status"], row["subscription_status"]) == ("SUSPENDED", "SUSPENDED")
    [record] = trail(client, TENANT)
    assert (record["outcome"], record["status_before"]) == ("applied", "ACTIVE")
    assert [event["event_id"] for event in lifecycle_events(platform, TENANT) if event["type"] == "tenant.suspended"] == [
        "evt-flaky.tenant.suspended"
    ]
    assert platform.services.documents.get("processed_events", "billing:evt-flaky")["effects_done"] is True
