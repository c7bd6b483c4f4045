"""Onboard: after a passed dry run, create the state document and API key, then publish the steps."""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas.http import OnboardAccepted, OnboardCompleted, OnboardRequest
from shared.domain.api_keys import generate_api_key, hash_api_key
from shared.domain.documents import IdempotencyRecord, LatestValidation, StoredAcceptance
from shared.domain.errors import DryRunRequired, IdempotencyKeyReused, InvalidRequest, TenantExists
from shared.domain.identifiers import case_twin_problem, company_name_problem, folded_tenant_id, request_fingerprint
from shared.domain.tenant import TenantState, dataset_action_for, initial_steps
from shared.handlers.provisioning import COMPREHENSIVE_VIEW, VALIDATION_TABLE, apply_at_onboarding, published_at_onboarding
from shared.handlers.step_commands import relay, stage_steps, status_url
from shared.ports import BackendError, Document, Transaction
from shared.services import API_KEYS, IDEMPOTENCY_KEYS, LATEST_VALIDATIONS, TENANT_IDS, TENANTS, Services, iso

logger = logging.getLogger(__name__)
# A replay hands out the tenant's API key again: only while the tenant is being or has been created.
REPLAYABLE_STATUSES = frozenset({"PROVISIONING", "ACTIVE"})


@dataclass(frozen=True)
class OnboardResult:
    """What the HTTP layer needs: the 202 body (with the key) and whether it was a replay."""

    accepted: OnboardAccepted
    replayed: bool


def _idempotency_doc_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _require_passed_dry_run(request: OnboardRequest, fingerprint: str, now: datetime, services: Services) -> None:
    """The latest dry run of these exact values passed and has not expired: one read, however many came before."""
    raw = services.documents.get(LATEST_VALIDATIONS, fingerprint)
    latest = LatestValidation.model_validate(raw) if raw is not None else None
    if latest is not None and latest.ready_for_onboarding and datetime.fromisoformat(latest.expires_at) > now:
        return
    raise DryRunRequired(
        "no passed, unexpired dry run for these exact values: run POST /api/v1/tenants/dryrun first",
        field="tenant_id",
    )


def _replay(raw: dict[str, Any], services: Services) -> OnboardResult:
    record = IdempotencyRecord.model_validate(raw)
    key_doc = services.documents.get(API_KEYS, record.api_key_hash)
    if key_doc is None:
        raise BackendError("the key of the original response is gone")
    ciphertext = base64.b64decode(key_doc["ciphertext"])
    api_key = services.keys.decrypt(ciphertext, record.tenant_id.encode()).decode()
    first = record.response
    accepted = OnboardAccepted(
        tenant_id=first.tenant_id,
        api_key=api_key,
        subscription_plan=first.subscription_plan,
        status=first.status,
        status_url=first.status_url,
        message=first.message,
    )
    return OnboardResult(accepted=accepted, replayed=True)


def _replayable(raw: dict[str, Any] | None, tenant: dict[str, Any] | None, now: datetime) -> dict[str, Any] | None:
    """`raw` if it may still replay its response (and so hand out its key), else None.

    Only until it expires, and only while the tenant it created is still that tenant (not
    purged and onboarded again) and still PROVISIONING or ACTIVE: a suspended or offboarded
    tenant's key is never handed out again. A record that may not replay counts as absent.
    """
    if raw is None or tenant is None:
        return None
    record = IdempotencyRecord.model_validate(raw)
    if record.expires_at is None or datetime.fromisoformat(record.expires_at) <= now:
        return None
    if tenant.get("api_key_hash") != record.api_key_hash or tenant.get("status") not in REPLAYABLE_STATUSES:
        return None
    return raw


def _replay_if_recorded(idempotency_id: str | None, fingerprint: str, services: Services) -> OnboardResult | None:
    record = services.documents.get(IDEMPOTENCY_KEYS, idempotency_id) if idempotency_id else None
    if record is None:
        return None
    record = _replayable(record, services.documents.get(TENANTS, record["tenant_id"]), services.clock())
    if record is None:
        return None
    if record["fingerprint"] != fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was used for a different request", field="Idempotency-Key")
    return _replay(record, services)


