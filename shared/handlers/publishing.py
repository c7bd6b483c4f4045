"""Publishing a contract on a topic, with the attributes every subscriber can filter on."""

from __future__ import annotations

from schemas.base import Contract
from shared.services import Services


def publish_event(services: Services, topic: str, event: Contract, *, tenant_id: str) -> str:
    """Serialize `event` and publish it; attributes carry the type, event id and tenant id."""
    attributes = {
        "event_type": type(event).__name__,
        "schema_version": event.schema_version,
        "tenant_id": tenant_id,
    }
    event_id = getattr(event, "event_id", None)
    if isinstance(event_id, str):
        attributes["event_id"] = event_id
    return services.bus.publish(topic, event.model_dump_json().encode(), attributes)
