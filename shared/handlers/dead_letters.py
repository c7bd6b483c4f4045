"""Dead letters: a step that gave up turns the step and the tenant FAILED, with its reason."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from schemas.events import StepRequested
from shared.domain import tenant as transitions
from shared.domain.errors import PermanentEventError
from shared.domain.tenant import TenantState
from shared.handlers.steps import update_tenant
from shared.services import Services

logger = logging.getLogger(__name__)


def dead_letter_topic(topic: str) -> str:
    """The dead-letter topic of a step topic."""
    return f"{topic}-dead-letter"


def handle_step_dead_letter(data: bytes, reason: str, services: Services) -> str:
    """Record the failure on the tenant; a payload that is not a step command is only logged."""
    try:
        command = StepRequested.model_validate_json(data)
    except ValidationError:
        logger.error("dead letter with an unreadable payload", extra={"reason": reason})
        return "unreadable"

    def fail(state: TenantState) -> TenantState | None:
        step = state.step(command.step)
        if step.status == "DONE" or step.generation != command.generation:
            return None
        return transitions.fail_step(state, command.step, step.error or reason, services.now())

    try:
        update_tenant(services, command.tenant_id, fail)
    except PermanentEventError:
        logger.error("dead letter for an unknown tenant", extra={"tenant_id": command.tenant_id, "reason": reason})
        return "unknown_tenant"
    logger.error(
        "step failed for good",
        extra={"tenant_id": command.tenant_id, "step": command.step, "event_id": command.event_id, "reason": reason},
    )
    return "failed"
