"""Tenant administration by operators: suspend, resume and offboard with a reason; API key rotation and revocation."""

from __future__ import annotations

import flask
import functions_framework

from functions.serving import serve
from schemas.http import ApiKeyRevokeRequest, ApiKeyRotateRequest, OperatorAction, OperatorActionRequest
from shared.domain.documents import AuditNote
from shared.entrypoints.http import current_operator, json_response, public_url, read_json
from shared.entrypoints.runtime import get_services
from shared.handlers.api_key_rotation import revoke_api_keys, rotate_api_key
from shared.handlers.billing import apply_operator_action
from shared.logging_setup import log_context


def _act(request: flask.Request, tenant_id: str, action: OperatorAction) -> flask.Response:
    services = get_services()
    body = read_json(request, OperatorActionRequest, services.settings.http.max_body_bytes)
    with log_context(tenant_id=tenant_id):
        note = AuditNote(reason=body.reason, actor=current_operator())
        events_url = public_url(request, f"/api/v1/tenants/{tenant_id}/events")
        return json_response(apply_operator_action(tenant_id, action, note, services, events_url))


def _suspend(request: flask.Request, tenant_id: str) -> flask.Response:
    return _act(request, tenant_id, "suspend")


def _resume(request: flask.Request, tenant_id: str) -> flask.Response:
    return _act(request, tenant_id, "resume")


def _offboard(request: flask.Request, tenant_id: str) -> flask.Response:
    return _act(request, tenant_id, "offboard")


def _rotate_key(request: flask.Request, tenant_id: str) -> flask.Response:
    services = get_services()
    body = read_json(request, ApiKeyRotateRequest, services.settings.http.max_body_bytes)
    with log_context(tenant_id=tenant_id):
        note = AuditNote(reason=body.reason, actor=current_operator())
        return json_response(rotate_api_key(tenant_id, body.grace_hours, note, services))


def _revoke_keys(request: flask.Request, tenant_id: str) -> flask.Response:
    services = get_services()
    body = read_json(request, ApiKeyRevokeRequest, services.settings.http.max_body_bytes)
    with log_context(tenant_id=tenant_id):
        note = AuditNote(reason=body.reason, actor=current_operator())
        return json_response(revoke_api_keys(tenant_id, body.key_id, note, services))


@functions_framework.http
def tenant_admin(request: flask.Request) -> flask.Response:
    """POST /api/v1/tenants/{tenant_id}/suspend|resume|offboard and api-keys/rotate|revoke: operators' actions."""
    return serve("tenant_admin", request)
