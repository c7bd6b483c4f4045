"""Dry run: run every check, store the validation record, publish it. Creates nothing else."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from schemas.events import ValidationRecorded
from schemas.http import CheckResult, DryRunResponse, TenantRequest, ValidationSummary
from shared.domain.documents import LatestValidation, StoredCheck, StoredCheckCounts, StoredTenantRequest, ValidationDocument
from shared.domain.dryrun_config import CHECK_NAMES
from shared.domain.identifiers import request_fingerprint
from shared.handlers.checks import run_check
from shared.handlers.publishing import publish_event
from shared.ports import Transaction
from shared.services import LATEST_VALIDATIONS, VALIDATIONS, Services, iso

logger = logging.getLogger(__name__)

_FALLBACK_TTL_MINUTES = 15


def run_dry_run(request: TenantRequest, services: Services) -> DryRunResponse:
    """Validate an onboarding request without creating anything but the validation record."""
    config = services.dryrun.config  # None when it did not load: the dryrun_config check reports why
    checks: list[CheckResult] = [
        run_check(name, config.checks[name] if config else name != "dryrun_config", request, services) for name in CHECK_NAMES
    ]
    if config is None:
        checks[-1] = CheckResult(name="dryrun_config", passed=False, detail=services.dryrun.problem)
    passed = sum(check.passed for check in checks)
    all_passed = passed == len(checks)
    now = services.clock()
    ttl = timedelta(minutes=config.validation_ttl_minutes if config else _FALLBACK_TTL_MINUTES)
    response = DryRunResponse(
        status="SUCCESS" if all_passed else "FAILED",
        validation_id=uuid.uuid4().hex,
        tenant_id=request.tenant_id,
        subscription_plan=request.subscription_plan,
        checks=checks,
        validation_summary=ValidationSummary(total_checks=len(checks), passed=passed, failed=len(checks) - passed, all_passed=all_passed),
        message=f"Dry-run validation {'passed' if all_passed else 'failed'}: {passed}/{len(checks)} checks passed",
        ready_for_onboarding=all_passed,
        expires_at=iso(now + ttl),
    )
    expire_at = iso(now + max(ttl, services.settings.lifetimes.validations))
    record = _validation_document(response, request, created_at=iso(now), expire_at=expire_at)
    latest = LatestValidation(
        fingerprint=record.fingerprint,
        validation_id=record.validation_id,
        tenant_id=record.tenant_id,
        ready_for_onboarding=record.ready_for_onboarding,
        expires_at=record.expires_at,
        created_at=record.created_at,
        expire_at=expire_at,
    )

    def write(txn: Transaction) -> None:
        txn.set(VALIDATIONS, response.validation_id, record.model_dump())
        txn.set(LATEST_VALIDATIONS, latest.fingerprint, latest.model_dump())

    services.documents.run_transaction(write)
    publish_event(
        services,
        services.settings.topics.validations,
        ValidationRecorded(
            event_id=f"validation.{response.validation_id}",
            validation_id=response.validation_id,
            tenant_id=request.tenant_id,
            subscription_plan=request.subscription_plan,
            passed=all_passed,
            checks=checks,
            occurred_at=iso(now),
        ),
        tenant_id=request.tenant_id,
    )
    logger.info("dry run finished", extra={"tenant_id": request.tenant_id, "passed_checks": passed})
    return response


def _validation_document(response: DryRunResponse, request: TenantRequest, created_at: str, expire_at: str) -> ValidationDocument:
    """What `validations/{id}` keeps of a dry run: its answer, plus the request and its fingerprint for onboarding to find."""
    summary = response.validation_summary
    return ValidationDocument(
        status=response.status,
        validation_id=response.validation_id,
        tenant_id=response.tenant_id,
        subscription_plan=response.subscription_plan,
        checks=[StoredCheck(name=check.name, passed=check.passed, detail=check.detail) for check in response.checks],
        validation_summary=StoredCheckCounts(
            total_checks=summary.total_checks, passed=summary.passed, failed=summary.failed, all_passed=summary.all_passed
        ),
        message=response.message,
        ready_for_onboarding=response.ready_for_onboarding,
        expires_at=response.expires_at,
        fingerprint=request_fingerprint(request),
        created_at=created_at,
        expire_at=expire_at,
        request=StoredTenantRequest(
            tenant_id=request.tenant_id,
            company_name=request.company_name,
            admin_email=request.admin_email,
            subscription_plan=request.subscription_plan,
        ),
    )
