"""CloudEvent functions: one per declared provisioning step, each triggered by its own Pub/Sub topic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import cache

import functions_framework
from cloudevents.http import CloudEvent

from schemas.events import StepRequested
from shared.domain.steps import declaration, steps
from shared.entrypoints.events import handle_dead_letter, handle_event, message_trace
from shared.entrypoints.runtime import get_services
from shared.handlers.dead_letters import dead_letter_topic, handle_step_dead_letter
from shared.handlers.reconcile import reconcile
from shared.handlers.steps import handle_step
from shared.metrics import timed_delivery
from shared.tracing import trace_scope


def _run_step(cloud_event: CloudEvent, step: str) -> None:
    services = get_services()
    topic = services.settings.topics.step(step)
    with trace_scope(message_trace(cloud_event)), timed_delivery(step) as outcome:
        outcome.append(handle_event(cloud_event, StepRequested, handle_step, services, dead_letter_topic(topic)))


@cache
def step_function(step: str) -> Callable[[CloudEvent], None]:
    """The CloudEvent function of a declared step (`step_<name>`), triggered by the step's topic."""
    declared = declaration(step)

    def run(cloud_event: CloudEvent) -> None:
        _run_step(cloud_event, step)

    run.__name__ = run.__qualname__ = declared.function
    run.__doc__ = f"Step {step}: {declared.summary}."
    function: Callable[[CloudEvent], None] = functions_framework.cloud_event(run)
    return function


def __getattr__(name: str) -> Callable[[CloudEvent], None]:
    """`step_<name>` for every declared step: no step needs a function written out here."""
    for declared in steps():
        if declared.function == name:
            return step_function(declared.name)
    raise AttributeError(name)


@functions_framework.cloud_event
def step_dead_letter(cloud_event: CloudEvent) -> None:
    """Any step's dead-letter topic: the step and the tenant become FAILED."""
    handle_dead_letter(cloud_event, handle_step_dead_letter, get_services())


# A step stranded by a crash between its commit and its publish is older than any redelivery.
STRANDED_AFTER = timedelta(minutes=15)


@functions_framework.cloud_event
def reconcile_steps(cloud_event: CloudEvent) -> None:
    """Cloud Scheduler (through Pub/Sub): republish the steps of provisioning tenants left stranded."""
    reconcile(get_services(), stale_after=STRANDED_AFTER)