def onboard(request: OnboardRequest, idempotency_key: str | None, services: Services) -> OnboardResult:
    """Create the tenant (state document, API key) and start its provisioning steps."""
    problem = company_name_problem(request.company_name)
    if problem is not None:  # the dry run fails on it too; this keeps it out of the tenant and the warehouse
        raise InvalidRequest(problem, field="company_name")
    fingerprint = request_fingerprint(request)
    idempotency_id = _idempotency_doc_id(idempotency_key) if idempotency_key else None
    replayed = _replay_if_recorded(idempotency_id, fingerprint, services)
    if replayed is not None:
        return replayed
    try:
        _require_passed_dry_run(request, fingerprint, services.clock(), services)
    except DryRunRequired:
        # An existing tenant is the answer that tells the client more (also once a replay record expired).
        if services.documents.get(TENANTS, request.tenant_id) is not None:
            raise TenantExists(f"tenant '{request.tenant_id}' already exists", field="tenant_id") from None
        raise
    # An existing tenant, a case twin or a concurrent request with the same key are all found
    # by the transaction below, which reads those documents anyway: no separate trip first.
    # Decided once, here: the tenant does not exist, so a dataset of its name is an orphan. Only
    # the force flags act on an orphan; without them the step creates the dataset if absent and
    # reuses it otherwise (its `dataset_created` fact says which), so no look is needed first.
    dataset_action = dataset_action_for(
        (request.force_recreate_dataset or request.force_recreate_tables) and services.warehouse.dataset_exists(request.tenant_id),
        request.force_recreate_dataset,
        request.force_recreate_tables,
    )
    api_key = generate_api_key(request.tenant_id)
    key_hash = hash_api_key(api_key)
    ciphertext = services.keys.encrypt(api_key.encode(), request.tenant_id.encode())
    now = services.now()
    accepted = OnboardAccepted(
        tenant_id=request.tenant_id,
        api_key=api_key,
        subscription_plan=request.subscription_plan,
        status="PROVISIONING",
        status_url=status_url(request.tenant_id),
        message="Tenant accepted; provisioning has started",
    )
    # The steps that only record something in the state document are done in the transaction
    # that creates it; the others are staged in it and published after the commit.
    state = apply_at_onboarding(
        TenantState(
            tenant_id=request.tenant_id,
            company_name=request.company_name,
            admin_email=request.admin_email,
            subscription_plan=request.subscription_plan,
            status="PROVISIONING",
            steps=initial_steps(),
            api_key_hash=key_hash,
            request_fingerprint=fingerprint,
            created_at=now,
            updated_at=now,
            force_recreate_dataset=request.force_recreate_dataset,
            force_recreate_tables=request.force_recreate_tables,
            dataset_action=dataset_action,
        ),
        services,
    )
    key_doc = {
        "tenant_id": request.tenant_id,
        "status": "ACTIVE",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "key_manager": services.keys.describe(),
        "created_at": now,
    }

    staged: dict[str, Document] = {}

    def create(txn: Transaction) -> dict[str, Any] | None:
        staged.clear()
        existing_record = txn.get(IDEMPOTENCY_KEYS, idempotency_id) if idempotency_id else None
        existing_tenant = txn.get(TENANTS, request.tenant_id)
        if existing_record is not None:
            created_by_it = txn.get(TENANTS, existing_record["tenant_id"])
            if _replayable(existing_record, created_by_it, services.clock()) is not None:
                return existing_record
        if existing_tenant is not None:
            raise TenantExists(f"tenant '{request.tenant_id}' already exists", field="tenant_id")
        claim = txn.get(TENANT_IDS, folded_tenant_id(request.tenant_id))
        _refuse_case_twin(request.tenant_id, claim)
        if claim is None:
            txn.create(TENANT_IDS, folded_tenant_id(request.tenant_id), {"tenant_id": request.tenant_id, "created_at": now})
        txn.create(TENANTS, request.tenant_id, state.model_dump())
        txn.create(API_KEYS, key_hash, key_doc)
        if idempotency_id:
            response = StoredAcceptance(
                tenant_id=accepted.tenant_id,
                subscription_plan=accepted.subscription_plan,
                status=accepted.status,
                status_url=accepted.status_url,
                message=accepted.message,
            )
            replay_until = iso(services.clock() + timedelta(hours=services.settings.http.idempotency_ttl_hours))
            record = IdempotencyRecord(
                id=idempotency_id,
                fingerprint=fingerprint,
                tenant_id=request.tenant_id,
                api_key_hash=key_hash,
                response=response,
                created_at=now,
                expires_at=replay_until,
                expire_at=replay_until,
            )
            txn.set(IDEMPOTENCY_KEYS, idempotency_id, record.model_dump())  # over an expired record of the same key, if any
        staged.update(stage_steps(txn, services, state, published_at_onboarding()))
        return None

    concurrent_record = services.documents.run_transaction(create)
    if concurrent_record is not None:
        if concurrent_record["fingerprint"] != fingerprint:
            raise IdempotencyKeyReused("this Idempotency-Key was used for a different request", field="Idempotency-Key")
        return _replay(concurrent_record, services)

    logger.info("tenant accepted", extra={"tenant_id": request.tenant_id})
    relay(services, staged)  # what fails to go out now stays in the outbox for the relay
    return OnboardResult(accepted=accepted, replayed=False)


def _refuse_case_twin(tenant_id: str, claim: dict[str, Any] | None) -> None:
    """Raise TenantExists when the folded id is held by a tenant whose id differs only by case."""
    problem = case_twin_problem(tenant_id, (claim or {}).get("tenant_id"))
    if problem is not None:
        raise TenantExists(problem, field="tenant_id")


def wait_for_outcome(tenant_id: str, seconds: float, services: Services) -> TenantState | None:
    """Poll the state document until the tenant is no longer PROVISIONING or `seconds` pass."""
    deadline = time.monotonic() + seconds
    delay = 0.01
    while True:
        raw = services.documents.get(TENANTS, tenant_id)
        state = TenantState.model_validate(raw) if raw is not None else None
        if state is not None and state.status != "PROVISIONING":
            return state
        if time.monotonic() >= deadline:
            return state
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.2)


def completed_body(accepted: OnboardAccepted, state: TenantState) -> OnboardCompleted:
    """The 201 body once the tenant is ACTIVE."""
    return OnboardCompleted(
        tenant_id=accepted.tenant_id,
        api_key=accepted.api_key,
        subscription_plan=accepted.subscription_plan,
        status="ACTIVE",
        dataset_created=state.dataset_created,
        tables_created=[VALIDATION_TABLE],
        views_created=[COMPREHENSIVE_VIEW],
        message="Tenant onboarded successfully",
    )
