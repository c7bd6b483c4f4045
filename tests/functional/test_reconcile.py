"""The scheduled reconciler function: republishes stranded steps, and only stale ones."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from functions.local import create_app
from functions.steps import STRANDED_AFTER, reconcile_steps
from schemas.events import StepRequested
from shared.adapters.embedded.sqlite_event_bus import SqliteEventBus
from shared.adapters.guarded import unwrap
from shared.bootstrap import build_embedded_services
from shared.config import Settings
from shared.domain.steps import dependents_of, root_steps
from shared.entrypoints.runtime import install_services
from shared.handlers.steps import handle_step
from shared.handlers.tenant_store import load_tenant
from shared.handlers.warehouse_setup import ensure_central_tables
from shared.ports import BackendUnavailable
from shared.services import OUTBOX, Services, utcnow
from tests.conftest import SEED_REQUEST, operator_client

SCHEDULER_EVENT = CloudEvent(
    {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub.googleapis.com/projects/p/topics/tenant-reconcile"},
    {"message": {"data": "e30=", "messageId": "1"}},
)


def _step_commands(bus: SqliteEventBus, services: Services) -> list[str]:
    topics = services.settings.topics
    return sorted(
        json.loads(data)["event_id"]
        for topic in (topics.step("subscription"), topics.step("quota"), topics.step("dataset"))
        for data, _ in bus.messages(topic)
    )


def test_stranded_steps_are_published_from_the_outbox_once_stale_and_only_once(manual: Services, monkeypatch: Any) -> None:
    """A crash (here: a bus outage) between the commit and the publish leaves the commands in the outbox."""
    client = operator_client(create_app())
    client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
    bus = unwrap(manual.bus)
    assert isinstance(bus, SqliteEventBus)

    def outage(topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        raise BackendUnavailable("bus outage")

    monkeypatch.setattr(bus, "publish", outage)
    assert client.post("/api/v1/tenants/onboard", json=SEED_REQUEST).status_code == 202
    monkeypatch.undo()
    assert _step_commands(bus, manual) == []
    # Only the dataset step is staged: the record-only roots were done by the onboarding's commit.
    assert len(list(manual.documents.scan(OUTBOX, "created_at"))) == 1

    reconcile_steps(SCHEDULER_EVENT)
    assert _step_commands(bus, manual) == [], "a fresh entry is left to the writer that staged it"

    manual.clock = lambda: utcnow() + STRANDED_AFTER + timedelta(seconds=1)
    reconcile_steps(SCHEDULER_EVENT)
    first = _step_commands(bus, manual)
    assert len(first) == 1
    reconcile_steps(SCHEDULER_EVENT)
    assert _step_commands(bus, manual) == first, "a relayed entry leaves the outbox"


def test_a_released_step_is_staged_with_the_completion_and_relayed_after_an_outage(manual: Services, monkeypatch: Any) -> None:
    """The fan-in writes the released step's command to the outbox in the completing transaction: an outage leaves it there, not lost."""
    client = operator_client(create_app())
    client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
    assert client.post("/api/v1/tenants/onboard", json=SEED_REQUEST).status_code == 202
    bus = unwrap(manual.bus)
    assert isinstance(bus, SqliteEventBus)
    topics = manual.settings.topics
    roots = [StepRequested.model_validate_json(data) for step in root_steps() for data, _ in bus.messages(topics.step(step))]
    assert [command.step for command in roots] == ["dataset"], "record-only roots are done by the onboarding's commit"
    for command in roots[:-1]:
        assert handle_step(command, manual) == "done"
    assert list(manual.documents.scan(OUTBOX, "created_at")) == []

    def outage(topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        raise BackendUnavailable("bus outage")

    monkeypatch.setattr(bus, "publish", outage)
    with pytest.raises(BackendUnavailable):
        handle_step(roots[-1], manual)  # committed; the failure gets the message redelivered
    monkeypatch.undo()
    state = load_tenant(manual, roots[0].tenant_id)
    assert state is not None and state.steps[roots[-1].step].status == "DONE"
    released = dependents_of(roots[-1].step)
    assert released == ("view",)
    assert bus.messages(topics.step("view")) == []
    staged = [StepRequested.model_validate_json(str(entry["command"])) for _, entry in manual.documents.scan(OUTBOX, "created_at")]
    assert [command.step for command in staged] == ["view"]

    manual.clock = lambda: utcnow() + STRANDED_AFTER + timedelta(seconds=1)
    reconcile_steps(SCHEDULER_EVENT)
    assert list(manual.documents.scan(OUTBOX, "created_at")) == []
    published = [StepRequested.model_validate_json(data) for data, _ in bus.messages(topics.step("view"))]
    assert [command.event_id for command in published] == [staged[0].event_id]
    assert handle_step(published[0], manual) == "done"
    state = load_tenant(manual, roots[0].tenant_id)
    assert state is not None and state.status == "ACTIVE"


def test_finding10_many_restarts_do_not_pile_up_step_commands(settings: Settings) -> None:
    """Each start of the local platform relays the outbox; it republishes nothing that already went out."""
    from functions.local import LocalPlatform

    services = build_embedded_services(settings)
    ensure_central_tables(services.warehouse, services.central)
    install_services(services)
    try:
        client = operator_client(create_app())
        client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
        assert client.post("/api/v1/tenants/onboard", json=SEED_REQUEST).status_code == 202
    finally:
        install_services(None)
        services.close()
    for _ in range(5):
        platform = LocalPlatform(build_embedded_services(settings), reconcile_every=3600)
        platform.start()
        platform.stop()
    services = build_embedded_services(settings)
    try:
        bus = unwrap(services.bus)
        assert isinstance(bus, SqliteEventBus)
        commands = _step_commands(bus, services)
        assert len(commands) == 1, commands  # the dataset step's; the record-only roots are never published
    finally:
        services.close()
