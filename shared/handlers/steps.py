"""Step handler: decide and begin in one transaction, run the step's effects, complete and fan in in another.

A step with effects (BigQuery DDL) visits the state document twice: one transaction that
dedupes and counts the attempt, one that completes the step, records its facts, releases the
steps waiting on it (their commands staged in the outbox, published after the commit) and
writes the processed marker. A step that only records something in the state document does
all of that in a single transaction. A completion that makes the tenant ACTIVE marks its
marker finished once going live is done; released steps wait in the outbox until relayed,
by the completing delivery, a redelivery of it, or the reconciler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from schemas.events import StepRequested
from shared.domain import steps as step_graph
from shared.domain import tenant as transitions
from shared.domain.errors import PermanentEventError
from shared.domain.tenant import TenantState
from shared.handlers.analytics_copy import VALIDATION_PIPELINE, append_copy, run_row, validation_run_id
from shared.handlers.lifecycle import publish_activation
from shared.handlers.provisioning import StepAction, action_of
from shared.handlers.step_commands import publish_step, relay, stage_steps, step_event_id
from shared.handlers.tenant_store import load_tenant, update_tenant
from shared.metrics import count_onboarding
from shared.ports import EXPIRE_AT, Document, Transaction
from shared.services import PROCESSED_EVENTS, TENANTS, Services, iso

__all__ = ["go_live", "handle_step", "load_tenant", "update_tenant"]

logger = logging.getLogger(__name__)
Verdict = Literal["run", "stale", "given_up", "already_done", "duplicate"]


def handle_step(command: StepRequested, services: Services) -> str:
    """Run one provisioning step at least once in effect; returns what happened, for logs and tests."""
    action = action_of(command.step)
    if action.effects is None:
        return _complete(command, services, action, {}, begin=True, copied=_copy_if_going_live(command, services, action))
    verdict, began = services.documents.run_transaction(lambda txn: _begin(txn, command, services))
    if verdict != "run":
        if verdict == "already_done":
            _heal(services, began, command)
        elif verdict == "duplicate":
            _relay_released(services, began, command)
        return verdict

    def current(change: Callable[[TenantState], TenantState]) -> Callable[[TenantState], TenantState | None]:
        # A concurrent delivery may have finished the step, or a retry superseded it, meanwhile.
        return lambda s: change(s) if transitions.step_is_current(s, command.step, command.generation) else None

    try:
        facts = action.effects(began, command, services)
        predicted, _ = _completed(began, command, action, facts, services)
        if predicted.status == "ACTIVE":
            # The copy goes in before the commit that makes the tenant ACTIVE: whoever sees
            # ACTIVE finds its rows. Their version is at most the revision the commit writes.
            _append_go_live_copy(services, predicted)
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"[:500]
        update_tenant(services, command.tenant_id, current(lambda s: transitions.record_failure(s, command.step, reason, services.now())))
        raise
    return _complete(command, services, action, facts, begin=False)


def _copy_if_going_live(command: StepRequested, services: Services, action: StepAction) -> bool:
    """A record-only step that completes the graph: the copy goes in before the commit that makes the tenant ACTIVE.

    Only a step nothing waits on can be the last, so only such a step reads the state document
    first (one read, no transaction); what it predicts is what its transaction will commit
    unless something else changed the tenant meanwhile, and a copy row of an earlier revision
    is replaced by the next append, as after a step with effects. Returns whether it appended.
    """
    if step_graph.dependents_of(command.step):
        return False
    raw = services.documents.get(TENANTS, command.tenant_id)
    if raw is None:
        return False
    state = TenantState.model_validate(raw)
    if not transitions.step_is_current(state, command.step, command.generation) or not state.prerequisites_done(command.step):
        return False
    predicted, _ = _completed(transitions.begin_attempt(state, command.step, services.now()), command, action, {}, services)
    if predicted.status != "ACTIVE":
        return False
    _append_go_live_copy(services, predicted)
    return True


def _completed(
    state: TenantState, command: StepRequested, action: StepAction, facts: dict[str, Any], services: Services
) -> tuple[TenantState, list[str]]:
    """The state once `command`'s step is complete: DONE, its record and facts in, what it releases."""
    updated, released = transitions.complete_step(state, command.step, services.now())
    if action.record is not None:
        updated = action.record(updated, services)
    return updated.model_copy(update=_known_facts(facts)), released


def _triage(txn: Transaction, state: TenantState, command: StepRequested) -> Verdict:
    """What a delivery of `command` may do against the state document and its processed marker.

    The marker is written by the transaction that completes the step; it says whether what
    follows the commit (publishing released steps, going live) is done too. Only a delivery
    that finds it unfinished repeats that part.
    """
    marker = txn.get(PROCESSED_EVENTS, command.event_id)
    if marker is not None and marker.get("outcome") == "done":
        return "duplicate" if marker.get("effects_done", True) else "already_done"
    step = state.step(command.step)
    if command.generation < step.generation:
        return "stale"
    if command.generation > step.generation:
        raise PermanentEventError(f"step {command.step} generation {command.generation} is ahead of the state document")
    if step.status == "FAILED":
        return "given_up"  # a straggler after the dead letter
    if step.status == "DONE":
        return "already_done"
    if not state.prerequisites_done(command.step):
        raise RuntimeError(f"{command.step} step delivered before its prerequisites were done")
    return "run"


