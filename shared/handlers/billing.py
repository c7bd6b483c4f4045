"""Billing events: decide against the state document in one transaction, then append the analytics
copy and announce the change.

The transaction is the single point of truth: it dedupes by event id, applies the pure
transition, writes the audit record and the processed marker together. Everything after it
(warehouse rows, API key revocation already inside, lifecycle event) is repeatable, and a
redelivery of an event whose effects did not finish finishes them.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from schemas.events import BillingEvent
from schemas.http import OperatorAction, OperatorActionResponse, TenantEventRecord, TenantEventsResponse
from shared.domain import tenant as transitions
from shared.domain.documents import OPERATOR_SOURCE, AuditNote, TenantEventDocument
from shared.domain.errors import PermanentEventError, TenantNotFound, TransitionNotAllowed
from shared.domain.identifiers import tenant_id_problem
from shared.domain.paging import decode_page_token, encode_page_token, page_size
from shared.domain.tenant import BillingDecision, BillingKind, TenantState
from shared.handlers.analytics_copy import append_copy
from shared.handlers.dead_letter_store import readable_ids, record_message_dead_letter
from shared.handlers.lifecycle import publish_lifecycle
from shared.handlers.tenant_store import load_tenant
from shared.ports import EXPIRE_AT, Transaction
from shared.services import API_KEYS, PROCESSED_EVENTS, TENANT_EVENTS, TENANTS, Services, iso

logger = logging.getLogger(__name__)

# An operator action is the billing event with the same effect, from source "operator".
OPERATOR_ACTIONS: dict[OperatorAction, BillingKind] = {
    "suspend": "payment_failed",
    "resume": "payment_recovered",
    "offboard": "subscription_cancelled",
}


def event_key(event: BillingEvent) -> str:
    """Who a billing event is: its id as its source gave it, within its tenant (ids of two tenants or sources never meet)."""
    identity = "\x1f".join((event.tenant_id, event.source, event.event_id))
    return hashlib.sha256(identity.encode()).hexdigest()[:40]


def payload_digest(event: BillingEvent) -> str:
    """What a billing event says, with its instant in one form: a redelivery has the same digest."""
    content = "\x1f".join((event.type, transitions.utc_stamp(event.occurred_at), event.new_plan or ""))
    return hashlib.sha256(content.encode()).hexdigest()


def processed_id(event: BillingEvent) -> str:
    """The processed-events marker of a billing event (apart from step commands' ids)."""
    return f"billing:{event_key(event)}"


def handle_billing_event(event: BillingEvent, services: Services) -> str:
    """Apply one billing event at least once in effect; returns the outcome, for logs and tests.

    Unknown tenants and tenants that are not live yet raise PermanentEventError: the
    caller dead-letters those at once. So does an event dated too far in the future (after
    its refusal is in the audit trail) and an event id its source already used for this
    tenant with a different payload.
    """
    marker = services.documents.get(PROCESSED_EVENTS, processed_id(event))
    duplicate = marker is not None
    decided: TenantState | None = None
    if marker is None:
        marker, duplicate, decided = services.documents.run_transaction(lambda txn: _decide(txn, event, services))
    if duplicate and marker.get("payload_digest") not in (None, payload_digest(event)):
        raise PermanentEventError(
            f"event id '{event.event_id}' from source '{event.source}' was already used for tenant '{event.tenant_id}' "
            f"with a different payload (processed at {marker.get('processed_at')}, outcome {marker.get('outcome')}); "
            "this payload is not applied"
        )
    outcome = "duplicate" if duplicate else str(marker["outcome"])
    if not marker.get("effects_done"):
        _finish_effects(services, marker, processed_id(event), decided)
    logger.info("billing event handled", extra={"tenant_id": event.tenant_id, "event_id": event.event_id, "outcome": outcome})
    if marker.get("dead_letter_reason"):
        raise PermanentEventError(str(marker["dead_letter_reason"]))
    return outcome


def _decide(
    txn: Transaction, event: BillingEvent, services: Services, note: AuditNote | None = None
) -> tuple[dict[str, Any], bool, TenantState | None]:
    """The processed marker written with the decision, whether another delivery got there first, the state written."""
    raw = txn.get(TENANTS, event.tenant_id)
    existing = txn.get(PROCESSED_EVENTS, processed_id(event))
    if existing is not None:
        return existing, True, None
    if raw is None:
        raise PermanentEventError(f"unknown tenant {event.tenant_id}")
    state = TenantState.model_validate(raw)
    if not transitions.accepts_billing(state):
        raise PermanentEventError(f"tenant {event.tenant_id} is {state.status}: billing events apply once it is ACTIVE")
    decision = transitions.apply_billing_event(
        state,
        event.type,
        occurred_at=event.occurred_at,
        new_plan=event.new_plan,
        known_plans=services.plans.plans.keys(),
        now=services.clock(),
        retention=services.lifecycle.retention,
        max_future_skew=timedelta(seconds=services.settings.billing.max_future_skew_seconds),
    )
    # An offboarding revokes every key of the tenant: the current one and those rotated out but still in their grace period.
    revoked = [state.api_key_hash, *state.retiring_key_hashes] if decision.lifecycle == "tenant.offboarded" else []
    keys = {key_hash: txn.get(API_KEYS, key_hash) for key_hash in revoked}
    changed = decision.state is not state
    if changed:
        txn.set(TENANTS, state.tenant_id, decision.state.model_dump())
    for key_hash, key in keys.items():
        if key is not None and key.get("status") != "REVOKED":
            txn.set(API_KEYS, key_hash, {**key, "status": "REVOKED", "revoked_at": services.now()})
    record = _audit_record(event, state, decision, services.now(), note)
    txn.set(TENANT_EVENTS, processed_id(event), record.model_dump())
    marker = {
        "event_id": event.event_id,
        "tenant_id": event.tenant_id,
        "source": event.source,
        "payload_digest": payload_digest(event),
        "kind": "billing",
        "outcome": decision.outcome,
        "dead_letter_reason": decision.detail if decision.dead_letter else None,
        "lifecycle": decision.lifecycle,
        "previous_status": state.status,
        "previous_plan": state.subscription_plan,
        "status_after": decision.state.status,
        "plan_after": decision.state.subscription_plan,
        "changed_at": decision.state.updated_at,
        "effects_done": not changed,
        "processed_at": services.now(),
        EXPIRE_AT: iso(services.clock() + services.settings.lifetimes.processed_events),
    }
    txn.create(PROCESSED_EVENTS, processed_id(event), marker)
    return marker, False, decision.state if changed else None


def _audit_record(
    event: BillingEvent, before: TenantState, decision: BillingDecision, now: str, note: AuditNote | None = None
) -> TenantEventDocument:
    return TenantEventDocument(
        event_id=event.event_id,
        tenant_id=event.tenant_id,
        type=event.type,
        new_plan=event.new_plan,
        occurred_at=transitions.utc_stamp(event.occurred_at),
        source=event.source,
        outcome=decision.outcome,
        detail=decision.detail,
        status_before=before.status,
        status_after=decision.state.status,
        plan_before=before.subscription_plan,
        plan_after=decision.state.subscription_plan,
        lifecycle_event=decision.lifecycle,
        recorded_at=now,
        reason=note.reason if note is not None else None,
        actor=note.actor if note is not None else None,
    )


def _finish_effects(services: Services, marker: dict[str, Any], marker_id: str, decided: TenantState | None) -> None:
    """The analytics copy, then the lifecycle event, then done.

    The copy is appended from the state this event's transaction wrote (or, on a redelivery,
    from the state document as it is now): rows carry the state's revision, so whichever of
    two racing events appends last, the latest-row views show the newer state. No DML on the
    central tables, hence no per-table DML queue for a burst of events to run into.
    """
    tenant_id, event_id = str(marker["tenant_id"]), str(marker["event_id"])
    state = decided or load_tenant(services, tenant_id)
    if state is not None:
        append_copy(services, state)
    if marker.get("lifecycle"):
        publish_lifecycle(
            services,
            tenant_id=tenant_id,
            kind=marker["lifecycle"],
            cause_event_id=event_id,
            status=marker["status_after"],
            subscription_plan=marker["plan_after"],
            occurred_at=marker["changed_at"],
            previous_status=marker["previous_status"],
            previous_plan=marker["previous_plan"],
            cause_key=marker_id,
        )
    services.documents.set(PROCESSED_EVENTS, marker_id, {**marker, "effects_done": True})


def apply_operator_action(
    tenant_id: str, action: OperatorAction, note: AuditNote, services: Services, events_url: str
) -> OperatorActionResponse:
    """Suspend, resume or offboard a tenant as the billing event of the same effect would, from source "operator".

    The same transaction as a billing event: the transition, the API key revocation of an
    offboarding, the audit entry (with the reason and the operator) and the processed marker;
    then the analytics copy and the lifecycle event. Repeating an action is harmless (the
    tenant is already there: outcome "applied" or "ignored", status unchanged). What the
    lifecycle refuses (anything but offboard on an OFFBOARDED tenant) is a 409, and is in the
    audit trail too; PROVISIONING and FAILED tenants never went live, so it does not apply to them.
    """
    state = load_tenant(services, tenant_id) if tenant_id_problem(tenant_id) is None else None
    if state is None:
        raise TenantNotFound(f"no tenant '{tenant_id}'", field="tenant_id")
    if not transitions.accepts_billing(state):
        raise TransitionNotAllowed(
            f"tenant '{tenant_id}' is {state.status}: operators {action} tenants that went live (a FAILED one is retried)",
            field="tenant_id",
        )
    event = BillingEvent(
        event_id=f"operator-{action}-{uuid.uuid4().hex}",
        tenant_id=tenant_id,
        type=OPERATOR_ACTIONS[action],
        occurred_at=_operator_moment(state, services.clock()),
        source=OPERATOR_SOURCE,
    )
    try:
        marker, _, decided = services.documents.run_transaction(lambda txn: _decide(txn, event, services, note))
    except PermanentEventError as error:  # the tenant changed (purged, say) since it was read
        raise TransitionNotAllowed(str(error), field="tenant_id") from None
    if not marker.get("effects_done"):
        _finish_effects(services, marker, processed_id(event), decided)
    logger.info("operator action", extra={"tenant_id": tenant_id, "action": action, "outcome": marker["outcome"], "operator": note.actor})
    detail = str(_audit_detail(services, event))
    if marker["outcome"] == "refused":
        raise TransitionNotAllowed(f"cannot {action} tenant '{tenant_id}': {detail}", field="tenant_id")
    return OperatorActionResponse(
        tenant_id=tenant_id,
        action=action,
        outcome=marker["outcome"],
        detail=detail,
        status_before=marker["previous_status"],
        status=marker["status_after"],
        event_id=event.event_id,
        events_url=events_url,
    )


def _operator_moment(state: TenantState, now: datetime) -> datetime:
    """Now, or just after the last status event applied if that is later: an operator's word is the newest."""
    last = state.status_event_at
    if last is None or datetime.fromisoformat(last) < now:
        return now
    return datetime.fromisoformat(last) + timedelta(microseconds=1)


def _audit_detail(services: Services, event: BillingEvent) -> str:
    raw = services.documents.get(TENANT_EVENTS, processed_id(event))
    return str((raw or {}).get("detail") or "")


def tenant_events(
    tenant_id: str, services: Services, limit: str | int | None = None, page_token: str | None = None
) -> TenantEventsResponse:
    """The tenant's audit trail, oldest occurrence first, a page at a time; TenantNotFound when there is neither tenant nor trail."""
    if tenant_id_problem(tenant_id) is not None:
        raise TenantNotFound(f"no tenant '{tenant_id}'", field="tenant_id")
    size = page_size(limit)
    listing = {"list": TENANT_EVENTS, "tenant_id": tenant_id}
    after = decode_page_token(page_token, listing)
    page = services.documents.page(TENANT_EVENTS, "occurred_at", where=("tenant_id", tenant_id), limit=size, after=after)
    records = [_event_record(TenantEventDocument.model_validate(raw)) for _, raw in page.items]
    if not records and after is None and services.documents.get(TENANTS, tenant_id) is None:
        raise TenantNotFound(f"no tenant '{tenant_id}'", field="tenant_id")
    return TenantEventsResponse(
        tenant_id=tenant_id, count=len(records), events=records, next_page_token=encode_page_token(page.next_cursor, listing)
    )


def _event_record(document: TenantEventDocument) -> TenantEventRecord:
    """The HTTP view of one stored audit entry."""
    return TenantEventRecord(
        event_id=document.event_id,
        tenant_id=document.tenant_id,
        type=document.type,
        new_plan=document.new_plan,
        occurred_at=document.occurred_at,
        source=document.source,
        outcome=document.outcome,
        detail=document.detail,
        status_before=document.status_before,
        status_after=document.status_after,
        plan_before=document.plan_before,
        plan_after=document.plan_after,
        lifecycle_event=document.lifecycle_event,
        recorded_at=document.recorded_at,
        redacted=document.redacted,
        reason=document.reason,
        actor=document.actor,
    )


def handle_billing_dead_letter(data: bytes, reason: str, services: Services, attributes: dict[str, str] | None = None) -> str:
    """Record a dead-lettered billing message with its reason among the dead letters, once."""
    event_id, tenant_id, letter_id = _identify(data)
    created = record_message_dead_letter(
        services,
        data,
        reason,
        attributes or {},
        default_source=services.settings.topics.billing,
        event_id=event_id,
        tenant_id=tenant_id,
        letter_id=letter_id,
    )
    logger.error("billing event dead-lettered", extra={"tenant_id": tenant_id, "event_id": event_id, "reason": reason[:300]})
    return "recorded" if created else "duplicate"


def _identify(data: bytes) -> tuple[str | None, str | None, str | None]:
    """Event id, tenant id and dead-letter id of a payload, as far as it can be read (it may be any bytes).

    A readable event's letter is named by the event's key and payload: redeliveries are one
    letter, while the same id reused by another tenant, source or payload is another.
    """
    try:
        event = BillingEvent.model_validate_json(data)
        return event.event_id, event.tenant_id, f"billing:{event_key(event)}:{payload_digest(event)[:16]}"
    except ValidationError:
        pass
    return (*readable_ids(data), None)
