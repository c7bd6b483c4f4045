"""Reconciler: the outbox relay, publishing step commands whose state change committed but whose publish did not happen."""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.handlers.dead_letter_store import open_dead_letters
from shared.handlers.step_commands import relay_pending
from shared.services import Services

logger = logging.getLogger(__name__)
# The line the log-based metric onboarding_dead_letter_backlog reads (scripts/observability_config.py).
BACKLOG_LINE = "dead-letter backlog"


def reconcile(services: Services, stale_after: timedelta) -> int:
    """Publish every outbox entry older than `stale_after`; returns how many.

    Entries leave the outbox once published, so however often this runs (every restart,
    every schedule) a command goes out once, or twice after a crash between its publish and
    its removal; step commands carry deterministic event ids, so the handler deduplicates.
    """
    sent = relay_pending(services, older_than=stale_after)
    # On every pass (every 5 minutes on Google Cloud): the alert on open dead letters reads this line.
    logger.info(BACKLOG_LINE, extra={"open_dead_letters": open_dead_letters(services)})
    return sent
