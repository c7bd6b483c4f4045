"""Onboarding finds its dry run by an exact key, and an Idempotency-Key replays the key only while it should."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient

from schemas.http import TenantRequest
from shared.domain.identifiers import request_fingerprint
from shared.ports import Transaction
from shared.services import Services, iso, utcnow
from tests.conftest import SEED_REQUEST
from tests.functional.billing_support import billing_message, post_billing

TENANT = SEED_REQUEST["tenant_id"]
PRIOR_DRY_RUNS = 3000


def test_finding3_a_fresh_dry_run_is_found_after_thousands_of_earlier_ones(client: FlaskClient, platform: Any) -> None:
    services: Services = platform.services
    fingerprint = request_fingerprint(TenantRequest.model_validate(SEED_REQUEST))
    long_ago = utcnow() - timedelta(days=2)

    def earlier_dry_runs(txn: Transaction) -> None:
        for index in range(PRIOR_DRY_RUNS):
            validation_id = uuid.uuid4().hex
            txn.set(
                "validations",
                validation_id,
                {
                    "validation_id": validation_id,
                    "fingerprint": fingerprint,
                    "tenant_id": TENANT,
                    "ready_for_onboarding": index % 2 == 0,
                    "expires_at": iso(long_ago + timedelta(minutes=15)),
                    "created_at": iso(long_ago),
                },
            )

    services.documents.run_transaction(earlier_dry_runs)
    assert len(services.documents.find("validations", "fingerprint", fingerprint, limit=PRIOR_DRY_RUNS + 10)) == PRIOR_DRY_RUNS
    assert client.post("/api/v1/tenants/onboard", json=SEED_REQUEST).status_code == 412, "expired dry runs never count"

    assert client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST).get_json()["ready_for_onboarding"]
    response = client.post("/api/v1/tenants/onboard", json=SEED_REQUEST)
    assert response.status_code == 202, response.get_json()


def test_finding3_the_latest_dry_run_decides_not_any_earlier_one(client: FlaskClient) -> None:
    """A passed dry run followed by a failed one for the same values: the failed one is the latest, onboarding waits."""
    assert client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST).get_json()["ready_for_onboarding"]
    twin = {**SEED_REQUEST, "tenant_id": "Customer_123"}
    assert client.post("/api/v1/tenants/dryrun", json=twin).get_json()["ready_for_onboarding"]
    assert client.post("/api/v1/tenants/onboard", json=twin).status_code == 202
    assert not client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST).get_json()["ready_for_onboarding"]  # a case twin now
    refused = client.post("/api/v1/tenants/onboard", json=SEED_REQUEST)
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (412, "DRYRUN_REQUIRED")


def _onboard_with_key(client: FlaskClient, key: str, wait: int = 20) -> Any:
    return client.post(f"/api/v1/tenants/onboard?wait={wait}", json=SEED_REQUEST, headers={"Idempotency-Key": key})


def test_finding4_idempotency_records_expire_and_never_replay_a_key_of_a_suspended_tenant(client: FlaskClient, platform: Any) -> None:
    services: Services = platform.services
    assert client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST).get_json()["ready_for_onboarding"]
    first = _onboard_with_key(client, "onboard-acme-1")
    assert first.status_code == 201, first.get_json()
    assert platform.bus.wait_idle(30)
    replay = _onboard_with_key(client, "onboard-acme-1", wait=0)
    assert (replay.status_code, replay.get_json()["api_key"]) == (202, first.get_json()["api_key"]), "a replay within the TTL"

    real_clock = services.clock
    services.clock = lambda: real_clock() + timedelta(hours=24, seconds=1)
    try:
        expired = _onboard_with_key(client, "onboard-acme-1", wait=0)
        assert expired.status_code == 409, expired.get_json()
        assert expired.get_json()["error"]["code"] == "TENANT_EXISTS"
        assert "api_key" not in expired.get_data(as_text=True)
    finally:
        services.clock = real_clock

    post_billing(client, billing_message("evt-suspend", TENANT, "payment_failed", 1))
    assert platform.bus.wait_idle(30)
    assert client.get(f"/api/v1/tenants/{TENANT}").get_json()["status"] == "SUSPENDED"
    suspended = _onboard_with_key(client, "onboard-acme-1", wait=0)
    assert (suspended.status_code, suspended.get_json()["error"]["code"]) == (409, "TENANT_EXISTS")
    assert first.get_json()["api_key"] not in suspended.get_data(as_text=True)
