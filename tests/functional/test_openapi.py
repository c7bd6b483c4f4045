"""The documents generated from the route table: valid, complete, and true to what the server answers.

`GET /openapi.json` (OpenAPI 3.1) and API Gateway's config (OpenAPI 2.0) are validated with
openapi-spec-validator; then every route is called, on success and on its error paths, and each
status and body the server gives must be the one the document describes for that operation.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import jsonschema
import pytest
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from functions.routes import HTTP_FUNCTIONS, ROUTES, openapi_document
from scripts.api_config import function_url, gateway_config
from shared.entrypoints.openapi import GOOGLE_ID_TOKEN, openapi_path
from tests.conftest import SEED_REQUEST, onboard_seed
from tests.functional.billing_support import billing_message


def _pattern(template: str) -> str:
    """A regex for the concrete paths of an OpenAPI path template."""
    parts = re.split(r"(\{[^}]+\})", template)
    return "^" + "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts) + "$"


class Conformance:
    """Calls the server and checks each answer against the operation the document gives for it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.seen: dict[str, set[int]] = defaultdict(set)
        self._templates = [(re.compile(_pattern(path)), path) for path in document["paths"]]

    def path_item(self, path: str) -> tuple[str, dict[str, Any]]:
        """The document's path for a concrete path: a literal path beats a template, as OpenAPI says."""
        if path in self.document["paths"]:
            return path, self.document["paths"][path]
        matches = [template for pattern, template in self._templates if pattern.match(path)]
        assert len(matches) == 1, f"{path} matches {matches}"
        return matches[0], self.document["paths"][matches[0]]

    def check(self, method: str, path: str, response: Any) -> Any:
        """Assert the response is described by the document; returns it."""
        template, item = self.path_item(path.split("?", maxsplit=1)[0])
        status = response.status_code
        if status == 405:
            assert method.lower() not in item
            assert sorted(response.headers["Allow"].split(", ")) == sorted(m.upper() for m in item)
            self.seen[f"{method} {template}"].add(status)
            return response
        operation = item[method.lower()]
        assert str(status) in operation["responses"], f"{method} {path} answered {status}, not in {sorted(operation['responses'])}"
        described = operation["responses"][str(status)]
        (media_type,) = described["content"]
        assert response.mimetype == media_type, f"{method} {path} answered {response.mimetype}, documented {media_type}"
        if media_type == "application/json":
            schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": self.document["components"]}
            schema |= described["content"]["application/json"]["schema"]
            jsonschema.Draft202012Validator(schema).validate(response.get_json())
        for header in described.get("headers", {}):
            assert header in response.headers, f"{method} {path} {status} lacks the documented {header}"
        self.seen[f"{method} {template}"].add(status)
        return response


@pytest.fixture
def conformance(client: FlaskClient) -> Conformance:
    return Conformance(client.get("/openapi.json").get_json())


def test_the_served_document_is_valid_openapi_31_with_every_route_and_schema(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "http://localhost"}]
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert operations == {(route.method, openapi_path(route.path)) for route in ROUTES}
    for route in ROUTES:
        operation = document["paths"][openapi_path(route.path)][route.method.lower()]
        assert operation["x-caller"] == route.caller.value and operation["x-function"] == route.function
        if route.request is not None:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in document["components"]["schemas"]
    assert {"ErrorResponse", "OnboardRequest", "TenantOverview", "BillingEvent"} <= set(document["components"]["schemas"])


def test_a_broken_document_fails_the_validator(client: FlaskClient) -> None:
    """The validator is not a rubber stamp: a response without its description is refused."""
    document = client.get("/openapi.json").get_json()
    del document["paths"]["/healthz"]["get"]["responses"]["200"]["description"]
    with pytest.raises(OpenAPIValidationError):
        validate(document)


def test_the_gateway_config_is_valid_openapi_20_with_a_backend_per_route() -> None:
    config = gateway_config("my-project-123", "europe-west1", ["https://gateway.example"])
    validate(config)
    assert config["swagger"] == "2.0"
    assert config["securityDefinitions"][GOOGLE_ID_TOKEN]["x-google-issuer"] == "https://accounts.google.com"
    assert config["securityDefinitions"][GOOGLE_ID_TOKEN]["x-google-audiences"] == "https://gateway.example"
    for route in ROUTES:
        operation = config["paths"][openapi_path(route.path)][route.method.lower()]
        assert operation["x-google-backend"]["address"] == function_url("my-project-123", "europe-west1", route.function)
        assert operation["x-google-backend"]["path_translation"] == "APPEND_PATH_TO_ADDRESS"
        expected = [{GOOGLE_ID_TOKEN: []}] if route.caller.value == "operator" else []
        assert operation["security"] == expected, route.path
    assert set(HTTP_FUNCTIONS) == {route.function for route in ROUTES}


