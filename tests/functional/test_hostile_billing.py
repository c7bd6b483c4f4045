"""Hostile billing events: timestamps from the future and reused event ids never corrupt a tenant in silence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient

from shared.services import Services, utcnow
from tests.conftest import SEED_REQUEST, onboard_seed
from tests.functional.billing_support import billing_message, lifecycle_events, post_billing, trail

TENANT = SEED_REQUEST["tenant_id"]
OTHER = {**SEED_REQUEST, "tenant_id": "customer_456", "company_name": "Other Corporation"}


def _settle(platform: Any) -> None:
    assert platform.bus.wait_idle(30), "the bus did not drain"


def _stamp(moment: Any) -> str:
    return str(moment.isoformat().replace("+00:00", "Z"))


def _message(event_id: str, tenant_id: str, kind: str, occurred_at: str, source: str = "billing-test") -> dict[str, Any]:
    return {**billing_message(event_id, tenant_id, kind, 0), "occurred_at": occurred_at, "source": source}


def _dead_letters(services: Services, tenant_id: str) -> dict[str, dict[str, Any]]:
    return {str(letter["event_id"]): letter for letter in services.documents.find("dead_letters", "tenant_id", tenant_id)}


def _status(client: FlaskClient, tenant_id: str = TENANT) -> str:
    return str(client.get(f"/api/v1/tenants/{tenant_id}").get_json()["status"])


def test_finding1_an_event_from_the_future_is_refused_dead_lettered_and_audited(client: FlaskClient, platform: Any) -> None:
    services: Services = platform.services
    onboard_seed(client)
    _settle(platform)
    now = utcnow()
    services.clock = lambda: now  # the billing handler's clock, frozen

    post_billing(client, _message("evt-far-future", TENANT, "payment_failed", "9999-12-31T23:59:59Z"))
    post_billing(client, _message("evt-ahead", TENANT, "payment_failed", _stamp(now + timedelta(minutes=6))))
    _settle(platform)
    post_billing(client, _message("evt-far-future", TENANT, "payment_failed", "9999-12-31T23:59:59Z"))  # redelivered
    _settle(platform)
    assert _status(client) == "ACTIVE"

    post_billing(client, _message("evt-real-failure", TENANT, "payment_failed", _stamp(now - timedelta(minutes=1))))
    _settle(platform)
    assert _status(client) == "SUSPENDED"
    post_billing(client, _message("evt-within-skew", TENANT, "payment_recovered", _stamp(now + timedelta(minutes=4))))
    _settle(platform)
    assert _status(client) == "ACTIVE", "a real recovery after a refused future event applies"

    records = {record["event_id"]: record for record in trail(client, TENANT)}
    assert len(trail(client, TENANT)) == 4, "a redelivered refusal is recorded once"
    for event_id in ("evt-far-future", "evt-ahead"):
        assert records[event_id]["outcome"] == "refused"
        assert "in the future" in records[event_id]["detail"] and "300 s" in records[event_id]["detail"]
        assert records[event_id]["status_after"] == "ACTIVE"
    assert (records["evt-real-failure"]["outcome"], records["evt-within-skew"]["outcome"]) == ("applied", "applied")
    letters = _dead_letters(services, TENANT)
    assert set(letters) == {"evt-far-future", "evt-ahead"}
    assert all("in the future" in letter["reason"] for letter in letters.values())


def test_finding2_event_ids_are_deduped_per_tenant_and_source_and_a_reused_id_with_another_payload_is_dead_lettered(
    client: FlaskClient, platform: Any
) -> None:
    services: Services = platform.services
    onboard_seed(client)
    onboard_seed(client, OTHER)
    _settle(platform)

    post_billing(client, billing_message("evt-shared", TENANT, "payment_failed", 1))
    _settle(platform)
    post_billing(client, billing_message("evt-shared", OTHER["tenant_id"], "payment_failed", 1))
    _settle(platform)
    assert (_status(client), _status(client, OTHER["tenant_id"])) == ("SUSPENDED", "SUSPENDED"), "tenant B's event was not dropped"
    assert [record["event_id"] for record in trail(client, OTHER["tenant_id"])] == ["evt-shared"]
    suspensions = [event for event in lifecycle_events(platform) if event["type"] == "tenant.suspended"]
    assert {event["cause_event_id"] for event in suspensions} == {"evt-shared"}
    assert len({event["event_id"] for event in suspensions}) == 2, "downstream dedupe must not drop tenant B's announcement"

    post_billing(client, billing_message("evt-shared", TENANT, "payment_recovered", 2))  # same id, same source, other payload
    post_billing(client, billing_message("evt-shared", TENANT, "payment_failed", 1))  # an honest redelivery
    _settle(platform)
    assert _status(client) == "SUSPENDED"
    [conflict] = _dead_letters(services, TENANT).values()
    assert conflict["event_id"] == "evt-shared" and "different payload" in conflict["reason"], conflict
    assert "payment_recovered" in conflict["payload_preview"]
    assert [record["event_id"] for record in trail(client, TENANT)] == ["evt-shared"]

    post_billing(client, {**billing_message("evt-shared", TENANT, "payment_recovered", 2), "source": "billing-other"})
    _settle(platform)
    assert _status(client) == "ACTIVE", "the same id from another source is another event"
    sources = [(record["event_id"], record["source"]) for record in trail(client, TENANT)]
    assert sources == [("evt-shared", "billing-test"), ("evt-shared", "billing-other")]
    assert _dead_letters(services, OTHER["tenant_id"]) == {}
