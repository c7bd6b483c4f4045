"""Publishing a contract on a topic, with the attributes every subscriber can filter on, and the trace that caused it."""

from __future__ import annotations

from schemas.base import Contract
from shared.services import Services
from shared.tracing import with_trace


def publish_event(services: Services, topic: str, event: Contract, *, tenant_id: str) -> str:
    """Serialize `event` and publish it; attributes carry the type, event id, tenant id and current trace (`traceparent`)."""
    attributes = {
        "event_type": type(event).__name__,
        "schema_version": event.schema_version,
        "tenant_id": tenant_id,
    }
    event_id = getattr(event, "event_id", None)
    if isinstance(event_id, str):
        attributes["event_id"] = event_id
    return services.bus.publish(topic, event.model_dump_json().encode(), with_trace(attributes))
