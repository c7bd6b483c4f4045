"""PubSubEventBus: the EventBus port on Cloud Pub/Sub; delivery is the platform's (push to functions)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.cloud import pubsub  # type: ignore[attr-defined]

from shared.adapters.gcp.errors import google_errors_as_ours
from shared.ports import EventBus

SOURCE = "//onboarding.control-plane"


def cloud_event_attributes(attributes: dict[str, str]) -> dict[str, str]:
    """CloudEvents attributes in Pub/Sub's binding (`ce-` prefix), derived from ours."""
    return {
        "ce-specversion": "1.0",
        "ce-id": attributes.get("event_id") or uuid.uuid4().hex,
        "ce-type": f"onboarding.{attributes.get('event_type', 'Message')}",
        "ce-source": SOURCE,
        "ce-time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


class PubSubEventBus(EventBus):
    """Publishes to topics of one project and waits, with a timeout, until Pub/Sub stored the message."""

    def __init__(self, publisher: pubsub.PublisherClient, project: str, timeout_seconds: float = 30.0) -> None:
        self._publisher = publisher
        self._project = project
        self._timeout = timeout_seconds

    def topic_path(self, topic: str) -> str:
        """The full resource name of `topic` in this project."""
        path: str = self._publisher.topic_path(self._project, topic)
        return path

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        message_attributes = {**cloud_event_attributes(attributes or {}), **(attributes or {})}
        with google_errors_as_ours(f"pubsub publish to {topic}"):
            future = self._publisher.publish(self.topic_path(topic), data, **message_attributes)
            message_id: str = future.result(timeout=self._timeout)
        return message_id

    def close(self) -> None:
        with google_errors_as_ours("pubsub publisher stop"):
            self._publisher.stop()
