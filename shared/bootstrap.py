"""The one place that reads configuration and wires adapters into Services.

`python -m shared.bootstrap` creates the central dataset and tables (idempotent).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from shared.adapters.embedded.sqlite_support import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, private_dir
from shared.adapters.guarded import CallGuard, GuardedDocumentStore, GuardedEventBus, GuardedKeyManager, GuardedWarehouse
from shared.config import Settings, load_settings
from shared.domain.plans import default_plans
from shared.faults import FaultInjector, injector_for
from shared.handlers.warehouse_setup import ensure_central_tables
from shared.logging_setup import configure_logging
from shared.services import Credentials, Services

logger = logging.getLogger(__name__)


def build_services(settings: Settings | None = None) -> Services:
    """Services for the configured backend (embedded by default)."""
    settings = settings or load_settings()
    if settings.backend == "gcp":
        # Imported only here so the embedded path never loads the Google client libraries.
        wiring = importlib.import_module("shared.adapters.gcp.wiring")
        build: Callable[[Settings], Services] = wiring.build_gcp_services
        return guard_services(build(settings), injector_for(settings))
    return build_embedded_services(settings)


def guard_services(services: Services, faults: FaultInjector | None) -> Services:
    """Every port behind a CallGuard: per-call deadline, bounded retry with jitter, injected faults."""
    guard = CallGuard(services.settings.calls, faults)
    return replace(
        services,
        documents=GuardedDocumentStore(services.documents, guard),
        bus=GuardedEventBus(services.bus, guard),
        warehouse=GuardedWarehouse(services.warehouse, guard),
        keys=GuardedKeyManager(services.keys, guard),
        faults=faults,
        guard=guard,
    )


def build_embedded_services(settings: Settings) -> Services:
    """SQLite documents and bus, DuckDB warehouse, local key: everything under data_dir."""
    from shared.adapters.embedded.duckdb_warehouse import DuckdbWarehouse
    from shared.adapters.embedded.local_key_manager import LocalKeyManager
    from shared.adapters.embedded.sqlite_document_store import SqliteDocumentStore
    from shared.adapters.embedded.sqlite_event_bus import SqliteEventBus

    data_dir = private_data_dir(settings.data_dir)
    faults = injector_for(settings)
    keys = LocalKeyManager(data_dir / "local-kms.key", production=settings.production)
    documents = SqliteDocumentStore(data_dir / "documents.db", busy_timeout=settings.calls.timeout_seconds)
    bus = SqliteEventBus(data_dir / "events.db", settings.event_bus, faults=faults)
    warehouse = DuckdbWarehouse(data_dir / "warehouse.duckdb", timeout_seconds=settings.calls.timeout_seconds)

    def embedded_credentials() -> tuple[bool, str]:
        probe = b"credentials-probe"
        if keys.decrypt(keys.encrypt(probe, b"probe"), b"probe") != probe:
            return False, f"{keys.describe()} does not round-trip"
        return True, f"embedded backends: no Google credentials needed; {keys.describe()} encrypts and decrypts"

    services = Services(
        settings=settings,
        documents=documents,
        bus=bus,
        warehouse=warehouse,
        keys=keys,
        plans=default_plans(),
        credentials=Credentials(check=embedded_credentials),
    )
    return guard_services(services, faults)


def private_data_dir(data_dir: Path) -> Path:
    """The data dir 0700 and every file in it 0600, now and for the files the backends create later.

    It holds personal data and the local key. The process umask makes files created later
    (DuckDB's WAL, SQLite's -wal and -shm) private from their first byte; existing files of
    an older data dir are narrowed here.
    """
    os.umask(0o077)
    private_dir(data_dir)
    for path in data_dir.rglob("*"):
        os.chmod(path, PRIVATE_DIR_MODE if path.is_dir() else PRIVATE_FILE_MODE)
    return data_dir


def main() -> None:
    """Create the central dataset and tables for the configured backend."""
    configure_logging()
    services = build_services()
    try:
        tables = ensure_central_tables(services.warehouse, services.central)
        logger.info("central tables ready", extra={"dataset": services.central, "tables": tables})
    finally:
        services.close()


if __name__ == "__main__":
    main()
