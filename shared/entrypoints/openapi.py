"""Documents generated from the route table: OpenAPI 3.1 (`/openapi.json`) and API Gateway's OpenAPI 2.0 config.

Body schemas come from the pydantic models, so a route's document cannot drift from what it
accepts and returns. API Gateway reads only OpenAPI 2.0, which cannot express the models'
nullable and constant fields; the gateway does not validate bodies either, so its config
carries routing, deadlines and authentication, and the bodies are documented in 3.1 only.
- API Gateway's extensions (x-google-backend, x-google-issuer, ...):
  https://cloud.google.com/api-gateway/docs/oasv2-extensions
- Google ID tokens at the gateway: https://cloud.google.com/api-gateway/docs/authenticating-users-googleid
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from schemas.http import ErrorResponse
from shared.entrypoints.http import Caller, Route, error_statuses

_RULE_ARGUMENT = re.compile(r"<(?:[a-z_]+:)?([A-Za-z_][A-Za-z0-9_]*)>")
OPERATOR_SCHEME = "operatorBearer"
TENANT_SCHEME = "tenantApiKey"
GOOGLE_ID_TOKEN = "google_id_token"  # noqa: S105 (the security definition's name)
GOOGLE_ISSUER = "https://accounts.google.com"
GOOGLE_JWKS = "https://www.googleapis.com/oauth2/v3/certs"


def openapi_path(rule: str) -> str:
    """`/api/v1/tenants/<tenant_id>` as `/api/v1/tenants/{tenant_id}`."""
    return _RULE_ARGUMENT.sub(r"{\1}", rule)


def path_arguments(rule: str) -> list[str]:
    """The names of a rule's path arguments."""
    return _RULE_ARGUMENT.findall(rule)


def _operation_id(route: Route) -> str:
    if route.operation is not None:
        return route.operation
    return f"{route.method.lower()}_{route.function}" + ("_openapi" if route.path == "/openapi.json" else "")


def _models(routes: Iterable[Route]) -> tuple[list[type[BaseModel]], list[type[BaseModel]]]:
    requests: dict[str, type[BaseModel]] = {}
    responses: dict[str, type[BaseModel]] = {ErrorResponse.__name__: ErrorResponse}
    for route in routes:
        if route.request is not None:
            requests[route.request.__name__] = route.request
        for body in route.responses.values():
            if isinstance(body, type):
                responses[body.__name__] = body
    return list(requests.values()), list(responses.values())


def openapi_31(routes: Sequence[Route], server_url: str, title: str = "Tenant onboarding API", version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes`, every body schema from its pydantic model."""
    requests, responses = _models(routes)
    keys = [(model, "validation") for model in requests] + [(model, "serialization") for model in responses]
    refs, definitions = models_json_schema(keys, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "operationId": _operation_id(route),
            "summary": route.summary,
            "x-caller": route.caller.value,
            "x-function": route.function,
            "security": _security_31(route.caller),
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in path_arguments(route.path)
            ]
            + [
                {"name": p.name, "in": p.location, "required": False, "description": p.description, "schema": dict(p.schema)}
                for p in route.parameters
            ],
            "responses": {},
        }
        if route.request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(route.request, "validation")]}},
            }
        for status, body in sorted(route.responses.items()):
            schema = refs[(body, "serialization")] if isinstance(body, type) else dict(body)
            operation["responses"][str(status)] = _response(status, schema, route)
        for status in error_statuses(route):
            operation["responses"][str(status)] = _response(status, refs[(ErrorResponse, "serialization")], route)
        paths.setdefault(openapi_path(route.path), {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "servers": [{"url": server_url or "/"}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                OPERATOR_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Operators: locally the operator token; on Google Cloud a Google-signed ID token of a configured member",
                },
                TENANT_SCHEME: {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The tenant's own API key"},
            },
        },
    }


def _security_31(caller: Caller) -> list[dict[str, list[str]]]:
    if caller is Caller.OPERATOR:
        return [{OPERATOR_SCHEME: []}]
    if caller is Caller.TENANT:
        return [{TENANT_SCHEME: []}]
    return []


def _response(status: int, schema: Mapping[str, Any], route: Route) -> dict[str, Any]:
    media_type = route.media_type if status < 400 else "application/json"
    response: dict[str, Any] = {
        "description": HTTPStatus(status).phrase,
        "content": {media_type: {"schema": dict(schema)}},
    }
    headers: dict[str, Any] = {}
    if status == 401:
        headers["WWW-Authenticate"] = {"description": "the challenge of the route's credential", "schema": {"type": "string"}}
    if status in (201, 202) and route.function != "billing_events_http":
        headers["Location"] = {"description": "absolute URL of the tenant's status", "schema": {"type": "string", "format": "uri"}}
    if headers:
        response["headers"] = headers
    return response


def api_gateway_config(
    routes: Sequence[Route],
    backends: Mapping[str, str],
    audiences: Sequence[str],
    title: str = "tenant-onboarding",
) -> dict[str, Any]:
    """API Gateway's OpenAPI 2.0 config: each route to its function, Google ID tokens checked on operator routes.

    `backends` maps each function to its URL. The tenant's X-API-Key is not a Google API key,
    so the gateway passes it through as a plain header and the function checks it.
    """
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "type": "string"} for name in path_arguments(route.path)
        ]
        parameters += [_parameter_20(p.name, p.location, p.description, p.schema) for p in route.parameters]
        if route.caller is Caller.TENANT:
            parameters.append(
                {
                    "name": "X-API-Key",
                    "in": "header",
                    "required": False,
                    "type": "string",
                    "description": "the tenant's key, checked by the function",
                }
            )
        backend: dict[str, Any] = {"address": backends[route.function], "path_translation": "APPEND_PATH_TO_ADDRESS"}
        if route.deadline_seconds is not None:
            backend["deadline"] = route.deadline_seconds
        operation: dict[str, Any] = {
            "operationId": _operation_id(route),
            "summary": route.summary,
            "x-google-backend": backend,
            "security": [{GOOGLE_ID_TOKEN: []}] if route.caller is Caller.OPERATOR else [],
            "responses": {str(status): {"description": HTTPStatus(status).phrase} for status in [*route.responses, *error_statuses(route)]},
        }
        if parameters:
            operation["parameters"] = parameters
        if route.media_type != "application/json":
            operation["produces"] = [route.media_type]
        if route.request is not None:
            operation["consumes"] = ["application/json"]
            operation["parameters"] = [*parameters, {"name": "body", "in": "body", "required": True, "schema": {"type": "object"}}]
        paths.setdefault(openapi_path(route.path), {})[route.method.lower()] = operation
    return {
        "swagger": "2.0",
        "info": {"title": title, "version": "1"},
        "schemes": ["https"],
        "produces": ["application/json"],
        "securityDefinitions": {
            GOOGLE_ID_TOKEN: {
                "authorizationUrl": "",
                "flow": "implicit",
                "type": "oauth2",
                "x-google-issuer": GOOGLE_ISSUER,
                "x-google-jwks_uri": GOOGLE_JWKS,
                "x-google-audiences": ",".join(audiences),
            }
        },
        "paths": paths,
    }


def _parameter_20(name: str, location: str, description: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": location, "required": False, "description": description}
    parameter |= {key: schema[key] for key in ("type", "minimum", "maximum", "enum", "maxLength") if key in schema}
    return parameter
