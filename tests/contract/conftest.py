"""Every adapter of a port, as a fixture parameter: one contract suite runs against each.

An adapter for a Google service is added here with the `emulator` mark; its factory
connects to the emulators of the session (`gcp_endpoints` in tests/conftest.py: those
exported by `scripts.emulators`, or started on first use).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.embedded.duckdb_warehouse import DuckdbWarehouse
from shared.adapters.embedded.local_key_manager import LocalKeyManager
from shared.adapters.embedded.sqlite_document_store import SqliteDocumentStore
from shared.adapters.embedded.sqlite_event_bus import SqliteEventBus
from shared.config import EventBusSettings
from shared.ports import DocumentStore, KeyManager, Warehouse

Factory = Callable[[Path], Any]

BUS_SETTINGS = EventBusSettings(
    workers=2,
    max_attempts=3,
    ack_deadline_seconds=2,
    min_backoff_seconds=0.01,
    max_backoff_seconds=0.05,
    poll_interval_seconds=0.01,
)


def _firestore(tmp: Path) -> DocumentStore:
    from google.cloud import firestore

    from shared.adapters.gcp.firestore_document_store import FirestoreDocumentStore

    return FirestoreDocumentStore(firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"]))


def _bigquery(tmp: Path) -> Warehouse:
    from shared.adapters.gcp.bigquery_warehouse import BigQueryWarehouse
    from shared.adapters.gcp.wiring import bigquery_client
    from shared.bootstrap import load_settings

    return BigQueryWarehouse(bigquery_client(load_settings()))


def _cloud_kms(tmp: Path) -> KeyManager:
    from shared.adapters.gcp.cloud_kms_key_manager import CloudKmsKeyManager
    from shared.adapters.gcp.wiring import kms_client
    from shared.bootstrap import load_settings

    settings = load_settings()
    return CloudKmsKeyManager(kms_client(settings), settings.gcp.kms_key_name)


DOCUMENT_STORES: dict[str, Factory] = {"sqlite": lambda tmp: SqliteDocumentStore(tmp / "documents.db"), "firestore": _firestore}
WAREHOUSES: dict[str, Factory] = {"duckdb": lambda tmp: DuckdbWarehouse(tmp / "warehouse.duckdb"), "bigquery": _bigquery}
KEY_MANAGERS: dict[str, Factory] = {"local": lambda tmp: LocalKeyManager(tmp / "key", production=False), "cloud_kms": _cloud_kms}
EVENT_BUSES: dict[str, Factory] = {"sqlite": lambda tmp: SqliteEventBus(tmp / "events.db", BUS_SETTINGS)}
EMULATED: set[str] = {"firestore", "bigquery", "cloud_kms", "pubsub"}


def _params(factories: dict[str, Factory]) -> list[Any]:
    return [pytest.param(name, marks=[pytest.mark.emulator] if name in EMULATED else [], id=name) for name in factories]


def _build(factories: dict[str, Factory], request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    name = request.param
    if name in EMULATED:
        request.getfixturevalue("gcp_endpoints")
    adapter = factories[name](tmp_path)
    yield adapter
    close = getattr(adapter, "close", None)
    if close is not None:
        close()


@pytest.fixture(params=_params(DOCUMENT_STORES))
def document_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    yield from _build(DOCUMENT_STORES, request, tmp_path)


@pytest.fixture(params=_params(WAREHOUSES))
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    yield from _build(WAREHOUSES, request, tmp_path)


@pytest.fixture(params=_params(KEY_MANAGERS))
def key_manager(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyManager]:
    yield from _build(KEY_MANAGERS, request, tmp_path)


@pytest.fixture
def unique() -> str:
    """A name no other test uses (emulators are shared between tests)."""
    return "t" + uuid.uuid4().hex[:12]


class SqlitePublishing:
    """The embedded bus plus a way to read back what reached a topic."""

    def __init__(self, tmp: Path) -> None:
        self.bus = SqliteEventBus(tmp / "events.db", BUS_SETTINGS)

    def prepare(self, topic: str) -> None:
        """Nothing to create: embedded topics exist implicitly."""

    def received(self, topic: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
        """Every message published to `topic`."""
        return self.bus.messages(topic)

    def close(self) -> None:
        """Close the bus."""
        self.bus.close()


class PubSubPublishing:
    """The Pub/Sub adapter on the emulator, with a pull subscription per topic to read back."""

    def __init__(self, tmp: Path) -> None:
        from google.cloud import pubsub

        from shared.adapters.gcp.pubsub_event_bus import PubSubEventBus

        self.project = os.environ["GOOGLE_CLOUD_PROJECT"]
        self.publisher = pubsub.PublisherClient()
        self.subscriber = pubsub.SubscriberClient()
        self.bus = PubSubEventBus(self.publisher, self.project, timeout_seconds=20)

    def prepare(self, topic: str) -> None:
        """Create the topic and a pull subscription on it."""
        self.publisher.create_topic(name=self.publisher.topic_path(self.project, topic))
        self.subscriber.create_subscription(
            name=self.subscriber.subscription_path(self.project, topic), topic=self.publisher.topic_path(self.project, topic)
        )

    def received(self, topic: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
        """Pull (and ack) until `count` messages arrived or 20 s passed."""
        import time

        subscription = self.subscriber.subscription_path(self.project, topic)
        got: list[tuple[bytes, dict[str, str]]] = []
        deadline = time.monotonic() + 20
        while len(got) < count and time.monotonic() < deadline:
            response = self.subscriber.pull(subscription=subscription, max_messages=10, timeout=10)
            for item in response.received_messages:
                got.append((item.message.data, dict(item.message.attributes)))
            if response.received_messages:
                self.subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])
        return got

    def close(self) -> None:
        """Stop the clients."""
        self.bus.close()
        self.subscriber.close()


PUBLISHERS: dict[str, Factory] = {"sqlite": SqlitePublishing, "pubsub": PubSubPublishing}


@pytest.fixture(params=_params(PUBLISHERS))
def publishing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _build(PUBLISHERS, request, tmp_path)
