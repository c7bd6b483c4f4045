"""Finding 8: everything has a lifetime; the sweeper deletes what is past it, and nothing younger."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient

from shared.adapters.embedded.sqlite_event_bus import SqliteEventBus
from shared.adapters.guarded import unwrap
from shared.bootstrap import build_embedded_services
from shared.config import PUBSUB_MAX_RETENTION_DAYS, Settings
from shared.handlers.dead_letter_store import mark_retried, record_dead_letter
from shared.handlers.sweep import sweep_expired
from shared.ports import EXPIRE_AT
from shared.services import DEAD_LETTERS, PROCESSED_EVENTS, VALIDATIONS, Services, utcnow
from tests.conftest import SEED_REQUEST, fast_settings, onboard_seed, operator_client


def _count(services: Services, collection: str) -> int:
    return sum(1 for _ in services.documents.scan(collection, EXPIRE_AT))


def _validations(services: Services) -> int:
    return sum(1 for _ in services.documents.scan(VALIDATIONS, "created_at"))


def _messages(services: Services) -> int:
    bus = unwrap(services.bus)
    assert isinstance(bus, SqliteEventBus)
    return bus.store_sizes()["messages"]


def _letter(services: Services, letter_id: str) -> None:
    record_dead_letter(
        services,
        letter_id=letter_id,
        source="onboarding-quota-push",
        reason="test",
        attempts=3,
        data=b"{}",
        tenant_id="lifetime_tenant" if letter_id != "other" else "someone_else",
        step=None,
        event_id=None,
    )


def test_finding8_the_sweep_deletes_each_kind_of_record_after_its_lifetime_only(platform: Any, client: FlaskClient) -> None:
    services: Services = platform.services
    lifetimes = services.settings.lifetimes
    assert lifetimes.processed_events > timedelta(days=PUBSUB_MAX_RETENTION_DAYS)
    for _ in range(3):
        client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
    onboard_seed(client)
    assert platform.bus.wait_idle(30)
    _letter(services, "resolved")
    _letter(services, "other")
    assert mark_retried(services, "lifetime_tenant") == 1

    # Every record that should not live for ever says until when.
    validations, markers = _count(services, VALIDATIONS), _count(services, PROCESSED_EVENTS)
    assert validations == _validations(services) == 4 and markers >= 2
    assert _count(services, DEAD_LETTERS) == 1, "only the resolved dead letter expires; an open one waits for an operator"
    messages = _messages(services)
    assert messages >= 6

    # Nothing is young enough to go yet.
    assert sweep_expired(services).total == 0

    real_clock = services.clock
    try:
        services.clock = lambda: utcnow() + lifetimes.validations + timedelta(minutes=1)
        report = sweep_expired(services)
        assert report.documents[VALIDATIONS] == validations and report.documents[DEAD_LETTERS] == 1
        assert report.documents[PROCESSED_EVENTS] == 0, "a marker outlives Pub/Sub's longest retention"
        assert report.bus_messages == messages and _messages(services) == 0
        assert services.documents.get(DEAD_LETTERS, "other") is not None

        services.clock = lambda: utcnow() + lifetimes.processed_events + timedelta(minutes=1)
        assert sweep_expired(services).documents[PROCESSED_EVENTS] == markers
        assert _count(services, VALIDATIONS) == _count(services, PROCESSED_EVENTS) == 0
    finally:
        services.clock = real_clock
    assert client.get(f"/api/v1/tenants/{SEED_REQUEST['tenant_id']}").status_code == 200, "the tenant itself has no lifetime"


def test_finding8_the_local_platform_sweeps_on_its_own(settings: Settings) -> None:
    from functions.local import LocalPlatform

    quick = fast_settings(settings.data_dir, ONBOARDING_SWEEP_EVERY_SECONDS="0.1")
    platform = LocalPlatform(build_embedded_services(quick), reconcile_every=3600)
    platform.start()
    try:
        client = operator_client(platform.app)
        client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
        assert _count(platform.services, VALIDATIONS) == 1
        platform.services.clock = lambda: utcnow() + quick.lifetimes.validations + timedelta(minutes=1)
        deadline = time.monotonic() + 20
        while _count(platform.services, VALIDATIONS) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _count(platform.services, VALIDATIONS) == 0
    finally:
        platform.stop()
