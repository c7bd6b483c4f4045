"""CloudEvent functions: one per provisioning step, each triggered by its own Pub/Sub topic."""

from __future__ import annotations

from datetime import timedelta

import functions_framework
from cloudevents.http import CloudEvent

from schemas.events import StepRequested
from shared.domain.steps import step_topic
from shared.entrypoints.events import handle_dead_letter, handle_event
from shared.entrypoints.runtime import get_services
from shared.handlers.dead_letters import dead_letter_topic, handle_step_dead_letter
from shared.handlers.reconcile import reconcile
from shared.handlers.steps import handle_step


def _run_step(cloud_event: CloudEvent, step: str) -> None:
    services = get_services()
    topic = step_topic(services.settings.topics, step)
    handle_event(cloud_event, StepRequested, handle_step, services, dead_letter_topic(topic))


@functions_framework.cloud_event
def step_subscription(cloud_event: CloudEvent) -> None:
    """Subscription step: profile and subscription rows."""
    _run_step(cloud_event, "subscription")


@functions_framework.cloud_event
def step_quota(cloud_event: CloudEvent) -> None:
    """Quota step: today's usage-quota row."""
    _run_step(cloud_event, "quota")


@functions_framework.cloud_event
def step_dataset(cloud_event: CloudEvent) -> None:
    """Dataset step: the tenant's dataset and validation table."""
    _run_step(cloud_event, "dataset")


@functions_framework.cloud_event
def step_view(cloud_event: CloudEvent) -> None:
    """View step: the comprehensive view, validation row and run; the tenant becomes ACTIVE."""
    _run_step(cloud_event, "view")


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
