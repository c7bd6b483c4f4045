"""The route table: every HTTP route once, with its function, caller class and models.

From this one table the local server and each Cloud Function route (`ROUTERS`, `ALL_ROUTES`),
`GET /openapi.json` is generated (`openapi_document`) and deploy.sh gets API Gateway's
config (`scripts/api_config.py`). Nothing about a route is written anywhere else.
"""

from __future__ import annotations

from typing import Any, get_args

from functions import admin, api, billing, console, pipelines
from schemas.events import BillingEvent, PipelineRunResult
from schemas.http import (
    ApiKeyRevokeRequest,
    ApiKeyRotated,
    ApiKeyRotateRequest,
    ApiKeysRevoked,
    BillingEventAccepted,
    DeadLetterList,
    DryRunResponse,
    HealthResponse,
    OnboardAccepted,
    OnboardCompleted,
    OnboardRequest,
    OperatorActionRequest,
    OperatorActionResponse,
    PipelineRunAdmitted,
    PipelineRunRequest,
    PipelineRunStatus,
    PurgeResponse,
    RetryAccepted,
    TenantEventsResponse,
    TenantList,
    TenantOverview,
    TenantRequest,
    TenantStatus,
    TenantStatusResponse,
)
from shared.entrypoints.http import Caller, Parameter, Route, Router
from shared.entrypoints.openapi import openapi_31, openapi_path

OPERATOR, TENANT, PUBLIC = Caller.OPERATOR, Caller.TENANT, Caller.PUBLIC

