"""EventBus port: publish a message to a topic, Pub/Sub style (at least once, unordered)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from shared.ports.permissions import PUBSUB_IAM, publish, requires


class EventBus(ABC):
    """Publishes messages; delivery to subscribers is the platform's (triggers or local workers)."""

    @requires(PUBSUB_IAM, publish)
    @abstractmethod
    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        """Publish and wait until the bus has stored the message; returns its message id."""

    def close(self) -> None:
        """Flush and release resources (optional)."""
