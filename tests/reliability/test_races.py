"""Races: concurrent onboard requests for one tenant, and concurrent step completions."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask.testing import FlaskClient

from functions.local import as_cloud_event, create_app
from functions.topology import entry_point
from shared.adapters.embedded.sqlite_event_bus import ReceivedMessage, SqliteEventBus
from shared.adapters.guarded import unwrap
from shared.domain.tenant import PREREQUISITE_STEPS, TenantState
from shared.entrypoints.runtime import install_services
from shared.handlers.provisioning import published_at_onboarding
from shared.handlers.step_commands import step_event_id
from shared.handlers.tenant_store import update_tenant
from shared.ports import TransactionConflict
from shared.services import Services
from tests.conftest import SEED_REQUEST, operator_client


def _concurrently(count: int, call: Any) -> list[Any]:
    barrier = threading.Barrier(count)

    def run(index: int) -> Any:
        barrier.wait()
        return call(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_twenty_concurrent_onboards_of_one_tenant_accept_exactly_one(client: FlaskClient, platform: Any) -> None:
    assert client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST).get_json()["ready_for_onboarding"]
    app = platform.app
    responses = _concurrently(20, lambda _: operator_client(app).post("/api/v1/tenants/onboard", json=SEED_REQUEST))
    codes = Counter(response.status_code for response in responses)
    assert codes == {202: 1, 409: 19}
    assert {r.get_json()["error"]["code"] for r in responses if r.status_code == 409} == {"TENANT_EXISTS"}
    assert len(platform.services.documents.find("api_keys", "tenant_id", "customer_123")) == 1


def test_concurrent_onboards_of_ids_differing_only_by_case_accept_exactly_one(client: FlaskClient, platform: Any) -> None:
    spellings = ["acme_corp", "ACME_CORP", "Acme_Corp", "acme_CORP"]
    requests = [{**SEED_REQUEST, "tenant_id": tenant_id} for tenant_id in spellings]
    for request in requests:
        assert client.post("/api/v1/tenants/dryrun", json=request).get_json()["ready_for_onboarding"]
    app = platform.app
    responses = _concurrently(12, lambda index: operator_client(app).post("/api/v1/tenants/onboard", json=requests[index % 4]))
    assert Counter(response.status_code for response in responses) == {202: 1, 409: 11}
    [winner] = [response.get_json()["tenant_id"] for response in responses if response.status_code == 202]
    refusals = {response.get_json()["error"]["message"] for response in responses if response.status_code == 409}
    assert all(winner in message for message in refusals), refusals
    assert len(platform.services.documents.find("api_keys", "tenant_id", winner)) == 1
    assert [tenant_id for tenant_id in spellings if platform.services.documents.get("tenants", tenant_id)] == [winner]
    assert platform.bus.wait_idle(30)


def test_twenty_concurrent_onboards_with_one_idempotency_key_all_get_the_first_response(client: FlaskClient, platform: Any) -> None:
    client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
    app = platform.app
    headers = {"Idempotency-Key": "double-click"}
    responses = _concurrently(20, lambda _: operator_client(app).post("/api/v1/tenants/onboard", json=SEED_REQUEST, headers=headers))
    assert {response.status_code for response in responses} == {202}, [r.get_json() for r in responses if r.status_code != 202][:2]
    bodies = {response.get_data(as_text=True) for response in responses}
    assert len(bodies) == 1  # the same key, shown every time
    assert len(platform.services.documents.find("api_keys", "tenant_id", "customer_123")) == 1
    assert platform.bus.wait_idle(30)


def test_concurrent_step_completions_lose_no_update_and_release_the_view_once(services: Services) -> None:
    install_services(services)
    try:
        client = operator_client(create_app())
        client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
        assert client.post("/api/v1/tenants/onboard", json=SEED_REQUEST).status_code == 202
        bus = unwrap(services.bus)
        assert isinstance(bus, SqliteEventBus)
        deliveries = []
        # The record-only prerequisites are done by the onboarding's commit; the others race here.
        for step in (name for name in PREREQUISITE_STEPS if name in published_at_onboarding()):
            data, attributes = bus.messages(services.settings.topics.step(step))[0]
            message = ReceivedMessage(f"m-{step}", services.settings.topics.step(step), "race", data, attributes, 0.0, 1)
            deliveries += [(step, message)] * 3  # each prerequisite delivered three times at once
        _concurrently(len(deliveries), lambda index: entry_point(f"step_{deliveries[index][0]}")(as_cloud_event(deliveries[index][1])))
        state = services.documents.get("tenants", "customer_123")
        assert state is not None
        assert {name: state["steps"][name]["status"] for name in PREREQUISITE_STEPS} == dict.fromkeys(PREREQUISITE_STEPS, "DONE")
        assert state["steps"]["view"]["status"] == "PENDING"
        view_ids = {json.loads(data)["event_id"] for data, _ in bus.messages(services.settings.topics.step("view"))}
        assert view_ids == {step_event_id(TenantState.model_validate(state), "view", 1)}
    finally:
        install_services(None)


def test_concurrent_transactions_on_the_state_document_never_lose_an_update(services: Services) -> None:
    install_services(services)
    try:
        client = operator_client(create_app())
        client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
        client.post("/api/v1/tenants/onboard", json=SEED_REQUEST)
        before = services.documents.get("tenants", "customer_123")
        assert before is not None

        def bump(_: int) -> None:
            for _redelivery in range(5):  # a conflict past the store's attempts is a failed delivery; the bus redelivers it
                try:
                    update_tenant(services, "customer_123", lambda state: state.touched(services.now()))
                    return
                except TransactionConflict:
                    continue
            raise AssertionError("still conflicting after 5 redeliveries")

        _concurrently(16, bump)
        after = services.documents.get("tenants", "customer_123")
        assert after is not None and after["revision"] == before["revision"] + 16
    finally:
        install_services(None)
