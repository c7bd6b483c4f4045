"""A warehouse outage dead-letters the steps and fails the tenant; retry re-drives only what failed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.local import LocalPlatform, as_cloud_event
from functions.topology import entry_point
from shared.adapters.embedded.sqlite_event_bus import ReceivedMessage, SqliteEventBus
from shared.adapters.guarded import unwrap
from shared.bootstrap import build_embedded_services
from shared.handlers.dead_letters import handle_step_dead_letter
from shared.ports import BackendUnavailable
from tests.conftest import SEED_REQUEST, fast_settings

API = "/api/v1/tenants"


@pytest.fixture
def faulty_platform(tmp_path: Path) -> Iterator[LocalPlatform]:
    """The local platform with fault injection on (every rate zero): tests start and end outages."""
    settings = fast_settings(tmp_path / "data", ONBOARDING_FAULTS="delay_ms=0", ONBOARDING_CALL_ATTEMPTS="2")
    platform = LocalPlatform(build_embedded_services(settings), reconcile_every=3600)
    platform.start()
    yield platform
    platform.stop()


def _status_when_settled(client: Any, tenant_id: str = "customer_123", timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = client.get(f"{API}/{tenant_id}").get_json()
        if status["status"] != "PROVISIONING" or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def _onboard_during_outage(platform: LocalPlatform, target: str) -> Any:
    client = platform.app.test_client()
    assert client.post(f"{API}/dryrun", json=SEED_REQUEST).get_json()["ready_for_onboarding"]
    platform.bus.stop()
    assert client.post(f"{API}/onboard", json=SEED_REQUEST).status_code == 202
    assert platform.services.faults is not None
    platform.services.faults.start_outage(target)
    platform.bus.start()
    return client


def test_a_warehouse_outage_fails_the_tenant_and_retry_after_it_makes_it_active(faulty_platform: LocalPlatform) -> None:
    client = _onboard_during_outage(faulty_platform, "warehouse")
    max_attempts = faulty_platform.services.settings.event_bus.max_attempts

    assert faulty_platform.bus.wait_idle(30)  # every step has given up or finished, not only the first
    failed = _status_when_settled(client)
    assert failed["status"] == "FAILED"
    failed_steps = {step["name"]: step for step in failed["steps"] if step["status"] == "FAILED"}
    # Subscription and quota are recorded in Firestore, their system of record: a warehouse
    # outage fails only the step that needs BigQuery, and the view waits for it.
    assert set(failed_steps) == {"dataset"}
    assert {step["name"]: step["status"] for step in failed["steps"] if step["name"] not in failed_steps} == {
        "subscription": "DONE",
        "quota": "DONE",
        "view": "WAITING",
    }
    assert all("outage" in step["error"] for step in failed_steps.values())
    assert failed["error"].startswith("step ") and "outage" in failed["error"]

    letters = client.get("/api/v1/dead-letters").get_json()
    assert letters["count"] == 1
    assert {(letter["step"], letter["attempts"], letter["status"]) for letter in letters["dead_letters"]} == {
        (step, max_attempts, "OPEN") for step in failed_steps
    }
    assert all("outage" in letter["reason"] and letter["tenant_id"] == "customer_123" for letter in letters["dead_letters"])

    faulty_platform.services.faults.end_outage("warehouse")  # type: ignore[union-attr]
    retried = client.post(f"{API}/customer_123/retry")
    assert retried.status_code == 202
    assert sorted(retried.get_json()["retried_steps"]) == sorted(failed_steps)

    active = _status_when_settled(client)
    assert active["status"] == "ACTIVE" and active["error"] is None
    state = faulty_platform.services.documents.get("tenants", "customer_123")
    assert state is not None and {name: step["generation"] for name, step in state["steps"].items()} == {
        "subscription": 1,
        "quota": 1,
        "dataset": 2,
        "view": 1,
    }
    assert client.get("/api/v1/dead-letters?status=OPEN").get_json()["count"] == 0
    assert client.get("/api/v1/dead-letters?status=RETRIED").get_json()["count"] == 1
    again = client.post(f"{API}/customer_123/retry")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "TENANT_NOT_FAILED"
    assert client.post(f"{API}/nobody_here/retry").status_code == 404


def test_retry_re_drives_only_the_failed_step(faulty_platform: LocalPlatform) -> None:
    client = _onboard_during_outage(faulty_platform, "warehouse.create_dataset")
    assert faulty_platform.bus.wait_idle(30)
    failed = _status_when_settled(client)
    assert {step["name"]: step["status"] for step in failed["steps"]} == {
        "subscription": "DONE",
        "quota": "DONE",
        "dataset": "FAILED",
        "view": "WAITING",
    }
    done_attempts = {step["name"]: step["attempts"] for step in failed["steps"] if step["status"] == "DONE"}

    faulty_platform.services.faults.end_outage("warehouse.create_dataset")  # type: ignore[union-attr]
    assert client.post(f"{API}/customer_123/retry").get_json()["retried_steps"] == ["dataset"]
    active = _status_when_settled(client)
    assert active["status"] == "ACTIVE"
    assert {step["name"]: step["attempts"] for step in active["steps"] if step["name"] in done_attempts} == done_attempts


def test_a_message_that_can_never_be_valid_is_dead_lettered_at_once_and_recorded(faulty_platform: LocalPlatform) -> None:
    topic = faulty_platform.services.settings.topics.step("dataset")
    faulty_platform.bus.publish(topic, b'{"schema_version": "1", "tenant_id": 42}', {"tenant_id": "customer_123"})
    assert faulty_platform.bus.wait_idle(10)
    letters = faulty_platform.app.test_client().get("/api/v1/dead-letters").get_json()
    assert letters["count"] == 1
    [letter] = letters["dead_letters"]
    assert letter["attempts"] == 1 and letter["source"] == topic
    assert letter["reason"].startswith("invalid message")
    assert faulty_platform.bus.stats.failed == 0  # acknowledged at once, never retried
    assert len(faulty_platform.bus.messages(f"{topic}-dead-letter")) == 1


def test_dead_letters_reject_an_unknown_status_filter(faulty_platform: LocalPlatform) -> None:
    response = faulty_platform.app.test_client().get("/api/v1/dead-letters?status=LOST")
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "status"


def test_a_pubsub_dead_letter_without_a_reason_is_recorded_with_the_steps_last_error(faulty_platform: LocalPlatform) -> None:
    """Pub/Sub forwards a dead letter with no reason; the failed attempts wrote one on the step."""
    client = faulty_platform.app.test_client()
    assert client.post(f"{API}/dryrun", json=SEED_REQUEST).get_json()["ready_for_onboarding"]
    faulty_platform.bus.stop()  # the test delivers by hand, as Pub/Sub pushes would
    assert client.post(f"{API}/onboard", json=SEED_REQUEST).status_code == 202
    services = faulty_platform.services
    bus = unwrap(services.bus)
    assert isinstance(bus, SqliteEventBus) and services.faults is not None
    [(data, attributes)] = bus.messages(services.settings.topics.step("dataset"))
    services.faults.start_outage("warehouse")
    with pytest.raises(BackendUnavailable):
        message = ReceivedMessage("m-1", services.settings.topics.step("dataset"), "push", data, attributes, 0.0, 5)
        entry_point("step_dataset")(as_cloud_event(message))

    forwarded = {**attributes, "CloudPubSubDeadLetterSourceDeliveryCount": "5"}  # no dead_letter_reason, as from Pub/Sub
    assert handle_step_dead_letter(data, "delivery attempts exhausted", services, forwarded) == "failed"

    [letter] = client.get("/api/v1/dead-letters").get_json()["dead_letters"]
    assert letter["reason"].startswith("delivery attempts exhausted; last error: BackendUnavailable") and "outage" in letter["reason"]
    assert (letter["step"], letter["attempts"]) == ("dataset", 5)
    status = client.get(f"{API}/customer_123").get_json()
    assert status["status"] == "FAILED" and "outage" in status["error"]
