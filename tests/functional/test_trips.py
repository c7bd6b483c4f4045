"""Few trips per onboarding: record-only steps done by the onboarding's commit, the backend calls one onboarding costs."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from functions.local import create_app
from shared.adapters.embedded.sqlite_event_bus import SqliteEventBus
from shared.adapters.guarded import unwrap
from shared.domain.steps import step_names
from shared.entrypoints.runtime import install_services
from shared.handlers import checks
from shared.handlers.provisioning import applied_at_onboarding, published_at_onboarding
from shared.services import Services
from tests.conftest import SEED_REQUEST, onboard_seed, operator_client

# What `make bench` prints per tenant at 1,000 tenants; every call here is one round trip on Google Cloud.
CALLS_PER_ONBOARDING = 26


def test_the_record_only_steps_are_done_by_the_commit_that_creates_the_tenant(services: Services) -> None:
    install_services(services)
    try:
        client = operator_client(create_app())
        client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
        assert client.post("/api/v1/tenants/onboard", json=SEED_REQUEST).status_code == 202
    finally:
        install_services(None)
    assert applied_at_onboarding() == ("subscription", "quota")
    assert published_at_onboarding() == ("dataset",)
    state = services.documents.get("tenants", SEED_REQUEST["tenant_id"])
    assert state is not None
    for name in applied_at_onboarding():
        assert state["steps"][name]["status"] == "DONE" and state["steps"][name]["attempts"] == 1
    assert state["subscription_started_at"] is not None and state["quota"]["pipelines_run"] == 0
    assert state["steps"]["dataset"]["status"] == "PENDING" and state["steps"]["view"]["status"] == "WAITING"
    bus = unwrap(services.bus)
    assert isinstance(bus, SqliteEventBus)
    published = {name for name in step_names() if bus.messages(services.settings.topics.step(name))}
    assert published == {"dataset"}, "nothing is published to a step the onboarding's commit completed"


def test_one_onboarding_costs_at_most_the_calls_bench_reports(client: FlaskClient, platform: Any) -> None:
    onboard_seed(client, {**SEED_REQUEST, "tenant_id": "warm_up"})  # start-up work (central tables check) out of the count
    assert platform.bus.wait_idle(30)
    guard = platform.services.guard
    before = guard.snapshot()["calls"]
    # Dry run, onboarding, every step, going live; the test waits on the bus, not through ?wait's reads.
    assert client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST).get_json()["ready_for_onboarding"]
    assert client.post("/api/v1/tenants/onboard", json=SEED_REQUEST).status_code == 202
    assert platform.bus.wait_idle(30)
    calls = guard.snapshot()["calls"] - before
    assert (platform.services.documents.get("tenants", SEED_REQUEST["tenant_id"]) or {})["status"] == "ACTIVE"
    assert calls <= CALLS_PER_ONBOARDING, calls


def test_a_passing_warehouse_ping_is_kept_a_minute_and_a_failing_one_never(services: Services, monkeypatch: Any) -> None:
    pings: list[str] = []
    warehouse = unwrap(services.warehouse)

    def ping() -> None:
        pings.append("ping")

    monkeypatch.setattr(warehouse, "ping", ping)
    services.warehouse = warehouse
    request: Any = None
    assert checks.bigquery_connectivity(request, services)[0]
    assert checks.bigquery_connectivity(request, services)[0]
    assert pings == ["ping"]
    clock = [checks.time.monotonic() + checks.CONNECTIVITY_TTL_SECONDS + 1]
    monkeypatch.setattr(checks.time, "monotonic", lambda: clock[0])
    assert checks.bigquery_connectivity(request, services)[0]
    assert pings == ["ping", "ping"]

    def down() -> None:
        raise RuntimeError("warehouse down")

    monkeypatch.setattr(warehouse, "ping", down)
    clock[0] += checks.CONNECTIVITY_TTL_SECONDS + 1
    for _ in range(2):  # a failure is never kept: each dry run asks again
        try:
            checks.bigquery_connectivity(request, services)
        except RuntimeError:
            continue
        raise AssertionError("the ping's failure was not raised")
