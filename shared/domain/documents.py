"""Stored documents other than the tenant state: each has its own model, apart from the HTTP bodies built from it.

Field for field, each model is the format already stored (`schema_version` included where
documents carry it), so existing documents read as before. A response model can change
without rewriting stored data, and a stored field need not be shown to clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DocumentVersion = Literal["1"]
DeadLetterStatus = Literal["OPEN", "RETRIED"]
AuditOutcome = Literal["applied", "ignored", "refused"]


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _added(default: object) -> Any:
    """A field added after documents were stored: left out of a document while it has its default, so older ones write back unchanged."""
    return Field(default=default, exclude_if=lambda value: value == default)


class StoredCheck(_Document):
    """One dry-run check as recorded."""

    name: str
    passed: bool
    detail: str


class StoredCheckCounts(_Document):
    """The recorded counts of a dry run."""

    total_checks: int
    passed: int
    failed: int
    all_passed: bool


class StoredTenantRequest(_Document):
    """The four values a dry run vouched for."""

    schema_version: DocumentVersion = "1"
    tenant_id: str
    company_name: str
    admin_email: str
    subscription_plan: str


class ValidationDocument(_Document):
    """`validations/{validation_id}`: a dry run's outcome; onboarding looks it up by fingerprint."""

    schema_version: DocumentVersion = "1"
    status: Literal["SUCCESS", "FAILED"]
    validation_id: str
    tenant_id: str
    subscription_plan: str
    checks: list[StoredCheck]
    validation_summary: StoredCheckCounts
    message: str
    ready_for_onboarding: bool
    expires_at: str
    fingerprint: str
    created_at: str
    request: StoredTenantRequest
    expire_at: str | None = _added(None)  # when the record is deleted (sweeper, Firestore TTL)


class LatestValidation(_Document):
    """`latest_validations/{fingerprint}`: the latest dry run of four values, written with it; onboarding reads only this."""

    fingerprint: str
    validation_id: str
    tenant_id: str
    ready_for_onboarding: bool
    expires_at: str
    created_at: str
    expire_at: str | None = _added(None)  # when the record is deleted (sweeper, Firestore TTL)


class StoredAcceptance(_Document):
    """The 202 body of an onboarding, without its API key (the key is kept encrypted in `api_keys`)."""

    schema_version: DocumentVersion = "1"
    tenant_id: str
    subscription_plan: str
    status: Literal["PROVISIONING", "ACTIVE", "FAILED", "SUSPENDED", "OFFBOARDED"]
    status_url: str
    message: str


class IdempotencyRecord(_Document):
    """`idempotency_keys/{sha256 of the key}`: what a retry with the same Idempotency-Key gets again."""

    id: str | None = None  # absent from records written before purge needed to find them
    fingerprint: str
    tenant_id: str
    api_key_hash: str
    response: StoredAcceptance
    # Absent from records written before replays expired (such a record never replays again).
    created_at: str | None = Field(default=None, exclude_if=lambda value: value is None)
    expires_at: str | None = Field(default=None, exclude_if=lambda value: value is None)
    expire_at: str | None = _added(None)  # when the sweeper (Firestore TTL) deletes the record: its replay window's end


class DeadLetterDocument(_Document):
    """`dead_letters/{id}`: a message given up on, where it came from, why, after how many deliveries."""

    schema_version: DocumentVersion = "1"
    id: str
    status: DeadLetterStatus
    source: str
    reason: str
    attempts: int
    tenant_id: str | None = None
    step: str | None = None
    event_id: str | None = None
    payload_preview: str
    dead_lettered_at: str
    expire_at: str | None = _added(None)  # set when the dead letter is resolved (RETRIED)


OPERATOR_SOURCE = "operator"  # the source of an audit entry an operator's action wrote


@dataclass(frozen=True)
class AuditNote:
    """What an operator adds to an audit entry: why, and who (when the credential names someone)."""

    reason: str
    actor: str | None


class TenantEventDocument(_Document):
    """`tenant_events/{id}`: one entry of a tenant's audit trail (a billing entry is keyed like its processed marker).

    Once the tenant is purged, an entry keeps only ids, its type and times (`redacted`).
    """

    event_id: str
    tenant_id: str
    type: str
    new_plan: str | None = None
    occurred_at: str
    source: str | None = _added(None)
    outcome: AuditOutcome | None = _added(None)
    detail: str | None = _added(None)
    status_before: str | None = _added(None)
    status_after: str | None = _added(None)
    plan_before: str | None = _added(None)
    plan_after: str | None = _added(None)
    lifecycle_event: str | None = None
    recorded_at: str
    redacted: bool = _added(False)
    reason: str | None = _added(None)  # an operator action's reason
    actor: str | None = _added(None)  # the operator who acted


RunStatusName = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]


class PipelineRunDocument(_Document):
    """`pipeline_runs/{pipeline_logging_id}`: one admitted run, its status and the lease it holds while unfinished.

    `lease_until` is removed once the run finishes: the sweeper orders unfinished runs by it.
    """

    schema_version: DocumentVersion = "1"
    pipeline_logging_id: str
    tenant_id: str
    pipeline_id: str
    status: RunStatusName
    admitted_at: str
    lease_until: str | None = _added(None)  # absent, not null, once finished: Firestore orders a null among the values
    started_at: str | None = None
    finished_at: str | None = None
    reason: str | None = None
    platform: bool = False  # a run the platform made itself (onboarding's validation): not charged
    date: str | None = None
    parameters: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class RunAdmissionRecord(_Document):
    """`idempotency_keys/{sha256 of tenant and key}`: a pipeline run admitted under an Idempotency-Key, replayed until it expires.

    The same collection, lifetime (http.idempotency_ttl_hours) and `expire_at` as onboarding's
    records, so the sweeper, Firestore's TTL policy and the purge treat both alike.
    """

    kind: Literal["pipeline_run"] = "pipeline_run"
    id: str
    fingerprint: str
    tenant_id: str
    pipeline_logging_id: str
    response: str  # the 200 body as first sent (JSON)
    created_at: str
    expires_at: str
    expire_at: str
