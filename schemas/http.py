"""HTTP request and response bodies of the onboarding API."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import Contract, Part

TenantStatus = Literal["PROVISIONING", "ACTIVE", "FAILED", "SUSPENDED", "OFFBOARDED"]


class TenantRequest(Contract):
    """The four values that identify an onboarding request (the dry-run body).

    Formats are not enforced here: a malformed value is a failed check, so the operator
    sees every problem at once.
    """

    tenant_id: str
    company_name: str
    admin_email: str
    subscription_plan: str

    def fingerprint_fields(self) -> tuple[str, str, str, str]:
        """The values a passed dry run must match for onboarding."""
        return (self.tenant_id, self.company_name, self.admin_email, self.subscription_plan)


class OnboardRequest(TenantRequest):
    """The onboarding body: the dry-run values plus destructive flags (default off)."""

    force_recreate_dataset: bool = False
    force_recreate_tables: bool = False


class CheckResult(Part):
    """One dry-run check."""

    name: str
    passed: bool
    detail: str


class ValidationSummary(Part):
    """Counts that always add up: total = passed + failed."""

    total_checks: int
    passed: int
    failed: int
    all_passed: bool


class DryRunResponse(Contract):
    """Result of a dry run; nothing was created."""

    status: Literal["SUCCESS", "FAILED"]
    validation_id: str
    tenant_id: str
    subscription_plan: str
    checks: list[CheckResult]
    validation_summary: ValidationSummary
    message: str
    ready_for_onboarding: bool
    expires_at: str


class OnboardAccepted(Contract):
    """202: provisioning goes on in the background; the API key is shown this once."""

    tenant_id: str
    api_key: str
    subscription_plan: str
    status: TenantStatus
    status_url: str
    message: str


class OnboardCompleted(Contract):
    """201: the tenant is ACTIVE (returned when `?wait=N` saw the outcome)."""

    tenant_id: str
    api_key: str
    subscription_plan: str
    status: Literal["ACTIVE"]
    dataset_created: bool
    tables_created: list[str]
    views_created: list[str]
    message: str


class StepStatus(Part):
    """Progress of one provisioning step."""

    name: str
    status: str
    attempts: int
    error: str | None = None
    started_at: str | None = None
    completed_at: str | None = None


class TenantStatusResponse(Contract):
    """Where a tenant stands, step by step."""

    tenant_id: str
    status: TenantStatus
    subscription_plan: str
    company_name: str
    created_at: str
    updated_at: str
    steps: list[StepStatus]
    error: str | None = None


class TenantSummary(Part):
    """One tenant in the operators' list: profile, plan, status and each step's status."""

    tenant_id: str
    company_name: str
    admin_email: str
    subscription_plan: str
    status: TenantStatus
    steps: list[StepStatus]
    created_at: str
    updated_at: str
    error: str | None = None


class TenantList(Contract):
    """`GET /api/v1/tenants`: a page of tenants, newest first."""

    count: int
    tenants: list[TenantSummary]
    next_page_token: str | None = Field(default=None, description="Pass as page_token for the next page; absent on the last page.")


class TenantOverview(Contract):
    """The tenant's row of `tenant_comprehensive_view`."""

    tenant_id: str
    company_name: str
    admin_email: str
    tenant_status: str
    plan_name: str
    subscription_status: str
    subscription_daily_limit: int
    subscription_monthly_limit: int
    subscription_concurrent_limit: int
    pipelines_run_today: int
    pipelines_succeeded_today: int
    pipelines_failed_today: int
    quota_status: Literal["AVAILABLE", "EXCEEDED"]
    daily_usage_percent: float


class ErrorDetail(Part):
    """A machine-readable code, the field at fault (if any) and a human message."""

    code: str
    message: str
    field: str | None = None


class ErrorResponse(Contract):
    """Every error body: `{"error": {...}}`."""

    error: ErrorDetail


class HealthResponse(Contract):
    """Liveness and which backends are wired."""

    status: Literal["ok"]
    backend: str
    checks: dict[str, str] = Field(default_factory=dict)


class RetryAccepted(Contract):
    """202: the failed steps of a FAILED tenant are provisioning again."""

    tenant_id: str
    status: TenantStatus
    retried_steps: list[str]
    status_url: str
    message: str


class DeadLetterEntry(Contract):
    """One message that was given up on: where it came from, why, after how many deliveries."""

    id: str
    status: Literal["OPEN", "RETRIED"]
    source: str
    reason: str
    attempts: int
    tenant_id: str | None = None
    step: str | None = None
    event_id: str | None = None
    payload_preview: str
    dead_lettered_at: str
    expire_at: str | None = Field(default=None, description="When a resolved (RETRIED) dead letter is deleted; none while OPEN.")


