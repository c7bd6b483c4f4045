"""The one place that reads configuration and wires adapters into Services.

`python -m shared.bootstrap` creates the central dataset and tables (idempotent).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import replace

from shared.adapters.guarded import CallGuard, GuardedDocumentStore, GuardedEventBus, GuardedKeyManager, GuardedWarehouse
from shared.cloud_profile import CloudProfile, profile_for
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
        profile_for(settings)  # refuses ONBOARDING_CLOUD_PROFILE on the real backends
        return guard_services(build(settings), injector_for(settings))
    return build_embedded_services(settings)


def guard_services(services: Services, faults: FaultInjector | None, profile: CloudProfile | None = None) -> Services:
    """Every port behind a CallGuard: per-call deadline, bounded retry with jitter, injected faults, the cloud profile."""
    guard = CallGuard(services.settings.calls, faults, profile)
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

    data_dir = settings.data_dir
    faults = injector_for(settings)
    profile = profile_for(settings)
    keys = LocalKeyManager(data_dir / "local-kms.key", production=settings.production)
    documents = SqliteDocumentStore(data_dir / "documents.db", busy_timeout=settings.calls.timeout_seconds)
    bus_settings = settings.event_bus if profile is None else profile.bus_settings(settings.event_bus)
    bus = SqliteEventBus(data_dir / "events.db", bus_settings, faults=faults)
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
    return guard_services(services, faults, profile)


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
