"""Settings: the values of `configs/settings/defaults.yml`, overridden by ONBOARDING_* environment variables.

The files are read by `shared.bootstrap`; this module only declares and validates.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shared.domain.steps import declaration, step_names

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Topics(_Strict):
    """Pub/Sub topic names. Each step has its own (declared in shared.domain.steps); `steps` renames some."""

    validations: str
    billing: str
    lifecycle: str
    pipeline_runs: str = "pipeline-runs"
    pipeline_run_results: str = "pipeline-run-results"
    steps: dict[str, str] = Field(default_factory=dict)

    def step(self, name: str) -> str:
        """The topic of step `name`: its declared topic unless `steps` renames it."""
        return self.steps.get(name) or declaration(name).topic

    def names(self) -> list[str]:
        """Every topic: the validations, billing and lifecycle topics and each declared step's."""
        steps = (self.step(name) for name in step_names())
        return [self.validations, *steps, self.billing, self.lifecycle, self.pipeline_runs, self.pipeline_run_results]


class EventBusSettings(_Strict):
    """Delivery policy of the embedded bus (Pub/Sub's is set by deploy.sh)."""

    workers: int = Field(ge=1, le=256)
    max_attempts: int = Field(ge=1, le=100)
    ack_deadline_seconds: float = Field(gt=0)
    min_backoff_seconds: float = Field(ge=0)
    max_backoff_seconds: float = Field(gt=0)
    poll_interval_seconds: float = Field(gt=0)


class HttpSettings(_Strict):
    """Limits of the HTTP functions."""

    max_body_bytes: int = Field(gt=0)
    max_wait_seconds: int = Field(ge=0)
    idempotency_ttl_hours: float = Field(default=24, gt=0)


class ApiKeySettings(_Strict):
    """API key rotation: how long a replaced key keeps working, by default and at most."""

    rotation_grace_hours: float = Field(default=24, ge=0)
    max_rotation_grace_hours: float = Field(default=168, ge=0)


class BillingSettings(_Strict):
    """How far a billing event may be dated ahead of this service's clock before it is refused."""

    max_future_skew_seconds: int = Field(default=300, ge=0, le=86_400)


class PipelineRunSettings(_Strict):
    """Admitted pipeline runs: how long one holds its slot without a report, and the local executor."""

    lease_seconds: float = Field(default=3600, gt=0)  # no report for this long: FAILED, TIMED_OUT
    local_executor_seconds: float = Field(default=1, ge=0)  # `make run` completes each run SUCCEEDED after this
    local_executor: bool = True  # off: runs stay PENDING for an executor of your own


class GcpSettings(_Strict):
    """Where the Google Cloud backends live."""

    project: str = ""
    region: str = ""
    kms_key_name: str = ""
    bigquery_location: str = "US"
    bigquery_api_endpoint: str = ""
    kms_api_endpoint: str = ""


class CallSettings(_Strict):
    """Time limit and bounded, jittered retry of every backend call."""

    timeout_seconds: float = Field(default=10.0, gt=0)
    attempts: int = Field(default=3, ge=1, le=10)
    min_backoff_seconds: float = Field(default=0.02, ge=0)
    max_backoff_seconds: float = Field(default=0.5, gt=0)


class AuthSettings(_Strict):
    """Who may call the operator routes, and the public URL the front door serves.

    `operators`: "token" (a local bearer token) or "google" (Google-signed ID tokens); empty
    picks "google" on the gcp backend in production and "token" everywhere else.
    """

    operators: Literal["", "token", "google"] = ""
    operator_token: SecretStr = SecretStr("")
    operator_members: tuple[str, ...] = ()
    operator_audiences: tuple[str, ...] = ()
    public_base_url: str = Field(default="", pattern=r"^(https?://[^\s/?#]+(/[^\s?#]*)?)?$")


# Pub/Sub keeps a message at most 31 days (topic or subscription retention), and a subscription
# can seek back and replay that far: a processed marker must outlive it, or a replay runs twice.
# https://cloud.google.com/pubsub/docs/subscription-properties#message-retention-duration
PUBSUB_MAX_RETENTION_DAYS = 31


class LifetimeSettings(_Strict):
    """How long records live before the sweeper (and, on Google Cloud, Firestore's TTL policies) delete them."""

    validations_days: float = Field(default=30, gt=0)
    processed_events_days: float = Field(default=35, gt=PUBSUB_MAX_RETENTION_DAYS)
    resolved_dead_letters_days: float = Field(default=30, gt=0)
    delivered_messages_hours: float = Field(default=24, gt=0)
    sweep_every_seconds: float = Field(default=300, gt=0)
    sweep_batch: int = Field(default=500, ge=1, le=10_000)

    @property
    def validations(self) -> timedelta:
        """Lifetime of a validation record (its dry run's own expiry is shorter)."""
        return timedelta(days=self.validations_days)

    @property
    def processed_events(self) -> timedelta:
        """Lifetime of a processed-event marker."""
        return timedelta(days=self.processed_events_days)

    @property
    def resolved_dead_letters(self) -> timedelta:
        """Lifetime of a dead letter once it was retried."""
        return timedelta(days=self.resolved_dead_letters_days)

    @property
    def delivered_messages(self) -> timedelta:
        """How long the embedded bus keeps a message every subscription has settled."""
        return timedelta(hours=self.delivered_messages_hours)