class DeadLetterList(Contract):
    """`GET /api/v1/dead-letters`."""

    count: int
    dead_letters: list[DeadLetterEntry]
    next_page_token: str | None = Field(default=None, description="Pass as page_token for the next page; absent on the last page.")


class BillingEventAccepted(Contract):
    """202: the billing message is on the billing-events topic; its outcome shows in the audit trail."""

    event_id: str
    tenant_id: str
    status: Literal["ACCEPTED"]
    events_url: str


class TenantEventRecord(Part):
    """One entry of a tenant's audit trail: what arrived and what was done with it.

    Once the tenant is purged its entries keep only ids, event types and times (`redacted`).
    """

    event_id: str
    tenant_id: str
    type: str
    new_plan: str | None = None
    occurred_at: str
    source: str | None = None
    outcome: Literal["applied", "ignored", "refused"] | None = None
    detail: str | None = None
    status_before: str | None = None
    status_after: str | None = None
    plan_before: str | None = None
    plan_after: str | None = None
    lifecycle_event: str | None = None
    recorded_at: str
    redacted: bool = False
    reason: str | None = Field(default=None, description="An operator's reason for an operator action.")
    actor: str | None = Field(default=None, description="The operator who acted, when the credential names one.")


class TenantEventsResponse(Contract):
    """A tenant's audit trail, oldest occurrence first."""

    tenant_id: str
    count: int
    events: list[TenantEventRecord]
    next_page_token: str | None = Field(default=None, description="Pass as page_token for the next page; absent on the last page.")


class PurgeResponse(Contract):
    """Offboarded tenants whose retention ended and whose data is now deleted."""

    purged: list[str]
    retained: int
    retention_days: int


class PipelineRunRequest(Contract):
    """The optional body of a pipeline run: the date it processes and its parameters, handed to the executor as given."""

    date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="The day the run processes (YYYY-MM-DD)")
    parameters: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=50)


class QuotaFigure(Part):
    """One limit: how much of it is used, and the plan's limit."""

    used: int
    limit: int


class QuotaStatus(Part):
    """The tenant's three limits after this request, as admission counts them (the tenant's own runs)."""

    daily: QuotaFigure
    monthly: QuotaFigure
    concurrent: QuotaFigure


class PipelineRunAdmitted(Contract):
    """200: the run is admitted, charged to the tenant's quota and handed to the executor (topic pipeline-runs)."""

    pipeline_logging_id: str
    tenant_id: str
    pipeline_id: str = Field(description="provider/domain/template")
    status: Literal["PENDING"]
    quota: QuotaStatus
    message: str


class PipelineRunStatus(Contract):
    """A pipeline run as recorded, after an executor's report."""

    pipeline_logging_id: str
    tenant_id: str
    pipeline_id: str
    status: Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]
    reason: str | None = None
    outcome: Literal["applied", "ignored"] = Field(description="ignored: the run had finished already (a duplicate, a late report)")


OperatorAction = Literal["suspend", "resume", "offboard"]


class OperatorActionRequest(Contract):
    """The body of an operator's suspend, resume or offboard: why (kept in the audit trail)."""

    reason: str = Field(min_length=1, max_length=500)


class OperatorActionResponse(Contract):
    """What an operator action did: the billing lifecycle's outcome, recorded in the audit trail as `event_id`."""

    tenant_id: str
    action: OperatorAction
    outcome: Literal["applied", "ignored"]
    detail: str
    status_before: TenantStatus
    status: TenantStatus
    event_id: str
    events_url: str


class ApiKeyRotateRequest(Contract):
    """Rotate a tenant's API key: why, and how long the old key keeps working (default: the configured grace)."""

    reason: str = Field(min_length=1, max_length=500)
    grace_hours: float | None = Field(default=None, ge=0, description="Hours the old key keeps working; 0 refuses it at once.")


class ApiKeyRotated(Contract):
    """The new API key, shown this once; the old one works until `previous_key_expires_at`."""

    tenant_id: str
    api_key: str
    key_id: str
    previous_key_id: str
    previous_key_expires_at: str
    grace_hours: float
    event_id: str


class ApiKeyRevokeRequest(Contract):
    """Revoke at once a key rotated out (by `key_id`), or every key still in its grace period (no `key_id`)."""

    reason: str = Field(min_length=1, max_length=500)
    key_id: str | None = Field(default=None, min_length=1, max_length=64)


class ApiKeysRevoked(Contract):
    """The keys revoked by this request (none when there was nothing left to revoke), and the key that still works."""

    tenant_id: str
    revoked: list[str]
    current_key_id: str
    event_id: str | None = None
