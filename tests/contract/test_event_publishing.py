"""Publishing contract, on every bus: what a subscriber receives is what was published, attributes included."""

from __future__ import annotations

import json
import threading
from typing import Any

from schemas.events import StepRequested
from shared.handlers.publishing import publish_event


def test_publish_returns_an_id_and_the_subscriber_gets_data_and_attributes(publishing: Any, unique: str) -> None:
    publishing.prepare(unique)
    message_id = publishing.bus.publish(unique, b'{"hello": "world"}', {"tenant_id": "customer_123", "event_id": "e-1"})
    assert isinstance(message_id, str) and message_id
    [(data, attributes)] = publishing.received(unique, 1)
    assert data == b'{"hello": "world"}'
    assert attributes["tenant_id"] == "customer_123"
    assert attributes["event_id"] == "e-1"


def test_publishing_twice_delivers_twice_with_the_same_event_id(publishing: Any, unique: str) -> None:
    """At least once: a retried publish is a second message; consumers dedupe on event_id."""
    publishing.prepare(unique)
    first = publishing.bus.publish(unique, b"same", {"event_id": "e-dup", "tenant_id": "t"})
    second = publishing.bus.publish(unique, b"same", {"event_id": "e-dup", "tenant_id": "t"})
    assert first != second
    received = publishing.received(unique, 2)
    assert [attributes["event_id"] for _, attributes in received] == ["e-dup", "e-dup"]


def test_concurrent_publishers_lose_no_message(publishing: Any, unique: str) -> None:
    publishing.prepare(unique)
    ids: list[str] = []

    def publish_some(worker: int) -> None:
        for index in range(5):
            ids.append(publishing.bus.publish(unique, f"{worker}-{index}".encode(), {"tenant_id": "t"}))

    threads = [threading.Thread(target=publish_some, args=(worker,)) for worker in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 15
    received = publishing.received(unique, 15)
    assert sorted(data.decode() for data, _ in received) == sorted(f"{w}-{i}" for w in range(3) for i in range(5))


def test_a_contract_published_by_the_handlers_carries_type_tenant_and_event_id(publishing: Any, unique: str) -> None:
    from types import SimpleNamespace

    publishing.prepare(unique)
    event = StepRequested(
        event_id="evt-1", tenant_id="customer_123", step="subscription", generation=1, occurred_at="2026-01-01T00:00:00.000Z"
    )
    publish_event(SimpleNamespace(bus=publishing.bus), unique, event, tenant_id="customer_123")  # type: ignore[arg-type]
    [(data, attributes)] = publishing.received(unique, 1)
    assert StepRequested.model_validate(json.loads(data)) == event
    assert attributes["event_type"] == "StepRequested"
    assert attributes["tenant_id"] == "customer_123"
    assert attributes["event_id"] == "evt-1"
