"""Reconciler: the outbox relay, publishing step commands whose state change committed but whose publish did not happen."""

from __future__ import annotations

from datetime import timedelta

from shared.handlers.step_commands import relay_pending
from shared.services import Services


def reconcile(services: Services, stale_after: timedelta) -> int:
    """Publish every outbox entry older than `stale_after`; returns how many.

    Entries leave the outbox once published, so however often this runs (every restart,
    every schedule) a command goes out once, or twice after a crash between its publish and
    its removal; step commands carry deterministic event ids, so the handler deduplicates.
    """
    return relay_pending(services, older_than=stale_after)
