"""The dependencies every handler receives: ports, configuration and a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.adapters.guarded import CallGuard
from shared.config import Settings
from shared.domain.dryrun_config import DryRunSetup
from shared.domain.lifecycle_config import LifecyclePolicy
from shared.domain.plans import PlanCatalog
from shared.faults import FaultInjector
from shared.ports import DocumentStore, EventBus, KeyManager, OperatorAuthenticator, Warehouse

TENANTS = "tenants"
VALIDATIONS = "validations"
LATEST_VALIDATIONS = "latest_validations"  # request fingerprint -> the latest dry run of those four values
API_KEYS = "api_keys"
PROCESSED_EVENTS = "processed_events"
IDEMPOTENCY_KEYS = "idempotency_keys"
DEAD_LETTERS = "dead_letters"
OUTBOX = "outbox"  # step commands committed with the state change, until published
TENANT_EVENTS = "tenant_events"  # the audit trail: one record per billing or lifecycle event of a tenant
PIPELINE_RUNS = "pipeline_runs"  # pipeline_logging_id -> an admitted run, its status and lease
TENANT_IDS = "tenant_ids"  # folded tenant id -> the tenant holding it; no two tenants differ only by case


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 with a Z suffix."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Credentials:
    """How the gcp_credentials check learns whether this deployment can reach its cloud."""

    check: Callable[[], tuple[bool, str]]


@dataclass(frozen=True)
class Adapters:
    """One backend's adapters for the four ports and its credentials check, before configuration joins them."""

    documents: DocumentStore
    bus: EventBus
    warehouse: Warehouse
    keys: KeyManager
    credentials: Credentials


@dataclass
class Services:
    """Ports and configuration values, wired once per process by `shared.bootstrap`."""

    settings: Settings
    documents: DocumentStore
    bus: EventBus
    warehouse: Warehouse
    keys: KeyManager
    plans: PlanCatalog
    credentials: Credentials
    dryrun: DryRunSetup
    lifecycle: LifecyclePolicy
    clock: Callable[[], datetime] = field(default=utcnow)
    faults: FaultInjector | None = None
    guard: CallGuard | None = None
    operators: OperatorAuthenticator | None = None  # None: no operator is admitted

    def now(self) -> str:
        """The current time as an ISO string."""
        return iso(self.clock())

    @property
    def central(self) -> str:
        """The central dataset's name."""
        return self.settings.central_dataset

    def close(self) -> None:
        """Release every adapter."""
        for port in (self.bus, self.documents, self.warehouse):
            port.close()
