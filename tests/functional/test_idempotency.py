"""Every event delivered twice, and in reversed order where the flow allows: nothing doubles."""

from __future__ import annotations

import io
import json
import time
from typing import Any

from functions.local import as_cloud_event, create_app
from functions.topology import entry_point
from shared import sql
from shared.adapters.embedded.sqlite_event_bus import ReceivedMessage, SqliteEventBus
from shared.adapters.guarded import unwrap
from shared.config import Settings
from shared.domain.tenant import PREREQUISITE_STEPS
from shared.services import Services
from tests.conftest import SEED_REQUEST, operator_client


def _messages(bus: SqliteEventBus, topic: str) -> list[ReceivedMessage]:
    return [
        ReceivedMessage(f"{topic}-{index}", topic, "manual", data, attributes, time.time(), 1)
        for index, (data, attributes) in enumerate(bus.messages(topic))
    ]


def _deliver(step: str, message: ReceivedMessage, times: int = 2) -> None:
    for _ in range(times):
        entry_point(f"step_{step}")(as_cloud_event(message))


def _counts(services: Services, tenant_id: str) -> dict[str, int]:
    counts = services.warehouse.query(sql.render("count_tenant_rows", central=services.central), {"tenant_id": tenant_id})[0]
    counts["validation_rows"] = services.warehouse.query(f"SELECT COUNT(*) AS n FROM `{tenant_id}.onboarding_validation_test`")[0]["n"]
    counts["view_rows"] = len(services.warehouse.query(sql.render("read_comprehensive_view", dataset=tenant_id)))
    counts["api_keys"] = len(services.documents.find("api_keys", "tenant_id", tenant_id))
    counts["datasets"] = int(services.warehouse.dataset_exists(tenant_id))
    return dict(counts)


def test_duplicated_and_reversed_deliveries_create_everything_once(manual: Services, settings: Settings) -> None:
    client = operator_client(create_app())
    assert client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST).get_json()["ready_for_onboarding"]
    assert client.post("/api/v1/tenants/onboard", json=SEED_REQUEST).status_code == 202
    bus = unwrap(manual.bus)
    assert isinstance(bus, SqliteEventBus)

    # Record-only prerequisites (subscription, quota) are done by the onboarding's own commit; the
    # others are published once each.
    onboarded = manual.documents.get("tenants", "customer_123")
    assert onboarded is not None
    published = [step for step in PREREQUISITE_STEPS if onboarded["steps"][step]["status"] != "DONE"]
    assert published == ["dataset"]
    assert all(_messages(bus, settings.topics.step(step)) == [] for step in PREREQUISITE_STEPS if step not in published)
    prerequisite_messages = [(step, _messages(bus, settings.topics.step(step))[0]) for step in published]
    for step, message in reversed(prerequisite_messages):
        _deliver(step, message)
    view_messages = _messages(bus, settings.topics.step("view"))
    assert len(view_messages) == 1, "the view step is published exactly once"
    _deliver("view", view_messages[0])
    for step, message in prerequisite_messages:  # late duplicates after the tenant is ACTIVE
        _deliver(step, message)

    state = manual.documents.get("tenants", "customer_123")
    assert state is not None and state["status"] == "ACTIVE"
    assert _counts(manual, "customer_123") == {
        "profiles": 1,
        "subscriptions": 1,
        "quotas": 1,
        "validation_runs": 1,
        "validation_rows": 1,
        "view_rows": 1,
        "api_keys": 1,
        "datasets": 1,
    }
    assert len(_messages(bus, settings.topics.step("view"))) == 1


def test_a_republished_step_with_a_new_transport_id_is_deduplicated(manual: Services, settings: Settings) -> None:
    client = operator_client(create_app())
    client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
    client.post("/api/v1/tenants/onboard", json=SEED_REQUEST)
    bus = unwrap(manual.bus)
    assert isinstance(bus, SqliteEventBus)
    message = _messages(bus, settings.topics.step("dataset"))[0]
    _deliver("dataset", message, times=1)
    republished = ReceivedMessage("another-transport-id", message.topic, "manual", message.data, message.attributes, time.time(), 1)
    _deliver("dataset", republished, times=1)
    state = manual.documents.get("tenants", "customer_123")
    assert state is not None and state["steps"]["dataset"]["attempts"] == 1


def test_logs_of_a_full_onboarding_are_json_with_context_and_never_show_the_key(platform: Any) -> None:
    from shared.logging_setup import configure_logging

    stream = io.StringIO()
    handler = configure_logging(stream=stream)
    try:
        client = operator_client(platform.app)
        client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
        created = client.post("/api/v1/tenants/onboard?wait=20", json=SEED_REQUEST).get_json()
        client.get("/api/v1/tenants/customer_123/overview", headers={"X-API-Key": created["api_key"]})
        assert platform.bus.wait_idle(30), "the view step logs after the ACTIVE commit that ends ?wait"
    finally:
        import logging

        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert created["api_key"] not in text
    assert created["api_key"].split("_api_")[1] not in text
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    step_records = [record for record in records if record.get("message") == "step done"]
    # The record-only steps (subscription, quota) are done by the onboarding's commit, not by a delivery.
    assert {record["step"] for record in step_records} == {"dataset", "view"}
    assert all(record["tenant_id"] == "customer_123" and record["event_id"] for record in step_records)
