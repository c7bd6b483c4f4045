"""EventBus port: publish a message to a topic, Pub/Sub style (at least once, unordered)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from shared.ports.permissions import PUBSUB_IAM, nothing, publish, requires


class EventBus(ABC):
    """Publishes messages; delivery to subscribers is the platform's (triggers or local workers)."""

    @requires(PUBSUB_IAM, publish)
    @abstractmethod
    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        """Publish and wait until the bus has stored the message; returns its message id."""

    @requires(PUBSUB_IAM, nothing)  # Pub/Sub has no call to delete a published message
    def forget_tenant(self, tenant_id: str) -> int:
        """Delete the stored messages published for `tenant_id` (attribute `tenant_id`); returns how many.

        Pub/Sub offers no way to delete one published message: it drops a message once every
        subscription acknowledged it, and an unacknowledged one when its retention ends (see
        docs/lifetimes.md). So by default there is nothing to do; the embedded bus overrides it.
        """
        return 0

    @requires(PUBSUB_IAM, nothing)  # Pub/Sub drops acknowledged messages itself
    def expire_settled(self, published_before: datetime) -> int:
        """Delete messages published before `published_before` that every subscription has settled; returns how many.

        Pub/Sub drops a message itself once acknowledged (unless the subscription retains
        acknowledged messages), so by default there is nothing to do; the embedded bus overrides it.
        """
        return 0

    @requires(PUBSUB_IAM, nothing)  # read from Cloud Monitoring, not through the bus
    def backlog(self) -> dict[str, int] | None:
        """Messages not yet acknowledged or dead-lettered, per subscription; None where the bus cannot say.

        Pub/Sub reports it per subscription as the Cloud Monitoring metric
        `pubsub.googleapis.com/subscription/num_undelivered_messages`
        (https://cloud.google.com/pubsub/docs/monitoring#monitor_the_backlog), which is what
        stands in on Google Cloud; the embedded bus overrides this.
        """
        return None

    def close(self) -> None:
        """Flush and release resources (optional)."""
