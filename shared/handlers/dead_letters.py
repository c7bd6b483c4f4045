"""Dead letters: recorded in the document store, and a step that gave up turns the step and the tenant FAILED."""

from __future__ import annotations

import hashlib
import logging

from pydantic import ValidationError

from schemas.events import StepRequested
from schemas.http import DeadLetterEntry, DeadLetterList
from shared.domain import tenant as transitions
from shared.domain.documents import DeadLetterDocument
from shared.domain.errors import InvalidRequest, PermanentEventError
from shared.domain.paging import decode_page_token, encode_page_token, page_size
from shared.domain.tenant import TenantState
from shared.handlers.dead_letter_store import dead_letter_origin, record_dead_letter
from shared.handlers.tenant_store import load_tenant, update_tenant
from shared.metrics import count_onboarding
from shared.services import DEAD_LETTERS, Services

logger = logging.getLogger(__name__)

DEAD_LETTER_STATUSES = ("OPEN", "RETRIED")


def dead_letter_topic(topic: str) -> str:
    """The dead-letter topic of a step topic."""
    return f"{topic}-dead-letter"


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

    newly_failed: list[bool] = []

    def fail(state: TenantState) -> TenantState | None:
        step = state.step(command.step)
        if step.status == "DONE" or step.generation != command.generation:
            return None
        newly_failed[:] = [state.status != "FAILED"]
        return transitions.fail_step(state, command.step, step.error or reason, services.now())

    try:
        update_tenant(services, command.tenant_id, fail)
    except PermanentEventError:
        logger.error("dead letter for an unknown tenant", extra={"tenant_id": command.tenant_id, "reason": reason})
        return "unknown_tenant"
    if any(newly_failed):
        count_onboarding("failed")
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
    documents = [DeadLetterDocument.model_validate(doc) for _, doc in page.items]
    entries = [_entry(document) for document in documents if status is None or document.status == status]
    return DeadLetterList(count=len(entries), dead_letters=entries, next_page_token=encode_page_token(page.next_cursor, listing))


def _entry(document: DeadLetterDocument) -> DeadLetterEntry:
    """The HTTP view of a stored dead letter."""
    return DeadLetterEntry(
        id=document.id,
        status=document.status,
        source=document.source,
        reason=document.reason,
        attempts=document.attempts,
        tenant_id=document.tenant_id,
        step=document.step,
        event_id=document.event_id,
        payload_preview=document.payload_preview,
        dead_lettered_at=document.dead_lettered_at,
        expire_at=document.expire_at,
    )
