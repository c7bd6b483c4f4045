"""The scheduled reconciler function: republishes stranded steps, and only stale ones."""

from __future__ import annotations

import json
from datetime import timedelta

from cloudevents.http import CloudEvent

from functions.local import create_app
from functions.steps import STRANDED_AFTER, reconcile_steps
from shared.adapters.embedded.sqlite_event_bus import SqliteEventBus
from shared.adapters.guarded import unwrap
from shared.services import Services, utcnow
from tests.conftest import SEED_REQUEST

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


def test_stranded_steps_are_republished_with_their_event_ids_only_once_stale(manual: Services) -> None:
    client = create_app().test_client()
    client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST)
    assert client.post("/api/v1/tenants/onboard", json=SEED_REQUEST).status_code == 202
    bus = unwrap(manual.bus)
    assert isinstance(bus, SqliteEventBus)
    first = _step_commands(bus, manual)
    assert len(first) == 3

    reconcile_steps(SCHEDULER_EVENT)
    assert _step_commands(bus, manual) == first, "a fresh tenant is not touched"

    manual.clock = lambda: utcnow() + STRANDED_AFTER + timedelta(seconds=1)
    reconcile_steps(SCHEDULER_EVENT)
    assert _step_commands(bus, manual) == sorted(first * 2), "each stranded step again, under the same event id"
