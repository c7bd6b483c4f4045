"""The one place that reads configuration and wires adapters into Services.

`python -m shared.bootstrap` creates the central dataset and tables (idempotent).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import replace

from shared.adapters.guarded import CallGuard, GuardedDocumentStore, GuardedEventBus, GuardedKeyManager, GuardedWarehouse
from shared.config import Settings, load_settings
from shared.domain.plans import default_plans
from shared.faults import FaultInjector, injector_for
from shared.handlers.warehouse_setup import ensure_central_tables
from shared.logging_setup import configure_logging
from shared.ports import OperatorAuthenticator
from shared.services import Credentials, Services

logger = logging.getLogger(__name__)


def build_services(settings: Settings | None = None) -> Services:
    """Services for the configured backend (embedded by default)."""
    settings = settings or load_settings()
    if settings.backend == "gcp":
        # Imported only here so the embedded path never loads the Google client libraries.
        wiring = importlib.import_module("shared.adapters.gcp.wiring")
        build: Callable[[Settings], Services] = wiring.build_gcp_services
        return replace(guard_services(build(settings), injector_for(settings)), operators=operator_authenticator(settings))
    return build_embedded_services(settings)


def operator_authenticator(settings: Settings) -> OperatorAuthenticator:
    """The configured way operators prove who they are: a local token, or Google ID tokens."""
    if settings.operator_auth == "google":
        module = importlib.import_module("shared.adapters.gcp.google_id_token_authenticator")
        google: OperatorAuthenticator = module.GoogleIdTokenAuthenticator(settings.auth.operator_audiences, settings.auth.operator_members)
        return google
    from shared.adapters.embedded.local_operator_authenticator import LocalOperatorAuthenticator

    token = settings.auth.operator_token.get_secret_value()
    return LocalOperatorAuthenticator.configured(token, settings.data_dir, production=settings.production)


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

    data_dir = settings.data_dir
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
        operators=operator_authenticator(settings),
    )
    return guard_services(services, faults)


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
