"""Every adapter of a port, as a fixture parameter: one contract suite runs against each.

An adapter for a Google service is added here with the `emulator` mark; its factory
connects to the emulator that `.ci/run` (or `make emulate`) started.
"""

from __future__ import annotations

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

DOCUMENT_STORES: dict[str, Factory] = {"sqlite": lambda tmp: SqliteDocumentStore(tmp / "documents.db")}
WAREHOUSES: dict[str, Factory] = {"duckdb": lambda tmp: DuckdbWarehouse(tmp / "warehouse.duckdb")}
KEY_MANAGERS: dict[str, Factory] = {"local": lambda tmp: LocalKeyManager(tmp / "key", production=False)}
EVENT_BUSES: dict[str, Factory] = {"sqlite": lambda tmp: SqliteEventBus(tmp / "events.db", BUS_SETTINGS)}
EMULATED: set[str] = set()


def _params(factories: dict[str, Factory]) -> list[Any]:
    return [pytest.param(name, marks=[pytest.mark.emulator] if name in EMULATED else [], id=name) for name in factories]


def _build(factories: dict[str, Factory], name: str, tmp_path: Path) -> Iterator[Any]:
    adapter = factories[name](tmp_path)
    yield adapter
    close = getattr(adapter, "close", None)
    if close is not None:
        close()


@pytest.fixture(params=_params(DOCUMENT_STORES))
def document_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    yield from _build(DOCUMENT_STORES, request.param, tmp_path)


@pytest.fixture(params=_params(WAREHOUSES))
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    yield from _build(WAREHOUSES, request.param, tmp_path)


@pytest.fixture(params=_params(KEY_MANAGERS))
def key_manager(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyManager]:
    yield from _build(KEY_MANAGERS, request.param, tmp_path)


@pytest.fixture
def unique() -> str:
    """A name no other test uses (emulators are shared between tests)."""
    return "t" + uuid.uuid4().hex[:12]
