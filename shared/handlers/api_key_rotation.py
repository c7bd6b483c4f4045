"""API key rotation and revocation by operators, each recorded in the tenant's audit trail.

A rotation creates a new key (stored as the first one is: a SHA-256 hash to look it up and a
KMS-encrypted copy) and gives the old one an `expires_at`: it keeps working for the grace
period, then `tenant_of_key` refuses it. A revocation refuses rotated-out keys at once. Both
happen in one transaction with the state document, which lists the keys still in grace.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta
from typing import Any

from schemas.http import ApiKeyRotated, ApiKeysRevoked
from shared.domain import tenant as transitions
from shared.domain.api_keys import generate_api_key, hash_api_key, key_id
from shared.domain.documents import OPERATOR_SOURCE, AuditNote, TenantEventDocument
from shared.domain.errors import ApiKeyNotFound, InvalidRequest, TenantNotFound, TransitionNotAllowed
from shared.domain.identifiers import tenant_id_problem
from shared.domain.tenant import TenantState
from shared.handlers.tenant_store import load_tenant
from shared.ports import Transaction
from shared.services import API_KEYS, TENANT_EVENTS, TENANTS, Services, iso

# A suspended tenant's keys are refused while it is suspended, but they may still leak: rotating is allowed.
ROTATABLE_STATUSES = frozenset({"ACTIVE", "SUSPENDED"})


def _grace_hours(requested: float | None, services: Services) -> float:
    """The grace period asked for, else the configured one; never more than the configured maximum."""
    settings = services.settings.api_keys
    if requested is None:
        return settings.rotation_grace_hours
    if requested > settings.max_rotation_grace_hours:
        raise InvalidRequest(f"grace_hours must be from 0 to {settings.max_rotation_grace_hours:g}", field="grace_hours")
    return requested


def _existing(tenant_id: str, services: Services) -> TenantState:
    state = load_tenant(services, tenant_id) if tenant_id_problem(tenant_id) is None else None
    if state is None:
        raise TenantNotFound(f"no tenant '{tenant_id}'", field="tenant_id")
    return state


def _current(txn: Transaction, tenant_id: str) -> TenantState:
    raw = txn.get(TENANTS, tenant_id)
    if raw is None:
        raise TenantNotFound(f"no tenant '{tenant_id}'", field="tenant_id")
    return TenantState.model_validate(raw)


def _expired(doc: dict[str, Any] | None, now: datetime) -> bool:
    """A key doc that no longer admits anyone: gone, revoked, or past its grace."""
    if doc is None or doc.get("status") != "ACTIVE":
        return True
    expires_at = doc.get("expires_at")
    return expires_at is not None and datetime.fromisoformat(str(expires_at)) <= now


def _audit(state: TenantState, event_id: str, kind: str, detail: str, *, note: AuditNote, now: datetime) -> TenantEventDocument:
    return TenantEventDocument(
        event_id=event_id,
        tenant_id=state.tenant_id,
        type=kind,
        occurred_at=transitions.utc_stamp(now),
        source=OPERATOR_SOURCE,
        outcome="applied",
        detail=detail,
        status_before=state.status,
        status_after=state.status,
        plan_before=state.subscription_plan,
        plan_after=state.subscription_plan,
        recorded_at=iso(now),
        reason=note.reason,
        actor=note.actor,
    )


def rotate_api_key(tenant_id: str, grace_hours: float | None, note: AuditNote, services: Services) -> ApiKeyRotated:
    """A new key for the tenant, returned this once; the old key works `grace_hours` more (0: refused at once)."""
    grace = _grace_hours(grace_hours, services)
    if _existing(tenant_id, services).status not in ROTATABLE_STATUSES:
        raise TransitionNotAllowed(f"tenant '{tenant_id}' has no key to rotate while it is not ACTIVE or SUSPENDED", field="tenant_id")
    api_key = generate_api_key(tenant_id)
    new_hash = hash_api_key(api_key)
    ciphertext = services.keys.encrypt(api_key.encode(), tenant_id.encode())
    now = services.clock()
    stamp, until = iso(now), iso(now + timedelta(hours=grace))
    event_id = f"operator-rotate-key-{uuid.uuid4().hex}"
    key_doc = {
        "tenant_id": tenant_id,
        "status": "ACTIVE",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "key_manager": services.keys.describe(),
        "created_at": stamp,
    }

    def rotate(txn: Transaction) -> str:
        state = _current(txn, tenant_id)
        if state.status not in ROTATABLE_STATUSES:
            raise TransitionNotAllowed(f"tenant '{tenant_id}' has no key to rotate while it is {state.status}", field="tenant_id")
        old_hash = state.api_key_hash
        old_doc = txn.get(API_KEYS, old_hash)
        retiring = {key_hash: txn.get(API_KEYS, key_hash) for key_hash in state.retiring_key_hashes}
        still_retiring = [key_hash for key_hash, doc in retiring.items() if not _expired(doc, now)]
        if old_doc is not None and grace > 0:
            txn.set(API_KEYS, old_hash, {**old_doc, "expires_at": until})
            still_retiring.append(old_hash)
        elif old_doc is not None:
            txn.set(API_KEYS, old_hash, {**old_doc, "status": "REVOKED", "revoked_at": stamp})
        txn.create(API_KEYS, new_hash, key_doc)
        rotated = state.model_copy(update={"api_key_hash": new_hash, "retiring_key_hashes": still_retiring}).touched(stamp)
        txn.set(TENANTS, tenant_id, rotated.model_dump())
        old_fate = f"accepted until {until}" if grace > 0 else "revoked"
        detail = f"API key {key_id(new_hash)} issued; key {key_id(old_hash)} {old_fate}"
        txn.set(TENANT_EVENTS, event_id, _audit(state, event_id, "api_key_rotated", detail, note=note, now=now).model_dump())
        return old_hash

    old_hash = services.documents.run_transaction(rotate)
    return ApiKeyRotated(
        tenant_id=tenant_id,
        api_key=api_key,
        key_id=key_id(new_hash),
        previous_key_id=key_id(old_hash),
        previous_key_expires_at=until,
        grace_hours=grace,
        event_id=event_id,
    )


def revoke_api_keys(tenant_id: str, revoked_id: str | None, note: AuditNote, services: Services) -> ApiKeysRevoked:
    """Refuse at once the rotated-out key `revoked_id`, or every key still in its grace period; a repeat revokes nothing more.

    The tenant's current key is not revoked here (the tenant would be left without one): a
    rotation with grace_hours 0 replaces and refuses it in one step.
    """
    state = _existing(tenant_id, services)
    if revoked_id is not None and revoked_id == key_id(state.api_key_hash):
        raise TransitionNotAllowed(
            "that is the tenant's current key: rotate it with grace_hours 0 to replace it and refuse it at once", field="key_id"
        )
    known = [key_id(key_hash) for key_hash in state.retiring_key_hashes]
    if revoked_id is not None and revoked_id not in known:
        raise ApiKeyNotFound(f"tenant '{tenant_id}' has no key '{revoked_id}' in its grace period", field="key_id")
    now = services.clock()
    stamp = iso(now)
    event_id = f"operator-revoke-key-{uuid.uuid4().hex}"

    def revoke(txn: Transaction) -> tuple[list[str], str]:
        current = _current(txn, tenant_id)
        chosen = [h for h in current.retiring_key_hashes if revoked_id is None or key_id(h) == revoked_id]
        docs = {key_hash: txn.get(API_KEYS, key_hash) for key_hash in chosen}
        if not chosen:
            return [], current.api_key_hash
        for key_hash, doc in docs.items():
            if doc is not None and doc.get("status") != "REVOKED":
                txn.set(API_KEYS, key_hash, {**doc, "status": "REVOKED", "revoked_at": stamp})
        remaining = [key_hash for key_hash in current.retiring_key_hashes if key_hash not in chosen]
        txn.set(TENANTS, tenant_id, current.model_copy(update={"retiring_key_hashes": remaining}).touched(stamp).model_dump())
        detail = "revoked API key(s) " + ", ".join(key_id(key_hash) for key_hash in chosen)
        txn.set(TENANT_EVENTS, event_id, _audit(current, event_id, "api_key_revoked", detail, note=note, now=now).model_dump())
        return [key_id(key_hash) for key_hash in chosen], current.api_key_hash

    revoked, current_hash = services.documents.run_transaction(revoke)
    return ApiKeysRevoked(tenant_id=tenant_id, revoked=revoked, current_key_id=key_id(current_hash), event_id=event_id if revoked else None)
