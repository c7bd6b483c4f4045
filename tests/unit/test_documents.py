"""Stored documents keep the format already in the stores: documents written before their models existed read and write back unchanged."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared.domain.documents import DeadLetterDocument, IdempotencyRecord, LatestValidation, TenantEventDocument, ValidationDocument
from shared.services import Services

# Each as the handlers wrote it when the HTTP model was the storage format.
STORED_DEAD_LETTER: dict[str, Any] = {
    "schema_version": "1",
    "id": "customer_123.1700000000000.view.1",
    "status": "OPEN",
    "source": "onboarding-view-push",
    "reason": "max delivery attempts reached; last error: RuntimeError: boom",
    "attempts": 5,
    "tenant_id": "customer_123",
    "step": "view",
    "event_id": "customer_123.1700000000000.view.1",
    "payload_preview": '{"schema_version":"1","event_id":"customer_123.1700000000000.view.1"}',
    "dead_lettered_at": "2026-03-01T12:00:00.000Z",
}
STORED_TENANT_EVENT: dict[str, Any] = {
    "event_id": "bill-0001",
    "tenant_id": "customer_123",
    "type": "plan_changed",
    "new_plan": "SCALE",
    "occurred_at": "2026-03-01T09:00:00.000Z",
    "source": "billing",
    "outcome": "applied",
    "detail": "plan PROFESSIONAL -> SCALE",
    "status_before": "ACTIVE",
    "status_after": "ACTIVE",
    "plan_before": "PROFESSIONAL",
    "plan_after": "SCALE",
    "lifecycle_event": "tenant.plan_changed",
    "recorded_at": "2026-03-01T12:00:00.000Z",
}
STORED_VALIDATION: dict[str, Any] = {
    "schema_version": "1",
    "status": "SUCCESS",
    "validation_id": "0f" * 16,
    "tenant_id": "customer_123",
    "subscription_plan": "PROFESSIONAL",
    "checks": [{"name": "tenant_id_format", "passed": True, "detail": "'customer_123' is a valid tenant id and dataset name"}],
    "validation_summary": {"total_checks": 1, "passed": 1, "failed": 0, "all_passed": True},
    "message": "Dry-run validation passed: 1/1 checks passed",
    "ready_for_onboarding": True,
    "expires_at": "2026-03-01T13:00:00.000Z",
    "fingerprint": "ab" * 32,
    "created_at": "2026-03-01T12:00:00.000Z",
    "request": {
        "schema_version": "1",
        "tenant_id": "customer_123",
        "company_name": "Acme Corporation",
        "admin_email": "admin@acme.com",
        "subscription_plan": "PROFESSIONAL",
    },
}
STORED_IDEMPOTENCY_RECORD: dict[str, Any] = {
    "id": "cd" * 32,
    "fingerprint": "ab" * 32,
    "tenant_id": "customer_123",
    "api_key_hash": "ef" * 32,
    "response": {
        "schema_version": "1",
        "tenant_id": "customer_123",
        "subscription_plan": "PROFESSIONAL",
        "status": "PROVISIONING",
        "status_url": "/api/v1/tenants/customer_123",
        "message": "Tenant accepted; provisioning has started",
    },
}
STORED_EXPIRING_IDEMPOTENCY_RECORD: dict[str, Any] = {
    **STORED_IDEMPOTENCY_RECORD,
    "created_at": "2026-11-27T04:14:57.100Z",
    "expires_at": "2026-11-28T04:14:57.100Z",
}
# Since records are swept, each also carries `expire_at` (the end of its replay window).
STORED_SWEPT_IDEMPOTENCY_RECORD: dict[str, Any] = {**STORED_EXPIRING_IDEMPOTENCY_RECORD, "expire_at": "2026-11-28T04:14:57.100Z"}
STORED_LATEST_VALIDATION: dict[str, Any] = {
    "fingerprint": "ab" * 32,
    "validation_id": "09c50e95d4a14bc7afc0f0e3f0a987f6",
    "tenant_id": "customer_123",
    "ready_for_onboarding": True,
    "expires_at": "2026-11-27T04:29:57.100Z",
    "created_at": "2026-11-27T04:14:57.100Z",
}
STORED = [
    (DeadLetterDocument, STORED_DEAD_LETTER),
    (TenantEventDocument, STORED_TENANT_EVENT),
    (ValidationDocument, STORED_VALIDATION),
    (IdempotencyRecord, STORED_IDEMPOTENCY_RECORD),
    (IdempotencyRecord, STORED_EXPIRING_IDEMPOTENCY_RECORD),
    (IdempotencyRecord, STORED_SWEPT_IDEMPOTENCY_RECORD),
    (LatestValidation, STORED_LATEST_VALIDATION),
]


@pytest.mark.parametrize(("model", "stored"), STORED, ids=lambda value: getattr(value, "__name__", ""))
def test_a_document_already_stored_reads_and_writes_back_unchanged(model: type[BaseModel], stored: dict[str, Any]) -> None:
    assert model.model_validate(stored).model_dump() == stored


@pytest.mark.parametrize(("model", "stored"), STORED, ids=lambda value: getattr(value, "__name__", ""))
def test_a_document_with_an_unknown_field_is_refused(model: type[BaseModel], stored: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate({**stored, "unexpected": 1})


def test_an_idempotency_record_from_before_records_had_ids_still_reads() -> None:
    older = {name: value for name, value in STORED_IDEMPOTENCY_RECORD.items() if name != "id"}
    assert IdempotencyRecord.model_validate(older).id is None


def test_a_dry_run_stores_its_validation_in_the_format_onboarding_reads(services: Services) -> None:
    from schemas.http import TenantRequest
    from shared.handlers.dryrun import run_dry_run
    from shared.services import VALIDATIONS
    from tests.conftest import SEED_REQUEST

    response = run_dry_run(TenantRequest.model_validate(SEED_REQUEST), services)
    stored = services.documents.get(VALIDATIONS, response.validation_id)
    # The stored format, plus the lifetime every new record carries.
    assert stored is not None and set(stored) == set(STORED_VALIDATION) | {"expire_at"}
    assert set(stored["request"]) == set(STORED_VALIDATION["request"])
    document = ValidationDocument.model_validate(stored)
    assert document.ready_for_onboarding and document.checks[0].name == response.checks[0].name


def test_an_onboarding_with_an_idempotency_key_stores_the_replay_record_in_its_format(services: Services) -> None:
    from schemas.http import OnboardRequest, TenantRequest
    from shared.handlers.dryrun import run_dry_run
    from shared.handlers.onboard import onboard
    from shared.services import IDEMPOTENCY_KEYS
    from tests.conftest import SEED_REQUEST

    run_dry_run(TenantRequest.model_validate(SEED_REQUEST), services)
    first = onboard(OnboardRequest.model_validate(SEED_REQUEST), "key-1", services)
    stored = services.documents.get(IDEMPOTENCY_KEYS, hashlib.sha256(b"key-1").hexdigest())
    assert stored is not None and set(stored) == set(STORED_SWEPT_IDEMPOTENCY_RECORD)
    assert stored["expire_at"] == stored["expires_at"]
    assert set(stored["response"]) == set(STORED_IDEMPOTENCY_RECORD["response"]) and "api_key" not in stored["response"]
    again = onboard(OnboardRequest.model_validate(SEED_REQUEST), "key-1", services)
    assert again.replayed and again.accepted == first.accepted