ROUTES: tuple[Route, ...] = (
    Route(
        "POST", "/api/v1/tenants/dryrun", "dryrun", OPERATOR, api._dryrun,
        "Run the onboarding checks; creates nothing",
        {200: DryRunResponse}, request=TenantRequest,
    ),
    Route(
        "POST", "/api/v1/tenants/onboard", "onboard_tenant", OPERATOR, api._onboard,
        "Create the tenant after a passed dry run; the API key is shown this once",
        {201: OnboardCompleted, 202: OnboardAccepted}, request=OnboardRequest, errors=(409, 412),
        deadline_seconds=120.0,
        parameters=(
            Parameter("wait", "query", "seconds to wait: 201 if ACTIVE in time", {"type": "integer", "minimum": 0, "maximum": 60}),
            Parameter("Idempotency-Key", "header", "a retry with this key gets the first response", {"type": "string", "maxLength": 200}),
        ),
    ),
    Route(
        "GET", "/api/v1/tenants/<tenant_id>", "tenant_status", OPERATOR, api._status,
        "Status, plan and every provisioning step of a tenant",
        {200: TenantStatusResponse}, errors=(404,),
    ),
    Route(
        "GET", "/api/v1/tenants/<tenant_id>/overview", "tenant_overview", TENANT, api._overview,
        "The tenant's row of tenant_comprehensive_view, with the tenant's own API key",
        {200: TenantOverview}, errors=(404, 409),
    ),
    Route("GET", "/healthz", "healthz", PUBLIC, api._health, "Liveness and the wired backend", {200: HealthResponse}),
    Route(
        "GET", "/openapi.json", "healthz", PUBLIC, api._openapi, "This document",
        {200: {"type": "object", "description": "an OpenAPI 3.1 document"}},
    ),
    Route(
        "POST", "/api/v1/tenants/<tenant_id>/retry", "retry_tenant_steps", OPERATOR, api._retry,
        "Re-drive the failed steps of a FAILED tenant",
        {202: RetryAccepted}, errors=(404, 409),
    ),
    Route(
        "GET", "/api/v1/dead-letters", "dead_letters", OPERATOR, api._dead_letters,
        "Messages given up on, with reason and attempts",
        {200: DeadLetterList}, errors=(422,),
        parameters=(
            Parameter("status", "query", "OPEN or RETRIED", {"type": "string", "enum": ["OPEN", "RETRIED"]}),
            Parameter("tenant_id", "query", "only this tenant's dead letters"),
        ),
    ),
    Route(
        "POST", "/api/v1/billing/events", "billing_events_http", OPERATOR, billing._publish_billing_event,
        "Publish one billing event on billing-events; its outcome shows in the audit trail",
        {202: BillingEventAccepted}, request=BillingEvent,
    ),
    Route(
        "GET", "/api/v1/tenants/<tenant_id>/events", "tenant_events_http", OPERATOR, billing._tenant_events,
        "The tenant's audit trail of billing events",
        {200: TenantEventsResponse}, errors=(404,),
    ),
    Route(
        "POST", "/api/v1/tenants/purge-expired", "purge_expired_http", OPERATOR, billing._purge,
        "Purge offboarded tenants past their retention",
        {200: PurgeResponse}, deadline_seconds=540.0,
    ),
    Route(
        "GET", "/api/v1/tenants", "tenant_status", OPERATOR, api._list_tenants,
        "Tenants newest first, a page at a time, optionally of one status and one plan",
        {200: TenantList}, errors=(422,),
        parameters=(
            Parameter("status", "query", "only tenants in this status", {"type": "string", "enum": list(get_args(TenantStatus))}),
            Parameter("plan", "query", "only tenants on this subscription plan"),
            Parameter("limit", "query", "page size, 1 to 1000 (default 100)", {"type": "integer", "minimum": 1, "maximum": 1000}),
            Parameter("page_token", "query", "next_page_token of the previous page"),
        ),
        operation="list_tenants",
    ),
    Route(
        "POST", "/api/v1/tenants/<tenant_id>/suspend", "tenant_admin", OPERATOR, admin._suspend,
        "Suspend a live tenant, with a reason (its API keys are refused while suspended); recorded in the audit trail",
        {200: OperatorActionResponse}, request=OperatorActionRequest, errors=(404, 409), operation="suspend_tenant",
    ),
    Route(
        "POST", "/api/v1/tenants/<tenant_id>/resume", "tenant_admin", OPERATOR, admin._resume,
        "Resume a suspended tenant, with a reason; recorded in the audit trail",
        {200: OperatorActionResponse}, request=OperatorActionRequest, errors=(404, 409), operation="resume_tenant",
    ),
    Route(
        "POST", "/api/v1/tenants/<tenant_id>/offboard", "tenant_admin", OPERATOR, admin._offboard,
        "Offboard a live tenant, with a reason: its API keys are revoked, its data kept until purge; recorded in the audit trail",
        {200: OperatorActionResponse}, request=OperatorActionRequest, errors=(404, 409), operation="offboard_tenant",
    ),
    Route(
        "POST", "/api/v1/tenants/<tenant_id>/api-keys/rotate", "tenant_admin", OPERATOR, admin._rotate_key,
        "A new API key, shown this once; the old key works for the grace period (grace_hours), then is refused",
        {200: ApiKeyRotated}, request=ApiKeyRotateRequest, errors=(404, 409), operation="rotate_api_key",
    ),
    Route(
        "POST", "/api/v1/tenants/<tenant_id>/api-keys/revoke", "tenant_admin", OPERATOR, admin._revoke_keys,
        "Refuse at once a rotated-out key (key_id), or every key still in its grace period",
        {200: ApiKeysRevoked}, request=ApiKeyRevokeRequest, errors=(404, 409), operation="revoke_api_keys",
    ),
    Route(
        "GET", "/metrics", "healthz", OPERATOR, api._metrics,
        "Prometheus metrics: onboardings, step durations, dead-letter backlog, billing events, bus queue depth",
        {200: {"type": "string", "description": "Prometheus text exposition format 0.0.4"}},
        media_type="text/plain", operation="get_metrics",
    ),
    Route(
        "GET", "/console", "healthz", PUBLIC, console._page,
        "The operators' console (its data comes from the operator routes, with the operator's token)",
        {200: {"type": "string", "description": "an HTML page"}}, media_type="text/html", operation="get_console",
    ),
    Route(
        "GET", "/console/console.js", "healthz", PUBLIC, console._script, "The console's script",
        {200: {"type": "string"}}, media_type="text/javascript", operation="get_console_script",
    ),
    Route(
        "GET", "/console/console.css", "healthz", PUBLIC, console._style, "The console's style sheet",
        {200: {"type": "string"}}, media_type="text/css", operation="get_console_style",
    ),
    Route(
        "POST", "/api/v1/pipelines/run/<tenant_id>/<provider>/<domain>/<template>", "run_pipeline", TENANT, pipelines._run,
        "Admit one run of the tenant's pipeline against its quota (429 QUOTA_EXCEEDED naming daily, monthly or concurrent)",
        {200: PipelineRunAdmitted}, request=PipelineRunRequest, errors=(404, 409, 429),
        parameters=(
            Parameter("Idempotency-Key", "header", "a retry with this key is admitted once and gets the first response",
                      {"type": "string", "maxLength": 200}),
        ),
    ),
    Route(
        "POST", "/api/v1/pipelines/results", "pipeline_results_http", OPERATOR, pipelines._report,
        "An executor reports a run RUNNING, SUCCEEDED or FAILED (idempotent, any order)",
        {200: PipelineRunStatus}, request=PipelineRunResult, errors=(404,),
    ),
)  # fmt: skip

HTTP_FUNCTIONS: tuple[str, ...] = tuple(dict.fromkeys(route.function for route in ROUTES))
ROUTERS: dict[str, Router] = {name: Router([r for r in ROUTES if r.function == name]) for name in HTTP_FUNCTIONS}
ALL_ROUTES = Router(ROUTES)


def openapi_document(server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route, served at `server_url`."""
    return openapi_31(ROUTES, server_url)


CALLERS_IN_WORDS: dict[Caller, str] = {
    OPERATOR: "operator",
    TENANT: "the tenant itself, `X-API-Key` only",
    PUBLIC: "anyone",
}


def route_table() -> str:
    """The README's table of routes, from ROUTES (a test keeps the README in step)."""
    rows = ["| route | who may call it | what it does |", "|---|---|---|"]
    for route in ROUTES:
        rows.append(f"| `{route.method} {openapi_path(route.path)}` | {CALLERS_IN_WORDS[route.caller]} | {route.summary} |")
    return "\n".join(rows)
