"""Dry run: run every check, store the validation record, publish it. Creates nothing else."""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import timedelta

from schemas.events import ValidationRecorded
from schemas.http import CheckResult, DryRunResponse, TenantRequest, ValidationSummary
from shared.domain.dryrun_config import CHECK_NAMES, DryRunConfig, load_dryrun_config
from shared.handlers.checks import run_check
from shared.handlers.publishing import publish_event
from shared.ports import EXPIRE_AT
from shared.services import VALIDATIONS, Services, iso

logger = logging.getLogger(__name__)

_FALLBACK_TTL_MINUTES = 15


def request_fingerprint(request: TenantRequest) -> str:
    """A stable id of the four values a dry run vouches for."""
    return hashlib.sha256("\x1f".join(request.fingerprint_fields()).encode()).hexdigest()


def _config_or_none() -> DryRunConfig | None:
    try:
        return load_dryrun_config()
    except Exception:  # reported by the dryrun_config check itself
        return None


def run_dry_run(request: TenantRequest, services: Services) -> DryRunResponse:
    """Validate an onboarding request without creating anything but the validation record."""
    config = _config_or_none()
    checks: list[CheckResult] = [
        run_check(name, config.checks[name] if config else name != "dryrun_config", request, services) for name in CHECK_NAMES
    ]
    if config is None:
        checks[-1] = CheckResult(name="dryrun_config", passed=False, detail=_config_error())
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
    record = response.model_dump()
    record.update(
        {
            "fingerprint": request_fingerprint(request),
            "created_at": iso(now),
            "request": request.model_dump(),
            EXPIRE_AT: iso(now + max(ttl, services.settings.lifetimes.validations)),
        }
    )
    services.documents.set(VALIDATIONS, response.validation_id, record)
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


def _config_error() -> str:
    try:
        load_dryrun_config()
    except Exception as error:
        return f"dryrun.yml does not load: {type(error).__name__}: {error}"[:300]
    return "dryrun.yml could not be read"