def test_the_document_is_generated_not_written(client: FlaskClient) -> None:
    assert client.get("/openapi.json").get_json() == openapi_document("http://localhost")


def test_every_route_and_its_errors_answer_as_documented(client: FlaskClient, anonymous: FlaskClient, conformance: Conformance) -> None:
    c = conformance
    api = "/api/v1/tenants"
    # public
    c.check("GET", "/healthz", anonymous.get("/healthz"))
    c.check("GET", "/openapi.json", anonymous.get("/openapi.json"))
    # dry run: 200, 400, 413, 422, 401, 403 (below, once a tenant exists), 405
    c.check("POST", f"{api}/dryrun", client.post(f"{api}/dryrun", json={**SEED_REQUEST, "tenant_id": "dry_only"}))
    c.check("POST", f"{api}/dryrun", client.post(f"{api}/dryrun", data=b"{not json", content_type="application/json"))
    c.check("POST", f"{api}/dryrun", client.post(f"{api}/dryrun", data=b"[" * 70_000, content_type="application/json"))
    c.check("POST", f"{api}/dryrun", client.post(f"{api}/dryrun", json={"tenant_id": "x"}))
    c.check("POST", f"{api}/dryrun", anonymous.post(f"{api}/dryrun", json=SEED_REQUEST))
    c.check("DELETE", f"{api}/dryrun", client.delete(f"{api}/dryrun"))
    # onboard: 412, 202, 409, 201, 422
    c.check("POST", f"{api}/onboard", client.post(f"{api}/onboard", json={**SEED_REQUEST, "tenant_id": "never_dry"}))
    client.post(f"{api}/dryrun", json={**SEED_REQUEST, "tenant_id": "accepted_one"})
    c.check("POST", f"{api}/onboard", client.post(f"{api}/onboard", json={**SEED_REQUEST, "tenant_id": "accepted_one"}))
    created = onboard_seed(client)
    c.check("POST", f"{api}/onboard?wait=20", client.post(f"{api}/onboard?wait=1", json={**SEED_REQUEST, "tenant_id": "accepted_two"}))
    c.check("POST", f"{api}/onboard", client.post(f"{api}/onboard", json=SEED_REQUEST))
    c.check("POST", f"{api}/onboard?wait=999", client.post(f"{api}/onboard?wait=999", json=SEED_REQUEST))
    client.post(f"{api}/dryrun", json={**SEED_REQUEST, "tenant_id": "waited_for"})
    c.check("POST", f"{api}/onboard?wait=20", client.post(f"{api}/onboard?wait=20", json={**SEED_REQUEST, "tenant_id": "waited_for"}))
    tenant_key = {"X-API-Key": created["api_key"]}
    c.check("POST", f"{api}/dryrun", anonymous.post(f"{api}/dryrun", json=SEED_REQUEST, headers=tenant_key))
    # status: 200, 404, 401, 403; GET on an action path is 405
    c.check("GET", f"{api}/customer_123", client.get(f"{api}/customer_123"))
    c.check("GET", f"{api}/nobody_here", client.get(f"{api}/nobody_here"))
    c.check("GET", f"{api}/customer_123", anonymous.get(f"{api}/customer_123"))
    c.check("GET", f"{api}/customer_123", anonymous.get(f"{api}/customer_123", headers=tenant_key))
    c.check("GET", f"{api}/onboard", client.get(f"{api}/onboard"))
    # overview: 200, 401, 403
    overview = f"{api}/customer_123/overview"
    c.check("GET", overview, anonymous.get(overview, headers=tenant_key))
    c.check("GET", overview, anonymous.get(overview))
    c.check("GET", overview, anonymous.get(overview, headers={"X-API-Key": "customer_123_api_AAAAAAAAAAAAAAAA"}))
    c.check("GET", overview, client.get(overview))
    c.check("POST", overview, client.post(overview))
    # retry: 409 (not FAILED), 404
    c.check("POST", f"{api}/customer_123/retry", client.post(f"{api}/customer_123/retry"))
    c.check("POST", f"{api}/nobody_here/retry", client.post(f"{api}/nobody_here/retry"))
    # the tenant list: 200, 422
    c.check("GET", api, client.get(f"{api}?status=ACTIVE&limit=5"))
    c.check("GET", api, client.get(f"{api}?plan=GOLD"))
    # operator actions: 409 (not live), 404, 422; 200 below
    c.check("POST", f"{api}/accepted_one/suspend", client.post(f"{api}/accepted_one/suspend", json={"reason": "test"}))
    c.check("POST", f"{api}/nobody_here/resume", client.post(f"{api}/nobody_here/resume", json={"reason": "test"}))
    c.check("POST", f"{api}/customer_123/offboard", client.post(f"{api}/customer_123/offboard", json={}))
    # dead letters: 200, 422
    c.check("GET", "/api/v1/dead-letters", client.get("/api/v1/dead-letters"))
    c.check("GET", "/api/v1/dead-letters?status=LOST", client.get("/api/v1/dead-letters?status=LOST"))
    # billing over HTTP: 202, 422; the audit trail: 200, 404
    event = billing_message("evt-doc-1", "customer_123", "plan_changed", 1, new_plan="SCALE")
    c.check("POST", "/api/v1/billing/events", client.post("/api/v1/billing/events", json=event))
    c.check("POST", "/api/v1/billing/events", client.post("/api/v1/billing/events", json={**event, "type": "nonsense"}))
    c.check("GET", f"{api}/customer_123/events", client.get(f"{api}/customer_123/events"))
    c.check("GET", f"{api}/nobody_here/events", client.get(f"{api}/nobody_here/events"))
    # pipeline runs: 200, then 429 once the concurrent slots are taken; 422, 401, 403
    run = "/api/v1/pipelines/run/customer_123/gcp/cost/billing"
    admitted = anonymous.post(run, headers=tenant_key)
    c.check("POST", run, admitted)
    for _ in range(12):
        c.check("POST", run, anonymous.post(run, headers=tenant_key, json={"date": "2025-11-17"}))
    c.check("POST", run.replace("billing", "bad-"), anonymous.post(run.replace("billing", "-bad"), headers=tenant_key))
    c.check("POST", run, anonymous.post(run))
    c.check("POST", run, client.post(run))
    # the executor's reports: 200, 404, 422
    report = {
        "event_id": "report-1",
        "pipeline_logging_id": admitted.get_json()["pipeline_logging_id"],
        "tenant_id": "customer_123",
        "status": "SUCCEEDED",
        "occurred_at": "2026-01-01T00:00:00Z",
    }
    results = "/api/v1/pipelines/results"
    c.check("POST", results, client.post(results, json=report))
    c.check("POST", results, client.post(results, json={**report, "pipeline_logging_id": "no-such-run"}))
    c.check("POST", results, client.post(results, json={**report, "status": "DONE"}))
    rotate, revoke = f"{api}/customer_123/api-keys/rotate", f"{api}/customer_123/api-keys/revoke"
    c.check("POST", rotate, client.post(rotate, json={"reason": "test"}))
    c.check("POST", rotate, client.post(rotate, json={"reason": "test", "grace_hours": 10_000}))
    c.check("POST", revoke, client.post(revoke, json={"reason": "test"}))
    c.check("POST", revoke, client.post(revoke, json={"reason": "test", "key_id": "0123456789abcdef"}))
    c.check("POST", f"{api}/customer_123/suspend", client.post(f"{api}/customer_123/suspend", json={"reason": "test"}))
    c.check("POST", f"{api}/customer_123/resume", client.post(f"{api}/customer_123/resume", json={"reason": "test"}))
    c.check("POST", f"{api}/customer_123/offboard", client.post(f"{api}/customer_123/offboard", json={"reason": "test"}))
    # purge
    c.check("POST", f"{api}/purge-expired", client.post(f"{api}/purge-expired"))
    # metrics: 200 (Prometheus text), 401; the console and its assets: 200
    c.check("GET", "/metrics", client.get("/metrics"))
    c.check("GET", "/metrics", anonymous.get("/metrics"))
    c.check("GET", "/console", anonymous.get("/console"))
    c.check("GET", "/console/console.js", anonymous.get("/console/console.js"))
    c.check("GET", "/console/console.css", anonymous.get("/console/console.css"))

    assert {f"{route.method} {openapi_path(route.path)}" for route in ROUTES} <= set(c.seen)
    statuses = set().union(*c.seen.values())
    assert {200, 201, 202, 400, 401, 403, 404, 405, 409, 412, 413, 422, 429} <= statuses, sorted(statuses)
