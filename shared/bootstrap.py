"""The one place that reads configuration and wires adapters into Services.

Every file under `configs/` and the ONBOARDING_* environment are read here, once per
Services built, and handed down as values: the domain and the handlers read no file.
Each backend's adapters are imported inside the branch that builds them, so Google Cloud
mode never loads DuckDB or sqlglot and embedded mode never loads the Google client libraries.

`python -m shared.bootstrap` creates the central dataset and tables (idempotent).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from shared.adapters.guarded import CallGuard, GuardedDocumentStore, GuardedEventBus, GuardedKeyManager, GuardedWarehouse
from shared.cloud_profile import CloudProfile, profile_for
from shared.config import CONFIG_DIR, Settings, settings_from
from shared.domain.dryrun_config import DryRunConfig, DryRunSetup
from shared.domain.lifecycle_config import LifecyclePolicy
from shared.domain.plans import PlanCatalog, plan_catalog
from shared.faults import FaultInjector, injector_for
from shared.handlers.warehouse_setup import bootstrap_warehouse
from shared.logging_setup import configure_logging
from shared.ports import OperatorAuthenticator
from shared.services import Adapters, Credentials, Services

logger = logging.getLogger(__name__)

SETTINGS_PATH = CONFIG_DIR / "settings" / "defaults.yml"
PLANS_PATH = CONFIG_DIR / "plans.yml"
DRYRUN_CONFIG_PATH = CONFIG_DIR / "setup" / "dryrun" / "dryrun.yml"
LIFECYCLE_PATH = CONFIG_DIR / "lifecycle.yml"


def _read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the defaults file and apply environment overrides (the process environment by default)."""
    return settings_from(_read_yaml(SETTINGS_PATH), dict(os.environ) if env is None else env)


def read_plans(path: Path = PLANS_PATH) -> PlanCatalog:
    """The plan catalog of this deployment."""
    return plan_catalog(_read_yaml(path))


def read_lifecycle_policy(path: Path = LIFECYCLE_PATH) -> LifecyclePolicy:
    """The lifecycle policy of this deployment (an empty file means the defaults)."""
    return LifecyclePolicy.model_validate(_read_yaml(path) or {})


def read_dryrun_config(path: Path = DRYRUN_CONFIG_PATH) -> DryRunSetup:
    """The dry-run config, or why it does not load: a broken file fails the dryrun_config check, not the start."""
    try:
        return DryRunSetup(config=DryRunConfig.model_validate(_read_yaml(path)))
    except Exception as error:
        return DryRunSetup(config=None, problem=f"dryrun.yml does not load: {type(error).__name__}: {error}"[:300])


def build_services(settings: Settings | None = None) -> Services:
    """Services for the configured backend (embedded by default)."""
    settings = settings or load_settings()
    if settings.backend == "gcp":
        profile_for(settings)  # refuses ONBOARDING_CLOUD_PROFILE on the real backends
        return build_gcp_services(settings)
    return build_embedded_services(settings)


def build_gcp_services(settings: Settings) -> Services:
    """Firestore, Pub/Sub, BigQuery and Cloud KMS for settings.gcp.project."""
    # Imported only here so the embedded path never loads the Google client libraries.
    wiring = importlib.import_module("shared.adapters.gcp.wiring")
    build: Callable[[Settings], Adapters] = wiring.gcp_adapters
    return assemble(settings, build(settings), injector_for(settings))


def assemble(settings: Settings, adapters: Adapters, faults: FaultInjector | None, profile: CloudProfile | None = None) -> Services:
    """Adapters plus every configuration value the handlers use, each port behind a CallGuard."""
    services = Services(
        settings=settings,
        documents=adapters.documents,
        bus=adapters.bus,
        warehouse=adapters.warehouse,
        keys=adapters.keys,
        plans=read_plans(),
        credentials=adapters.credentials,
        dryrun=read_dryrun_config(),
        lifecycle=read_lifecycle_policy(),
        operators=operator_authenticator(settings),
    )
    return guard_services(services, faults, profile)


def operator_authenticator(settings: Settings) -> OperatorAuthenticator:
    """The configured way operators prove who they are: a local token, or Google ID tokens."""
    if settings.operator_auth == "google":
        module = importlib.import_module("shared.adapters.gcp.google_id_token_authenticator")
        google: OperatorAuthenticator = module.GoogleIdTokenAuthenticator(settings.auth.operator_audiences, settings.auth.operator_members)
        return google
    from shared.adapters.local_operator_authenticator import LocalOperatorAuthenticator

    token = settings.auth.operator_token.get_secret_value()
    return LocalOperatorAuthenticator.configured(token, settings.data_dir, production=settings.production)


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
    from shared.adapters.embedded.sqlite_support import private_data_dir

    data_dir = private_data_dir(settings.data_dir)
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

    adapters = Adapters(documents=documents, bus=bus, warehouse=warehouse, keys=keys, credentials=Credentials(check=embedded_credentials))
    return assemble(settings, adapters, faults, profile)


def main() -> None:
    """Create the central dataset and tables for the configured backend."""
    configure_logging()
    services = build_services()
    try:
        tables = bootstrap_warehouse(services)
        logger.info("central tables ready", extra={"dataset": services.central, "tables": tables})
    finally:
        services.close()


if __name__ == "__main__":
    main()
