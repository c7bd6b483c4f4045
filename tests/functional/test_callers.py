"""Three kinds of callers, each with exactly its routes: the route table's caller classes, enforced.

Operators: `Authorization: Bearer` (the local token here, a Google ID token on Google Cloud).
Tenants: their own `X-API-Key`. Public: /healthz and /openapi.json.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from functions.routes import ROUTES
from shared.adapters.gcp.google_id_token_authenticator import GoogleIdTokenAuthenticator
from shared.adapters.local_operator_authenticator import TOKEN_FILE
from shared.bootstrap import build_embedded_services
from shared.entrypoints.http import Caller, Route
from shared.logging_setup import configure_logging
from tests.conftest import SEED_REQUEST, fast_settings, onboard_seed, operator_client
from tests.fakes.google_tokens import LocalGoogleIssuer

OPERATOR_ROUTES = [route for route in ROUTES if route.caller is Caller.OPERATOR]
TENANT_ROUTES = [route for route in ROUTES if route.caller is Caller.TENANT]


def concrete(route: Route, tenant_id: str = "customer_123") -> str:
    """The route's path with its arguments filled in."""
    return re.sub(r"<[^>]+>", tenant_id, route.path)


def call(client: FlaskClient, route: Route, headers: dict[str, str] | None = None, tenant_id: str = "customer_123") -> Any:
    """One request on `route`, with a well-formed body where it takes one."""
    body = {**SEED_REQUEST} if route.request is not None else None
    return client.open(concrete(route, tenant_id), method=route.method, json=body, headers=headers or {})


def _is_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert set(body) == {"schema_version", "error"} and set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["code"] == code


def test_the_table_gives_every_api_route_a_caller_class_and_leaves_only_health_and_the_document_public() -> None:
    # The console's page, script and style carry no data: it signs in with the operator credential.
    console = {"/console", "/console/console.js", "/console/console.css"}
    assert {route.path for route in ROUTES if route.caller is Caller.PUBLIC} == {"/healthz", "/openapi.json", *console}
    assert [route.path for route in TENANT_ROUTES] == [
        "/api/v1/tenants/<tenant_id>/overview",
        "/api/v1/pipelines/run/<tenant_id>/<provider>/<domain>/<template>",
    ]
    assert all(route.path.startswith("/api/v1/") or route.path == "/metrics" for route in OPERATOR_ROUTES) and len(OPERATOR_ROUTES) == 16


@pytest.mark.parametrize("route", OPERATOR_ROUTES, ids=lambda route: f"{route.method} {route.path}")
def test_every_operator_route_refuses_anyone_but_an_operator(route: Route, client: FlaskClient, anonymous: FlaskClient) -> None:
    tenant = onboard_seed(client)
    tenant_key = {"X-API-Key": tenant["api_key"]}

    missing = call(anonymous, route)
    _is_error(missing, 401, "UNAUTHORIZED")
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="operators"'

    for wrong in ("Bearer not-the-operator-token", "Basic b3BzOnNlY3JldA==", "Bearer"):
        refused = call(anonymous, route, {"Authorization": wrong})
        _is_error(refused, 401, "UNAUTHORIZED")
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="operators", error="invalid_token"'

    forbidden = call(anonymous, route, tenant_key)
    _is_error(forbidden, 403, "FORBIDDEN")
    assert forbidden.get_json()["error"]["field"] == "X-API-Key"

    unknown_key = call(anonymous, route, {"X-API-Key": "customer_123_api_AAAAAAAAAAAAAAAA"})
    _is_error(unknown_key, 401, "UNAUTHORIZED")

    assert call(client, route).status_code not in (401, 403)


def test_the_tenant_overview_takes_only_the_tenants_key(client: FlaskClient, anonymous: FlaskClient) -> None:
    created = onboard_seed(client)
    url = "/api/v1/tenants/customer_123/overview"
    assert anonymous.get(url, headers={"X-API-Key": created["api_key"]}).status_code == 200

    missing = anonymous.get(url)
    _is_error(missing, 401, "UNAUTHORIZED")
    assert missing.headers["WWW-Authenticate"] == 'ApiKey realm="tenants", header="X-API-Key"'
    bad_key = anonymous.get(url, headers={"X-API-Key": "customer_123_api_AAAAAAAAAAAAAAAA"})
    _is_error(bad_key, 401, "UNAUTHORIZED")
    assert bad_key.headers["WWW-Authenticate"].startswith("ApiKey ")

    # An operator is a valid caller, but this route is the tenant's own.
    _is_error(client.get(url), 403, "FORBIDDEN")
    # A wrong operator token reads as no credential at all on a tenant route.
    wrong = anonymous.get(url, headers={"Authorization": "Bearer not-the-operator-token"})
    _is_error(wrong, 401, "UNAUTHORIZED")
    assert wrong.headers["WWW-Authenticate"].startswith("ApiKey ")