def _read(txn: Transaction, tenant_id: str) -> TenantState:
    raw = txn.get(TENANTS, tenant_id)
    if raw is None:
        raise PermanentEventError(f"unknown tenant {tenant_id}")
    return TenantState.model_validate(raw)


def _begin(txn: Transaction, command: StepRequested, services: Services) -> tuple[Verdict, TenantState]:
    state = _read(txn, command.tenant_id)
    verdict = _triage(txn, state, command)
    if verdict in ("stale", "given_up"):
        txn.set(PROCESSED_EVENTS, command.event_id, _marker(command, verdict, services))
    if verdict != "run":
        return verdict, state
    began = transitions.begin_attempt(state, command.step, services.now())
    txn.set(TENANTS, command.tenant_id, began.model_dump())
    return "run", began


def _complete(
    command: StepRequested, services: Services, action: StepAction, facts: dict[str, Any], *, begin: bool, copied: bool = True
) -> str:
    def complete(txn: Transaction) -> tuple[str, TenantState, dict[str, Document]]:
        state = _read(txn, command.tenant_id)
        if begin:
            verdict = _triage(txn, state, command)
            if verdict in ("stale", "given_up"):
                txn.set(PROCESSED_EVENTS, command.event_id, _marker(command, verdict, services))
            if verdict != "run":
                return verdict, state, {}
            state = transitions.begin_attempt(state, command.step, services.now())
        elif not transitions.step_is_current(state, command.step, command.generation):
            return "superseded", state, {}  # done, given up or retried meanwhile
        updated, released = _completed(state, command, action, facts, services)
        txn.set(TENANTS, command.tenant_id, updated.model_dump())
        # The released steps' commands are staged in the outbox with the state change: a crash
        # after the commit cannot lose them (the relay publishes what is left there).
        staged = stage_steps(txn, services, updated, released)
        # What the completion releases waits in the outbox until relayed: a redelivery finds it
        # there (`_relay_released`), and so does the reconciler. Only going live leaves no such
        # trace, so only it leaves the marker unfinished until done.
        follow_up = updated.status == "ACTIVE"
        txn.set(PROCESSED_EVENTS, command.event_id, _marker(command, "done", services, effects_done=not follow_up))
        return "done", updated, staged

    outcome, state, staged = services.documents.run_transaction(complete)
    if outcome == "already_done":
        _heal(services, state, command)
    elif outcome == "duplicate":
        _relay_released(services, state, command)
    if outcome != "done":
        return outcome
    # A publish that fails leaves its command in the outbox and the marker unfinished: the
    # message is redelivered and the redelivery relays it (or the relay does, whichever is first).
    relay(services, staged, strict=True)
    if state.status == "ACTIVE":
        count_onboarding("active")  # once: only the commit that made the tenant ACTIVE gets here
        go_live(services, state, copied=copied)
    if state.status == "ACTIVE":
        services.documents.set(PROCESSED_EVENTS, command.event_id, _marker(command, "done", services))
    logger.info("step done", extra={"tenant_id": command.tenant_id, "step": command.step, "event_id": command.event_id})
    return "done"


def go_live(services: Services, state: TenantState, *, copied: bool = False) -> None:
    """After the last step: the analytics copy with the onboarding validation run (unless in already), then `tenant.activated`."""
    if not copied:
        _append_go_live_copy(services, state)
    publish_activation(services, state)


def _append_go_live_copy(services: Services, state: TenantState) -> None:
    completed = max((step.completed_at or state.updated_at for step in state.steps.values()), default=state.updated_at)
    validation = run_row(
        state,
        validation_run_id(state.tenant_id),
        pipeline_name=VALIDATION_PIPELINE,
        status="SUCCEEDED",
        finished_at=completed,
        recorded_at=services.clock(),
    )
    append_copy(services, state, runs=[validation])


def _relay_released(services: Services, state: TenantState, command: StepRequested) -> None:
    """A duplicate of a completed step: what it released and nobody ran yet may still be in the outbox (a crash after the commit)."""
    waiting = [
        step_event_id(state, name, state.steps[name].generation)
        for name in step_graph.dependents_of(command.step)
        if state.steps[name].status == "PENDING" and state.steps[name].attempts == 0
    ]
    relay(services, waiting, strict=True)


def _heal(services: Services, state: TenantState, command: StepRequested) -> None:
    """A redelivery of a DONE step finishes what a crash after its commit may have left undone.

    A release still in the outbox is relayed from there; one already gone from it is
    republished under the same event id (deduplicated by its handler). The copy appended
    again carries the same or a newer version: both are safe to repeat.
    """
    step = command.step
    for name in transitions.releasable_steps(state):
        if step in step_graph.prerequisites_of(name):
            entry_id = step_event_id(state, name, state.steps[name].generation)
            if not relay(services, [entry_id], strict=True):
                publish_step(services, state, name)
    if not step_graph.dependents_of(step) and all(current.status == "DONE" for current in state.steps.values()):
        go_live(services, state)
    services.documents.set(PROCESSED_EVENTS, command.event_id, _marker(command, "done", services))


def _known_facts(facts: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in facts.items() if key in TenantState.model_fields}


def _marker(command: StepRequested, outcome: str, services: Services, *, effects_done: bool = True) -> dict[str, Any]:
    return {
        "event_id": command.event_id,
        "tenant_id": command.tenant_id,
        "step": command.step,
        "outcome": outcome,
        "effects_done": effects_done,
        "processed_at": services.now(),
        EXPIRE_AT: iso(services.clock() + services.settings.lifetimes.processed_events),
    }
