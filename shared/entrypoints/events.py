"""CloudEvent plumbing shared by the event functions: decode Pub/Sub, validate, dead-letter."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from cloudevents.http import CloudEvent
from pydantic import BaseModel, ValidationError

from shared.domain.errors import PermanentEventError
from shared.logging_setup import log_context
from shared.services import Services
from shared.tracing import Trace, from_attributes, trace_scope

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
PUBSUB_MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


def pubsub_message(cloud_event: CloudEvent) -> tuple[bytes, dict[str, str]]:
    """The Pub/Sub message's data and attributes inside an Eventarc CloudEvent."""
    data = cloud_event.data
    if isinstance(data, (bytes, str)):
        data = json.loads(data)
    if not isinstance(data, dict) or "message" not in data:
        raise PermanentEventError("CloudEvent data is not a Pub/Sub message")
    message: dict[str, Any] = data["message"]
    payload = base64.b64decode(message.get("data") or b"")
    return payload, dict(message.get("attributes") or {})


def source_topic(cloud_event: CloudEvent) -> str:
    """The topic name from the CloudEvent source (`//pubsub.googleapis.com/projects/p/topics/t`)."""
    return str(cloud_event["source"]).rsplit("/", 1)[-1]


def handle_event(
    cloud_event: CloudEvent,
    model: type[M],
    handler: Callable[[M, Services], str],
    services: Services,
    dead_letter_topic: str,
) -> str:
    """Decode, validate and handle one event.

    A message that can never succeed (bad schema, unknown tenant) is published to the
    dead-letter topic with its reason and acknowledged; anything else that fails raises so
    the platform redelivers it.
    """
    try:
        payload, attributes = pubsub_message(cloud_event)
        event = model.model_validate_json(payload)
    except (PermanentEventError, ValidationError, ValueError) as error:
        with trace_scope(message_trace(cloud_event)):
            return _dead_letter(cloud_event, services, dead_letter_topic, f"invalid message: {error}"[:500])
    event_id = str(getattr(event, "event_id", cloud_event["id"]))
    context = log_context(tenant_id=getattr(event, "tenant_id", None), event_id=event_id, step=getattr(event, "step", None))
    with trace_scope(from_attributes(attributes)), context:
        try:
            return handler(event, services)
        except PermanentEventError as error:
            return _dead_letter(cloud_event, services, dead_letter_topic, str(error), payload=payload, attributes=attributes)


def message_trace(cloud_event: CloudEvent) -> Trace | None:
    """The trace a message carries, when its envelope is readable at all."""
    try:
        return from_attributes(pubsub_message(cloud_event)[1])
    except (PermanentEventError, ValueError):
        return None


def _dead_letter(
    cloud_event: CloudEvent,
    services: Services,
    topic: str,
    reason: str,
    *,
    payload: bytes | None = None,
    attributes: dict[str, str] | None = None,
) -> str:
    if payload is None:
        try:
            payload, attributes = pubsub_message(cloud_event)
        except PermanentEventError:
            payload, attributes = json.dumps(cloud_event.data, default=str).encode(), {}
    logger.error("message dead-lettered at once", extra={"reason": reason, "dead_letter_topic": topic})
    provenance = {
        "dead_letter_reason": reason,
        "dead_letter_source": source_topic(cloud_event),
        "dead_letter_attempts": str(_delivery_attempt(cloud_event)),
    }
    services.bus.publish(topic, payload, {**(attributes or {}), **provenance})
    return "dead_lettered"


def _delivery_attempt(cloud_event: CloudEvent) -> int:
    data = cloud_event.data
    message = data.get("message") if isinstance(data, dict) else None
    attempt = message.get("deliveryAttempt") if isinstance(message, dict) else None
    return attempt if isinstance(attempt, int) and attempt > 0 else 1


DeadLetterHandler = Callable[[bytes, str, Services, dict[str, str]], str]


def handle_dead_letter(cloud_event: CloudEvent, handler: DeadLetterHandler, services: Services) -> str:
    """Hand a message from a dead-letter topic to `handler` with its reason and attributes.

    Pub/Sub's own dead-lettering carries no reason; ours (`dead_letter_reason`) does.
    """
    payload, attributes = pubsub_message(cloud_event)
    reason = attributes.get("dead_letter_reason", "delivery attempts exhausted")
    with trace_scope(from_attributes(attributes)), log_context(tenant_id=attributes.get("tenant_id"), event_id=attributes.get("event_id")):
        return handler(payload, reason, services, attributes)
