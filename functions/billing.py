"""Billing and lifecycle functions: billing events in (Pub/Sub and HTTP), audit trail, purge."""

from __future__ import annotations

import flask
import functions_framework
from cloudevents.http import CloudEvent

from functions.serving import serve
from schemas.events import BillingEvent
from schemas.http import BillingEventAccepted
from shared.entrypoints.events import handle_dead_letter, handle_event
from shared.entrypoints.http import json_response, public_url, read_json
from shared.entrypoints.runtime import get_services
from shared.handlers.billing import handle_billing_dead_letter, handle_billing_event, tenant_events
from shared.handlers.dead_letters import dead_letter_topic
from shared.handlers.publishing import publish_event
from shared.handlers.purge import purge_expired_tenants
from shared.handlers.sweep import sweep_expired
from shared.logging_setup import log_context
from shared.metrics import count_billing_event


def _publish_billing_event(request: flask.Request) -> flask.Response:
    services = get_services()
    event = read_json(request, BillingEvent, services.settings.http.max_body_bytes)
    with log_context(tenant_id=event.tenant_id, event_id=event.event_id):
        publish_event(services, services.settings.topics.billing, event, tenant_id=event.tenant_id)
        accepted = BillingEventAccepted(
            event_id=event.event_id,
            tenant_id=event.tenant_id,
            status="ACCEPTED",
            events_url=public_url(request, f"/api/v1/tenants/{event.tenant_id}/events"),
        )
        return json_response(accepted, 202)


def _tenant_events(request: flask.Request, tenant_id: str) -> flask.Response:
    args = request.args
    return json_response(tenant_events(tenant_id, get_services(), limit=args.get("limit"), page_token=args.get("page_token")))


def _purge(request: flask.Request) -> flask.Response:
    return json_response(purge_expired_tenants(get_services()))


@functions_framework.http
def billing_events_http(request: flask.Request) -> flask.Response:
    """POST /api/v1/billing/events: publish one billing message on billing-events; 202."""
    return serve("billing_events_http", request)


@functions_framework.http
def tenant_events_http(request: flask.Request) -> flask.Response:
    """GET /api/v1/tenants/{tenant_id}/events: the tenant's audit trail."""
    return serve("tenant_events_http", request)


@functions_framework.http
def purge_expired_http(request: flask.Request) -> flask.Response:
    """POST /api/v1/tenants/purge-expired: purge offboarded tenants past their retention."""
    return serve("purge_expired_http", request)


@functions_framework.cloud_event
def billing_event(cloud_event: CloudEvent) -> None:
    """Topic billing-events: apply one billing event to its tenant."""
    services = get_services()
    topic = services.settings.topics.billing
    outcome = "error"
    try:
        outcome = handle_event(cloud_event, BillingEvent, handle_billing_event, services, dead_letter_topic(topic))
    finally:
        count_billing_event(outcome)


@functions_framework.cloud_event
def billing_dead_letter(cloud_event: CloudEvent) -> None:
    """Topic billing-events-dead-letter: keep the message and why it can never apply."""
    handle_dead_letter(cloud_event, handle_billing_dead_letter, get_services())


@functions_framework.cloud_event
def purge_expired(cloud_event: CloudEvent) -> None:
    """Cloud Scheduler (through Pub/Sub): purge offboarded tenants past their retention."""
    purge_expired_tenants(get_services())


@functions_framework.cloud_event
def sweep_expired_records(cloud_event: CloudEvent) -> None:
    """Cloud Scheduler (through Pub/Sub): delete records past their `expire_at` sooner than Firestore's TTL does."""
    sweep_expired(get_services())
