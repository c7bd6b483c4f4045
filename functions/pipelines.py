"""Pipeline-run functions: admission (the tenant's route), the executor's reports (HTTP and Pub/Sub)."""

from __future__ import annotations

import flask
import functions_framework
from cloudevents.http import CloudEvent

from functions.serving import serve
from schemas.events import PipelineRunResult
from schemas.http import PipelineRunRequest
from shared.entrypoints.events import handle_dead_letter, handle_event
from shared.entrypoints.http import idempotency_key_of, json_response, read_json
from shared.entrypoints.runtime import get_services
from shared.handlers.dead_letters import dead_letter_topic
from shared.handlers.pipeline_runs import (
    PipelinePath,
    admit_pipeline_run,
    apply_run_result,
    handle_run_result,
    handle_run_result_dead_letter,
)
from shared.logging_setup import log_context


def _run(request: flask.Request, tenant_id: str, provider: str, domain: str, template: str) -> flask.Response:
    services = get_services()
    key = idempotency_key_of(request)
    has_body = bool(request.content_length) or request.headers.get("Transfer-Encoding") is not None
    body = read_json(request, PipelineRunRequest, services.settings.http.max_body_bytes) if has_body else PipelineRunRequest()
    with log_context(tenant_id=tenant_id):
        path = PipelinePath(tenant_id, provider, domain, template)
        return json_response(admit_pipeline_run(services, path, request.headers.get("X-API-Key"), body, key))


def _report(request: flask.Request) -> flask.Response:
    services = get_services()
    report = read_json(request, PipelineRunResult, services.settings.http.max_body_bytes)
    with log_context(tenant_id=report.tenant_id, event_id=report.event_id):
        return json_response(apply_run_result(report, services))


@functions_framework.http
def run_pipeline(request: flask.Request) -> flask.Response:
    """POST /api/v1/pipelines/run/{tenant_id}/{provider}/{domain}/{template} with X-API-Key: admit one run."""
    return serve("run_pipeline", request)


@functions_framework.http
def pipeline_results_http(request: flask.Request) -> flask.Response:
    """POST /api/v1/pipelines/results: an executor reports RUNNING, SUCCEEDED or FAILED."""
    return serve("pipeline_results_http", request)


@functions_framework.cloud_event
def pipeline_run_result(cloud_event: CloudEvent) -> None:
    """Topic pipeline-run-results: apply an executor's report."""
    services = get_services()
    topic = services.settings.topics.pipeline_run_results
    handle_event(cloud_event, PipelineRunResult, handle_run_result, services, dead_letter_topic(topic))


@functions_framework.cloud_event
def pipeline_result_dead_letter(cloud_event: CloudEvent) -> None:
    """Topic pipeline-run-results-dead-letter: keep a report that can never apply."""
    handle_dead_letter(cloud_event, handle_run_result_dead_letter, get_services())
