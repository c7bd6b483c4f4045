"""Reconciler: republish the pending steps of provisioning tenants (heals a crash before publish)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from shared.domain.tenant import TenantState
from shared.handlers.step_commands import publish_step
from shared.services import TENANTS, Services

logger = logging.getLogger(__name__)


def reconcile(services: Services, stale_after: timedelta) -> int:
    """Republish every PENDING/RUNNING step untouched for `stale_after`; returns how many.

    Step commands carry deterministic event ids, so a republished one that was in fact
    still queued is deduplicated by its handler.
    """
    cutoff = services.clock() - stale_after
    republished = 0
    for raw in services.documents.find(TENANTS, "status", "PROVISIONING", limit=10_000):
        state = TenantState.model_validate(raw)
        if datetime.fromisoformat(state.updated_at) > cutoff:
            continue
        for name, step in state.steps.items():
            if step.status not in ("PENDING", "RUNNING"):
                continue
            if not state.prerequisites_done(name):
                continue
            publish_step(services, state, name)
            republished += 1
    if republished:
        logger.info("reconciler republished steps", extra={"republished": republished})
    return republished
