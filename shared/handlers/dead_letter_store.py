"""The dead_letters collection: where a dead letter came from, recording it once, marking a tenant's retried."""

from __future__ import annotations

import hashlib
import json
import re

from schemas.events import EVENT_ID_PATTERN
from shared.domain.documents import DeadLetterDocument
from shared.logging_setup import redact
from shared.services import DEAD_LETTERS, Services, iso

# Attributes that say where a dead letter came from and after how many deliveries.
SOURCE_ATTRIBUTES = ("CloudPubSubDeadLetterSourceSubscription", "dead_letter_source")
ATTEMPT_ATTRIBUTES = ("CloudPubSubDeadLetterSourceDeliveryCount", "dead_letter_attempts")
_PREVIEW_CHARS = 500
# The open dead letters counted at most (one bounded read, every reconciler pass and every scrape).
BACKLOG_CAP = 10_000


def _first(attributes: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((attributes[name] for name in names if attributes.get(name)), None)


def dead_letter_origin(attributes: dict[str, str], default_source: str = "unknown") -> tuple[str, int]:
    """Where a dead letter came from and after how many deliveries, from its attributes."""
    raw_attempts = _first(attributes, ATTEMPT_ATTRIBUTES) or "1"
    attempts = int(raw_attempts) if raw_attempts.isdigit() else 1
    return _first(attributes, SOURCE_ATTRIBUTES) or default_source, attempts


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
    document = DeadLetterDocument(
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
    return services.documents.create(DEAD_LETTERS, letter_id, document.model_dump())


def readable_ids(data: bytes) -> tuple[str | None, str | None]:
    """Event id and tenant id of a payload that may be any bytes, each kept only when it is well formed."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(raw, dict):
        return None, None
    event_id, tenant_id = raw.get("event_id"), raw.get("tenant_id")
    valid_id = isinstance(event_id, str) and re.fullmatch(EVENT_ID_PATTERN, event_id) is not None
    tenant = tenant_id if isinstance(tenant_id, str) and len(tenant_id) <= 100 else None
    return (event_id if valid_id else None), tenant


def record_message_dead_letter(
    services: Services,
    data: bytes,
    reason: str,
    attributes: dict[str, str],
    *,
    default_source: str,
    event_id: str | None,
    tenant_id: str | None,
    letter_id: str | None = None,
) -> bool:
    """Record a dead-lettered message (no step) once; unnamed, it is named by its bytes. True if new."""
    source, attempts = dead_letter_origin(attributes, default_source=default_source)
    return record_dead_letter(
        services,
        letter_id=letter_id or f"sha256:{hashlib.sha256(data).hexdigest()}",
        source=source,
        reason=reason,
        attempts=attempts,
        data=data,
        tenant_id=tenant_id,
        step=None,
        event_id=event_id,
    )


def mark_retried(services: Services, tenant_id: str) -> int:
    """Mark the tenant's open dead letters RETRIED, which starts their lifetime; returns how many."""
    marked = 0
    resolved_until = iso(services.clock() + services.settings.lifetimes.resolved_dead_letters)
    for _, raw in list(services.documents.scan(DEAD_LETTERS, "dead_lettered_at", where=("tenant_id", tenant_id))):
        document = DeadLetterDocument.model_validate(raw)
        if document.status == "OPEN":
            resolved = document.model_copy(update={"status": "RETRIED", "expire_at": resolved_until})
            services.documents.set(DEAD_LETTERS, document.id, resolved.model_dump())
            marked += 1
    return marked


def open_dead_letters(services: Services) -> int:
    """How many dead letters are OPEN (not yet retried), counted up to BACKLOG_CAP.

    Newest first, as the dead-letter list reads them: the one composite index (status,
    dead_lettered_at descending) serves both.
    """
    count, after = 0, None
    while count < BACKLOG_CAP:
        page = services.documents.page(DEAD_LETTERS, "dead_lettered_at", where=("status", "OPEN"), descending=True, limit=500, after=after)
        count += len(page.items)
        if page.next_cursor is None:
            break
        after = page.next_cursor
    return min(count, BACKLOG_CAP)