class CloudProfileSettings(_Strict):
    """A Google Cloud behaviour profile for the embedded backends (latency, quotas, contention), see shared/cloud_profile.py."""

    name: Literal["", "gcp"] = ""
    time_scale: float = Field(default=1.0, gt=0, le=100)  # 1 = real time; 0.01 runs every wait 100x faster
    seed: int | None = None


class Settings(_Strict):
    """Everything the bootstrap needs to wire adapters."""

    backend: Literal["embedded", "gcp"]
    environment: Literal["development", "production"]
    data_dir: Path
    central_dataset: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,1023}$")
    topics: Topics
    event_bus: EventBusSettings
    http: HttpSettings
    gcp: GcpSettings
    faults: str = ""
    faults_seed: int | None = None
    calls: CallSettings = CallSettings()
    auth: AuthSettings = AuthSettings()
    billing: BillingSettings = BillingSettings()
    api_keys: ApiKeySettings = ApiKeySettings()
    lifetimes: LifetimeSettings = LifetimeSettings()
    cloud_profile: CloudProfileSettings = CloudProfileSettings()
    pipeline_runs: PipelineRunSettings = PipelineRunSettings()

    @property
    def production(self) -> bool:
        """True when running for real customers: local keys and fault injection are refused."""
        return self.environment == "production"

    @property
    def operator_auth(self) -> Literal["token", "google"]:
        """How operators authenticate under these settings."""
        if self.auth.operators:
            return self.auth.operators
        return "google" if self.backend == "gcp" and self.production else "token"


_ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "ONBOARDING_BACKEND": ("backend",),
    "ONBOARDING_ENV": ("environment",),
    "ONBOARDING_DATA_DIR": ("data_dir",),
    "ONBOARDING_CENTRAL_DATASET": ("central_dataset",),
    "ONBOARDING_FAULTS": ("faults",),
    "ONBOARDING_FAULTS_SEED": ("faults_seed",),
    "ONBOARDING_BUS_WORKERS": ("event_bus", "workers"),
    "ONBOARDING_BUS_MAX_ATTEMPTS": ("event_bus", "max_attempts"),
    "ONBOARDING_BUS_MIN_BACKOFF_SECONDS": ("event_bus", "min_backoff_seconds"),
    "ONBOARDING_BUS_MAX_BACKOFF_SECONDS": ("event_bus", "max_backoff_seconds"),
    "ONBOARDING_BUS_ACK_DEADLINE_SECONDS": ("event_bus", "ack_deadline_seconds"),
    "ONBOARDING_CALL_TIMEOUT_SECONDS": ("calls", "timeout_seconds"),
    "ONBOARDING_CALL_ATTEMPTS": ("calls", "attempts"),
    "ONBOARDING_BILLING_MAX_FUTURE_SKEW_SECONDS": ("billing", "max_future_skew_seconds"),
    "ONBOARDING_IDEMPOTENCY_TTL_HOURS": ("http", "idempotency_ttl_hours"),
    "ONBOARDING_API_KEY_GRACE_HOURS": ("api_keys", "rotation_grace_hours"),
    "ONBOARDING_SWEEP_EVERY_SECONDS": ("lifetimes", "sweep_every_seconds"),
    "ONBOARDING_CLOUD_PROFILE": ("cloud_profile", "name"),
    "ONBOARDING_CLOUD_TIME_SCALE": ("cloud_profile", "time_scale"),
    "ONBOARDING_CLOUD_PROFILE_SEED": ("cloud_profile", "seed"),
    "ONBOARDING_RUN_LEASE_SECONDS": ("pipeline_runs", "lease_seconds"),
    "ONBOARDING_LOCAL_EXECUTOR_SECONDS": ("pipeline_runs", "local_executor_seconds"),
    "ONBOARDING_LOCAL_EXECUTOR": ("pipeline_runs", "local_executor"),
    "GOOGLE_CLOUD_PROJECT": ("gcp", "project"),
    "ONBOARDING_GCP_REGION": ("gcp", "region"),
    "ONBOARDING_KMS_KEY_NAME": ("gcp", "kms_key_name"),
    "ONBOARDING_BIGQUERY_LOCATION": ("gcp", "bigquery_location"),
    "BIGQUERY_API_ENDPOINT": ("gcp", "bigquery_api_endpoint"),
    "KMS_API_ENDPOINT": ("gcp", "kms_api_endpoint"),
    "ONBOARDING_OPERATOR_AUTH": ("auth", "operators"),
    "ONBOARDING_OPERATOR_TOKEN": ("auth", "operator_token"),
    "ONBOARDING_OPERATORS": ("auth", "operator_members"),
    "ONBOARDING_OPERATOR_AUDIENCES": ("auth", "operator_audiences"),
    "ONBOARDING_PUBLIC_BASE_URL": ("auth", "public_base_url"),
}
_LIST_SETTINGS = {"ONBOARDING_OPERATORS", "ONBOARDING_OPERATOR_AUDIENCES"}


def _apply(raw: dict[str, Any], path: tuple[str, ...], value: str | list[str]) -> None:
    node = raw
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def settings_from(raw: dict[str, Any], env: Mapping[str, str]) -> Settings:
    """Validated settings: the defaults file's values with environment overrides applied."""
    for name, path in _ENV_OVERRIDES.items():
        if env.get(name):
            value = env[name]
            _apply(raw, path, [item.strip() for item in value.split(",") if item.strip()] if name in _LIST_SETTINGS else value)
    settings = Settings.model_validate(raw)
    if not settings.data_dir.is_absolute():
        settings = settings.model_copy(update={"data_dir": REPO_ROOT / settings.data_dir})
    return settings
