"""Sweeper: delete the records whose lifetime is over, and the bus messages every subscriber has settled; time out pipeline runs.

Every record that should not live for ever carries `expire_at`; on Google Cloud the same
field drives Firestore's TTL policies (deploy.sh), which delete "typically within 24 hours
after" expiry (https://cloud.google.com/firestore/docs/ttl), and this sweep only tidies up
sooner. Locally it is the only thing that deletes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from shared.handlers.run_records import expire_run_leases
from shared.ports import EXPIRE_AT, PageCursor
from shared.services import DEAD_LETTERS, IDEMPOTENCY_KEYS, LATEST_VALIDATIONS, PROCESSED_EVENTS, VALIDATIONS, Services, iso

logger = logging.getLogger(__name__)

# Collections whose documents may carry `expire_at` (deploy.sh gives each a TTL policy).
EXPIRING_COLLECTIONS = (VALIDATIONS, LATEST_VALIDATIONS, PROCESSED_EVENTS, DEAD_LETTERS, IDEMPOTENCY_KEYS)


@dataclass
class SweepReport:
    """What one sweep deleted."""

    documents: dict[str, int] = field(default_factory=dict)
    bus_messages: int = 0
    timed_out_runs: int = 0  # pipeline runs whose lease ended with no report: FAILED, TIMED_OUT

    @property
    def total(self) -> int:
        """Everything deleted or timed out."""
        return sum(self.documents.values()) + self.bus_messages + self.timed_out_runs


def sweep_expired(services: Services) -> SweepReport:
    """Delete every document past its `expire_at` and every settled bus message past its lifetime."""
    lifetimes = services.settings.lifetimes
    now = services.clock()
    cutoff = iso(now)
    report = SweepReport()
    for collection in EXPIRING_COLLECTIONS:
        report.documents[collection] = _sweep_collection(services, collection, cutoff, lifetimes.sweep_batch)
    report.bus_messages = services.bus.expire_settled(now - lifetimes.delivered_messages)
    report.timed_out_runs = expire_run_leases(services, lifetimes.sweep_batch)
    if report.total:
        extra = {"swept": report.documents, "bus_messages": report.bus_messages, "timed_out_runs": report.timed_out_runs}
        logger.info("expired records swept", extra=extra)
    return report


def _sweep_collection(services: Services, collection: str, cutoff: str, batch: int) -> int:
    """Oldest expiry first, a page at a time, until the first document that has not expired."""
    deleted = 0
    after: PageCursor | None = None
    while True:
        page = services.documents.page(collection, EXPIRE_AT, limit=batch, after=after)
        for doc_id, doc in page.items:
            expire_at = doc.get(EXPIRE_AT)
            if expire_at is None:
                continue  # Firestore orders a null first; it never expires
            if str(expire_at) > cutoff:
                return deleted
            services.documents.delete(collection, doc_id)
            deleted += 1
        if page.next_cursor is None:
            return deleted
        after = page.next_cursor
