"""HTTP functions of the onboarding API (one Cloud Function each; one process locally)."""

from __future__ import annotations

import re

import flask
import functions_framework

from functions.serving import serve
from schemas.http import HealthResponse, OnboardRequest, TenantRequest
from shared.domain.errors import InvalidRequest
from shared.entrypoints.http import idempotency_key_of, json_response, public_url, read_json
from shared.entrypoints.runtime import get_services
from shared.handlers.dead_letters import list_dead_letters
from shared.handlers.dryrun import run_dry_run
from shared.handlers.onboard import completed_body, onboard, wait_for_outcome
from shared.handlers.queries import list_tenants
from shared.handlers.queries import tenant_overview as read_overview
from shared.handlers.queries import tenant_status as read_status
from shared.handlers.retry import retry_tenant
from shared.logging_setup import log_context
from shared.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from shared.metrics import count_onboarding, exposition


def _dryrun(request: flask.Request) -> flask.Response:
    services = get_services()
    body = read_json(request, TenantRequest, services.settings.http.max_body_bytes)
    with log_context(tenant_id=body.tenant_id):
        return json_response(run_dry_run(body, services))


def _wait_seconds(raw: str | None, limit: int) -> int:
    if raw is None:
        return 0
    # ASCII digits only ("²".isdigit() is true), and few of them: int() refuses over 4,300 digits.
    if not re.fullmatch(r"[0-9]{1,6}", raw) or int(raw) > limit:
        raise InvalidRequest(f"wait must be a whole number of seconds from 0 to {limit}", field="wait")
    return int(raw)


def _onboard(request: flask.Request) -> flask.Response:
    services = get_services()
    wait = _wait_seconds(request.args.get("wait"), services.settings.http.max_wait_seconds)
    idempotency_key = idempotency_key_of(request)
    body = read_json(request, OnboardRequest, services.settings.http.max_body_bytes)
    with log_context(tenant_id=body.tenant_id):
        result = onboard(body, idempotency_key, services)
        count_onboarding("replayed" if result.replayed else "accepted")
        accepted = result.accepted.model_copy(update={"status_url": public_url(request, result.accepted.status_url)})
        headers = {"Location": accepted.status_url}
        if wait:
            state = wait_for_outcome(body.tenant_id, wait, services)
            if state is not None and state.status == "ACTIVE":
                return json_response(completed_body(accepted, state), 201, headers)
            if state is not None and state.status == "FAILED":
                failed = accepted.model_copy(update={"status": "FAILED", "message": state.error or "provisioning failed"})
                return json_response(failed, 202, headers)
        return json_response(accepted, 202, headers)


def _status(request: flask.Request, tenant_id: str) -> flask.Response:
    return json_response(read_status(tenant_id, get_services()))


def _list_tenants(request: flask.Request) -> flask.Response:
    args = request.args
    return json_response(
        list_tenants(
            get_services(),
            status=args.get("status"),
            plan=args.get("plan"),
            limit=args.get("limit"),
            page_token=args.get("page_token"),
        )
    )


def _overview(request: flask.Request, tenant_id: str) -> flask.Response:
    with log_context(tenant_id=tenant_id):
        return json_response(read_overview(tenant_id, request.headers.get("X-API-Key"), get_services()))


def _health(request: flask.Request) -> flask.Response:
    return json_response(HealthResponse(status="ok", backend=get_services().settings.backend))


def _retry(request: flask.Request, tenant_id: str) -> flask.Response:
    with log_context(tenant_id=tenant_id):
        accepted = retry_tenant(tenant_id, get_services())
        accepted = accepted.model_copy(update={"status_url": public_url(request, accepted.status_url)})
        return json_response(accepted, 202, {"Location": accepted.status_url})


def _dead_letters(request: flask.Request) -> flask.Response:
    args = request.args
    return json_response(
        list_dead_letters(
            get_services(),
            status=args.get("status"),
            tenant_id=args.get("tenant_id"),
            limit=args.get("limit"),
            page_token=args.get("page_token"),
        )
    )


def _metrics(request: flask.Request) -> flask.Response:
    return flask.Response(exposition(get_services), mimetype=None, content_type=METRICS_CONTENT_TYPE)


def _openapi(request: flask.Request) -> flask.Response:
    from functions.routes import openapi_document

    return json_response(openapi_document(public_url(request, "")))


@functions_framework.http
def dryrun(request: flask.Request) -> flask.Response:
    """POST /api/v1/tenants/dryrun: run every dry-run check; creates nothing."""
    return serve("dryrun", request)


@functions_framework.http
def onboard_tenant(request: flask.Request) -> flask.Response:
    """POST /api/v1/tenants/onboard: create the tenant after a passed dry run."""
    return serve("onboard_tenant", request)


@functions_framework.http
def tenant_status(request: flask.Request) -> flask.Response:
    """GET /api/v1/tenants/{tenant_id}: status and steps; GET /api/v1/tenants: the list, a page at a time."""
    return serve("tenant_status", request)


@functions_framework.http
def tenant_overview(request: flask.Request) -> flask.Response:
    """GET /api/v1/tenants/{tenant_id}/overview with X-API-Key: the tenant's view row."""
    return serve("tenant_overview", request)


@functions_framework.http
def healthz(request: flask.Request) -> flask.Response:
    """GET /healthz: liveness; GET /openapi.json: the API's OpenAPI 3.1 document."""
    return serve("healthz", request)


@functions_framework.http
def retry_tenant_steps(request: flask.Request) -> flask.Response:
    """POST /api/v1/tenants/{tenant_id}/retry: re-drive the failed steps of a FAILED tenant."""
    return serve("retry_tenant_steps", request)


@functions_framework.http
def dead_letters(request: flask.Request) -> flask.Response:
    """GET /api/v1/dead-letters: messages given up on, with reason and attempts."""
    return serve("dead_letters", request)