def test_health_and_the_openapi_document_are_public(anonymous: FlaskClient) -> None:
    assert anonymous.get("/healthz").status_code == 200
    document = anonymous.get("/openapi.json")
    assert document.status_code == 200 and document.get_json()["openapi"] == "3.1.0"


def test_an_unknown_path_or_method_answers_before_any_credential_is_asked(anonymous: FlaskClient) -> None:
    _is_error(anonymous.get("/api/v1/nothing"), 404, "NOT_FOUND")
    refused = anonymous.delete("/api/v1/tenants/dryrun")
    _is_error(refused, 405, "METHOD_NOT_ALLOWED")
    assert refused.headers["Allow"] == "POST"


# ---------------------------------------------------------------- the token generated at first start


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[tuple[Any, io.StringIO]]:
    """The local platform with no token configured (it generates one), its logs captured."""
    from functions.local import LocalPlatform

    stream = io.StringIO()
    handler = configure_logging(stream=stream)
    local = LocalPlatform(build_embedded_services(fast_settings(tmp_path / "data", ONBOARDING_OPERATOR_TOKEN="")), reconcile_every=3600)
    local.start()
    try:
        yield local, stream
    finally:
        local.stop()
        logging.getLogger().removeHandler(handler)


def test_the_generated_token_lets_operators_in_and_shows_up_in_no_log_line_and_no_other_file(generated: tuple[Any, io.StringIO]) -> None:
    platform, logs = generated
    token_file = platform.services.settings.data_dir / TOKEN_FILE
    token = token_file.read_text().strip()
    operator = platform.app.test_client()
    operator.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"

    created = onboard_seed(operator)
    assert operator.get("/api/v1/tenants/customer_123").status_code == 200
    assert (
        platform.app.test_client().get("/api/v1/tenants/customer_123", headers={"Authorization": "Bearer " + token[::-1]}).status_code
        == 401
    )
    assert (
        platform.app.test_client().get("/api/v1/tenants/customer_123/overview", headers={"X-API-Key": created["api_key"]}).status_code
        == 200
    )
    assert platform.bus.wait_idle(30)

    text = logs.getvalue()
    assert token not in text
    generated_lines = [json.loads(line) for line in text.splitlines() if '"operator token generated"' in line]
    assert [line["token_file"] for line in generated_lines] == [str(token_file)]
    files = [path for path in platform.services.settings.data_dir.rglob("*") if path.is_file() and path != token_file]
    assert {path.name for path in files} >= {"documents.db", "events.db", "warehouse.duckdb"}
    for path in files:  # the databases and their write-ahead logs
        assert token.encode() not in path.read_bytes(), f"the operator token is readable in {path.name}"


# ---------------------------------------------------------------- Google ID tokens through the router


@pytest.fixture
def google_platform(tmp_path: Path) -> Iterator[tuple[Any, LocalGoogleIssuer]]:
    """The local platform with operators authenticated by Google ID tokens (signed locally, no network)."""
    from functions.local import LocalPlatform

    issuer = LocalGoogleIssuer()
    services = build_embedded_services(fast_settings(tmp_path / "data"))
    services.operators = GoogleIdTokenAuthenticator(["https://gateway.example"], ["user:ops@example.com"], issuer.transport())
    local = LocalPlatform(services, reconcile_every=3600)
    local.start()
    yield local, issuer
    local.stop()


def test_behind_the_gateway_the_callers_id_token_arrives_as_x_forwarded_authorization(
    google_platform: tuple[Any, LocalGoogleIssuer],
) -> None:
    platform, issuer = google_platform
    client = platform.app.test_client()
    url = "/api/v1/dead-letters"
    gateway_identity = {"Authorization": "Bearer " + issuer.token("gateway@p.iam.gserviceaccount.com", "https://fn.example")}
    operator = {"X-Forwarded-Authorization": "Bearer " + issuer.token("ops@example.com", "https://gateway.example")}
    stranger = {"X-Forwarded-Authorization": "Bearer " + issuer.token("mallory@example.com", "https://gateway.example")}
    assert client.get(url, headers={**gateway_identity, **operator}).status_code == 200
    _is_error(client.get(url, headers={**gateway_identity, **stranger}), 403, "FORBIDDEN")
    # The gateway's own identity is not an operator's: reaching the function is not being allowed in.
    _is_error(client.get(url, headers=gateway_identity), 401, "UNAUTHORIZED")
    _is_error(client.get(url), 401, "UNAUTHORIZED")


def test_the_local_operator_token_is_the_default_and_the_tests_use_it(platform: Any) -> None:
    assert "ONBOARDING_OPERATOR_TOKEN" in platform.services.operators.describe()
    assert operator_client(platform.app).get("/api/v1/dead-letters").status_code == 200
