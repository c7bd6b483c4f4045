"""Step commands and the status URL that shows their progress: used by onboard, steps, retry and reconcile.

Step commands go through an outbox: staged in the transaction that changes the state, published
after it commits. A command written with the state change cannot be lost to a crash between the
commit and the publish: whatever is still in the outbox is published by the relay (at start-up
locally, and by the scheduled reconciler). An entry leaves the outbox once published, so restarts
never publish it again; a crash between the publish and the delete repeats it once, under the same
event id, which the step handler deduplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta

from schemas.base import Contract
from schemas.events import PipelineRunRequested, StepRequested
from shared.domain.tenant import TenantState
from shared.handlers.publishing import publish_event
from shared.ports import BackendError, Document, Transaction
from shared.services import OUTBOX, Services, iso
from shared.tracing import TRACE_ATTRIBUTE, current_trace, parse_traceparent, trace_scope

logger = logging.getLogger(__name__)


def status_url(tenant_id: str) -> str:
    """Where to poll the tenant's progress."""
    return f"/api/v1/tenants/{tenant_id}"


def step_event_id(state: TenantState, step: str, generation: int) -> str:
    """Deterministic, so a republished step command is recognized as the same event.

    The tenant's creation time is part of it: a tenant id onboarded again after a purge
    starts a new series of events instead of finding the old ones already processed.
    """
    return f"{state.tenant_id}.{state.incarnation}.{step}.{generation}"


def publish_step(services: Services, state: TenantState, step: str) -> None:
    """Publish the command for one step of `state` on that step's topic (outside any state change)."""
    publish_event(services, services.settings.topics.step(step), step_command(services, state, step), tenant_id=state.tenant_id)


def step_command(services: Services, state: TenantState, step: str) -> StepRequested:
    """The command for one step of `state`, at the step's current generation."""
    generation = state.steps[step].generation
    return StepRequested(
        event_id=step_event_id(state, step, generation),
        tenant_id=state.tenant_id,
        step=step,
        generation=generation,
        force_recreate_dataset=state.force_recreate_dataset,
        force_recreate_tables=state.force_recreate_tables,
        occurred_at=services.now(),
    )


def stage_steps(txn: Transaction, services: Services, state: TenantState, steps: Iterable[str]) -> dict[str, Document]:
    """Write the commands for `steps` into the outbox inside `txn`; returns the entries by id (for `relay`)."""
    staged: dict[str, Document] = {}
    for step in steps:
        command = step_command(services, state, step)
        entry = _outbox_entry(services.settings.topics.step(step), command, state.tenant_id, command.occurred_at)
        txn.set(OUTBOX, command.event_id, entry)
        staged[command.event_id] = entry
    return staged


def stage_event(txn: Transaction, services: Services, topic: str, event: Contract, *, event_id: str, tenant_id: str) -> str:
    """Write any other outboxed event (an admitted pipeline run) inside `txn`; returns its entry id."""
    entry = _outbox_entry(topic, event, tenant_id, services.now())
    entry["event_type"] = type(event).__name__
    txn.set(OUTBOX, event_id, entry)
    return event_id


def _outbox_entry(topic: str, event: Contract, tenant_id: str, created_at: str) -> Document:
    entry: Document = {"topic": topic, "command": event.model_dump_json(), "tenant_id": tenant_id, "created_at": created_at}
    trace = current_trace()
    if trace is not None:
        # The relay may publish it later, from another request or process: the cause's trace goes along.
        entry[TRACE_ATTRIBUTE] = trace.traceparent()
    return entry


def relay(services: Services, entry_ids: Iterable[str] | Mapping[str, Document], *, strict: bool = False) -> int:
    """Publish these outbox entries and remove them; one that fails stays for the relay. Returns how many went out.

    `strict` raises the first failure instead (the rest stay in the outbox too): for a caller
    whose message is redelivered when it fails, so the redelivery publishes them at once.
    Entries given with their content (what `stage_steps` returned to the transaction that just
    committed them) are not read back first: should another relay have sent one meanwhile, it
    goes out twice under the same event id, and the step handler drops the second.
    """
    known: Mapping[str, Document] = entry_ids if isinstance(entry_ids, Mapping) else {}
    sent = 0
    for entry_id in entry_ids:
        entry = known[entry_id] if entry_id in known else services.documents.get(OUTBOX, entry_id)
        if entry is None:
            continue  # another relay published it
        try:
            _publish(services, entry)
        except BackendError:
            if strict:
                raise
            logger.exception("step command not published; it stays in the outbox", extra={"event_id": entry_id})
            continue
        services.documents.delete(OUTBOX, entry_id)
        sent += 1
    return sent


def relay_pending(services: Services, older_than: timedelta) -> int:
    """Publish every outbox entry staged more than `older_than` ago (younger ones are being relayed by their writer)."""
    cutoff = iso(services.clock() - older_than)
    due = [entry_id for entry_id, entry in services.documents.scan(OUTBOX, "created_at") if str(entry["created_at"]) <= cutoff]
    sent = relay(services, due)
    if sent:
        logger.info("outbox relayed", extra={"published": sent})
    return sent


# What an outbox entry may hold, by `event_type` (entries written before it existed are step commands).
_OUTBOX_EVENTS: dict[str, type[StepRequested] | type[PipelineRunRequested]] = {
    "StepRequested": StepRequested,
    "PipelineRunRequested": PipelineRunRequested,
}


def _publish(services: Services, entry: dict[str, object]) -> None:
    command = _OUTBOX_EVENTS[str(entry.get("event_type", "StepRequested"))].model_validate_json(str(entry["command"]))
    with trace_scope(parse_traceparent(str(entry.get(TRACE_ATTRIBUTE) or ""))):
        publish_event(services, str(entry["topic"]), command, tenant_id=command.tenant_id)
