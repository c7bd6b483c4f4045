"""Dead letters: recorded in the document store, and a step that gave up turns the step and the tenant FAILED."""

from __future__ import annotations

import hashlib
import logging

from pydantic import ValidationError

from schemas.events import StepRequested
from schemas.http import DeadLetterEntry, DeadLetterList
from shared.domain import tenant as transitions
from shared.domain.errors import InvalidRequest, PermanentEventError
from shared.domain.paging import decode_page_token, encode_page_token, page_size
from shared.domain.tenant import TenantState
from shared.handlers.tenant_store import load_tenant, update_tenant
from shared.logging_setup import redact
from shared.ports import EXPIRE_AT
from shared.services import DEAD_LETTERS, Services, iso

logger = logging.getLogger(__name__)

# Attributes that say where a dead letter came from and after how many deliveries.
SOURCE_ATTRIBUTES = ("CloudPubSubDeadLetterSourceSubscription", "dead_letter_source")
ATTEMPT_ATTRIBUTES = ("CloudPubSubDeadLetterSourceDeliveryCount", "dead_letter_attempts")
DEAD_LETTER_STATUSES = ("OPEN", "RETRIED")
_PREVIEW_CHARS = 500


def dead_letter_topic(topic: str) -> str:
    """The dead-letter topic of a step topic."""
    return f"{topic}-dead-letter"


def _first(attributes: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((attributes[name] for name in names if attributes.get(name)), None)


def dead_letter_origin(attributes: dict[str, str], default_source: str = "unknown") -> tuple[str, int]:
    """Where a dead letter came from and after how many deliveries, from its attributes."""
    raw_attempts = _first(attributes, ATTEMPT_ATTRIBUTES) or "1"
    attempts = int(raw_attempts) if raw_attempts.isdigit() else 1
    return _first(attributes, SOURCE_ATTRIBUTES) or default_source, attempts


def handle_step_dead_letter(data: bytes, reason: str, services: Services, attributes: dict[str, str] | None = None) -> str:
    """Record the dead letter; for a readable step command, fail the step and the tenant too.

    Never raises for a payload it cannot read: a poison message is recorded once and
    acknowledged, so it cannot loop.
    """
    attributes = attributes or {}
    source, attempts = dead_letter_origin(attributes)
    try:
        command = StepRequested.model_validate_json(data)
    except ValidationError:
        letter_id = hashlib.sha256(source.encode() + b"\x1f" + data).hexdigest()[:40]
        record_dead_letter(
            services,
            letter_id=letter_id,
            source=source,
            reason=reason,
            attempts=attempts,
            data=data,
            tenant_id=attributes.get("tenant_id"),
            step=None,
            event_id=attributes.get("event_id"),
        )
        logger.error("dead letter with an unreadable payload", extra={"reason": reason})
        return "unreadable"
    reason = _with_last_error(reason, services, command)
    record_dead_letter(
        services,
        letter_id=command.event_id,
        source=source,
        reason=reason,
        attempts=attempts,
        data=data,
        tenant_id=command.tenant_id,
        step=command.step,
        event_id=command.event_id,
    )

    def fail(state: TenantState) -> TenantState | None:
        step = state.step(command.step)
        if step.status == "DONE" or step.generation != command.generation:
            return None
        return transitions.fail_step(state, command.step, step.error or reason, services.now())

    try:
        update_tenant(services, command.tenant_id, fail)
    except PermanentEventError:
        logger.error("dead letter for an unknown tenant", extra={"tenant_id": command.tenant_id, "reason": reason})
        return "unknown_tenant"
    logger.error(
        "step failed for good",
        extra={"tenant_id": command.tenant_id, "step": command.step, "event_id": command.event_id, "reason": reason},
    )
    return "failed"


def _with_last_error(reason: str, services: Services, command: StepRequested) -> str:
    """`reason`, plus the step's last recorded error when the reason lacks it.

    Pub/Sub's own dead-lettering says nothing of why; the failed attempts wrote it on the step.
    """
    state = load_tenant(services, command.tenant_id)
    step = state.step(command.step) if state is not None else None
    if step is None or step.generation != command.generation or not step.error or step.error in reason:
        return reason
    return f"{reason}; last error: {step.error}"


def record_dead_letter(
    services: Services,
    *,
    letter_id: str,
    source: str,
    reason: str,
    attempts: int,
    data: bytes,
    tenant_id: str | None,
    step: str | None,
    event_id: str | None,
) -> bool:
    """Record a dead letter in `dead_letters` (create-if-absent: a redelivery is recorded once); True if new."""
    entry = DeadLetterEntry(
        id=letter_id,
        status="OPEN",
        source=source,
        reason=redact(reason)[:_PREVIEW_CHARS],
        attempts=attempts,
        tenant_id=tenant_id,
        step=step,
        event_id=event_id,
        payload_preview=redact(data[:_PREVIEW_CHARS].decode("utf-8", errors="replace")),
        dead_lettered_at=services.now(),
    )
    return services.documents.create(DEAD_LETTERS, letter_id, entry.model_dump())


def list_dead_letters(
    services: Services,
    status: str | None = None,
    tenant_id: str | None = None,
    limit: str | int | None = None,
    page_token: str | None = None,
) -> DeadLetterList:
    """Recorded dead letters, newest first, a page at a time, optionally of one status or one tenant."""
    if status is not None and status not in DEAD_LETTER_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(DEAD_LETTER_STATUSES)}", field="status")
    size = page_size(limit)
    listing = {"list": DEAD_LETTERS, "status": status, "tenant_id": tenant_id}
    after = decode_page_token(page_token, listing)
    where = ("tenant_id", tenant_id) if tenant_id is not None else ("status", status) if status is not None else None
    page = services.documents.page(DEAD_LETTERS, "dead_lettered_at", where=where, descending=True, limit=size, after=after)
    # With both filters the store filters on the tenant and this on the status: a page may hold fewer.
    entries = [DeadLetterEntry.model_validate(doc) for _, doc in page.items if status is None or doc.get("status") == status]
    return DeadLetterList(count=len(entries), dead_letters=entries, next_page_token=encode_page_token(page.next_cursor, listing))


def mark_retried(services: Services, tenant_id: str) -> int:
    """Mark the tenant's open dead letters RETRIED; returns how many."""
    marked = 0
    for doc_id, doc in list(services.documents.scan(DEAD_LETTERS, "dead_lettered_at", where=("tenant_id", tenant_id))):
        if doc.get("status") == "OPEN":
            resolved_until = iso(services.clock() + services.settings.lifetimes.resolved_dead_letters)
            services.documents.set(DEAD_LETTERS, doc_id, {**doc, "status": "RETRIED", EXPIRE_AT: resolved_until})
            marked += 1
    return marked
