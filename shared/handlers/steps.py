"""Step handler: dedupe, run the step's side effect, mark it done in a transaction, fan in."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from schemas.events import StepRequested
from shared.domain import tenant as transitions
from shared.domain.errors import PermanentEventError
from shared.domain.tenant import FINAL_STEP, TenantState
from shared.handlers.lifecycle import publish_activation
from shared.handlers.provisioning import STEP_ACTIONS
from shared.handlers.step_commands import publish_step
from shared.handlers.tenant_store import load_tenant, update_tenant
from shared.ports import EXPIRE_AT
from shared.services import PROCESSED_EVENTS, Services, iso

__all__ = ["handle_step", "load_tenant", "update_tenant"]

logger = logging.getLogger(__name__)


def handle_step(command: StepRequested, services: Services) -> str:
    """Run one provisioning step at least once in effect; returns what happened, for logs and tests."""
    if services.documents.get(PROCESSED_EVENTS, command.event_id) is not None:
        return "duplicate"
    state = load_tenant(services, command.tenant_id)
    if state is None:
        raise PermanentEventError(f"unknown tenant {command.tenant_id}")
    step = state.step(command.step)
    if command.generation < step.generation:
        _mark_processed(services, command, "stale")
        return "stale"
    if command.generation > step.generation:
        raise PermanentEventError(f"step {command.step} generation {command.generation} is ahead of the state document")
    if step.status == "FAILED":
        _mark_processed(services, command, "given_up")  # a straggler after the dead letter
        return "given_up"
    if step.status == "DONE":
        _republish_view_if_waiting(services, state)
        if command.step == FINAL_STEP:
            publish_activation(services, state)  # heals a crash between the commit and the publish
        _mark_processed(services, command, "already_done")
        return "already_done"
    if command.step == FINAL_STEP and not state.prerequisites_done():
        raise RuntimeError("view step delivered before its prerequisites were done")

    def current(change: Callable[[TenantState], TenantState]) -> Callable[[TenantState], TenantState | None]:
        # A concurrent delivery may have finished the step, or a retry superseded it, meanwhile.
        return lambda s: change(s) if transitions.step_is_current(s, command.step, command.generation) else None

    began = update_tenant(services, command.tenant_id, current(lambda s: transitions.begin_attempt(s, command.step, services.now())))
    if began is None:
        return "superseded"  # done, given up or retried meanwhile
    try:
        facts = STEP_ACTIONS[command.step](began, command, services)
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"[:500]
        update_tenant(services, command.tenant_id, current(lambda s: transitions.record_failure(s, command.step, reason, services.now())))
        raise

    released: list[bool] = []

    def complete(state_now: TenantState) -> TenantState | None:
        released.clear()
        if not transitions.step_is_current(state_now, command.step, command.generation):
            return None
        updated, releases_view = transitions.complete_step(state_now, command.step, services.now())
        released.append(releases_view)
        return updated.model_copy(update=_known_facts(facts))

    completed = update_tenant(services, command.tenant_id, complete, publish=lambda _: [FINAL_STEP] if released and released[0] else [])
    if command.step == FINAL_STEP:
        publish_activation(services, completed or load_tenant(services, command.tenant_id) or state)
    _mark_processed(services, command, "done")
    logger.info("step done", extra={"tenant_id": command.tenant_id, "step": command.step, "event_id": command.event_id})
    return "done"


def _known_facts(facts: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in facts.items() if key in TenantState.model_fields}


def _republish_view_if_waiting(services: Services, state: TenantState) -> None:
    """A crash between completing the last prerequisite and publishing the view is healed here."""
    view = state.step(FINAL_STEP)
    if state.prerequisites_done() and view.status == "PENDING" and view.attempts == 0:
        publish_step(services, state, FINAL_STEP)


def _mark_processed(services: Services, command: StepRequested, outcome: str) -> None:
    services.documents.create(
        PROCESSED_EVENTS,
        command.event_id,
        {
            "event_id": command.event_id,
            "tenant_id": command.tenant_id,
            "step": command.step,
            "outcome": outcome,
            "processed_at": services.now(),
            EXPIRE_AT: iso(services.clock() + services.settings.lifetimes.processed_events),
        },
    )
