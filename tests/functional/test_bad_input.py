"""Bad input through the real HTTP layer: a clear JSON error, never a 500, nothing created."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import SEED_REQUEST

DRYRUN, ONBOARD = "/api/v1/tenants/dryrun", "/api/v1/tenants/onboard"


def _without(field: str) -> dict[str, Any]:
    return {key: value for key, value in SEED_REQUEST.items() if key != field}


REFUSED: list[tuple[str, str, str, Any, int, str, str | None]] = [
    # (id, method, path, body (str = raw bytes), status, code, field)
    ("missing field", "POST", DRYRUN, _without("admin_email"), 422, "MISSING_FIELD", "admin_email"),
    ("wrong json type", "POST", DRYRUN, {**SEED_REQUEST, "tenant_id": 123}, 422, "INVALID_TYPE", "tenant_id"),
    (
        "boolean as string",
        "POST",
        ONBOARD,
        {**SEED_REQUEST, "force_recreate_dataset": "yes"},
        422,
        "INVALID_TYPE",
        "force_recreate_dataset",
    ),
    ("unknown field", "POST", DRYRUN, {**SEED_REQUEST, "surprise": 1}, 422, "UNKNOWN_FIELD", "surprise"),
    ("not json", "POST", DRYRUN, "tenant_id=customer_123", 400, "INVALID_JSON", None),
    ("json but not an object", "POST", DRYRUN, "[1, 2]", 422, "INVALID_REQUEST", None),
    ("empty body", "POST", ONBOARD, "", 400, "INVALID_JSON", None),
    ("over 64 KiB", "POST", DRYRUN, {**SEED_REQUEST, "company_name": "x" * 70_000}, 413, "PAYLOAD_TOO_LARGE", None),
    ("onboard without dry run", "POST", ONBOARD, SEED_REQUEST, 412, "DRYRUN_REQUIRED", "tenant_id"),
    ("wrong method", "GET", ONBOARD, None, 405, "METHOD_NOT_ALLOWED", None),
    ("wrong method on dryrun", "PUT", DRYRUN, SEED_REQUEST, 405, "METHOD_NOT_ALLOWED", None),
    ("unknown route", "GET", "/api/v1/nothing", None, 404, "NOT_FOUND", None),
    ("unknown tenant", "GET", "/api/v1/tenants/nobody_here", None, 404, "TENANT_NOT_FOUND", "tenant_id"),
    ("wait out of range", "POST", ONBOARD + "?wait=61", SEED_REQUEST, 422, "INVALID_REQUEST", "wait"),
    ("wait not a number", "POST", ONBOARD + "?wait=soon", SEED_REQUEST, 422, "INVALID_REQUEST", "wait"),
]


def _send(client: FlaskClient, method: str, path: str, body: Any) -> Any:
    if body is None:
        return client.open(path, method=method)
    data = body if isinstance(body, str) else json.dumps(body)
    return client.open(path, method=method, data=data, content_type="application/json")


def _created_rows(platform: Any) -> dict[str, int]:
    path = platform.services.settings.data_dir / "documents.db"
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT collection, COUNT(*) FROM documents GROUP BY collection").fetchall()
    return dict(rows)


@pytest.mark.parametrize(("case", "method", "path", "body", "status", "code", "field"), REFUSED, ids=[row[0] for row in REFUSED])
def test_refused_requests_get_a_clear_error_and_create_nothing(
    client: FlaskClient, platform: Any, case: str, method: str, path: str, body: Any, status: int, code: str, field: str | None
) -> None:
    before = _created_rows(platform)
    response = _send(client, method, path, body)
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["field"] == field
    assert error["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    assert _created_rows(platform) == before


@pytest.mark.parametrize(
    ("tenant_id", "reason"),
    [
        ("has space", "only letters, digits and underscores"),
        ("a; DROP TABLE x", "only letters, digits and underscores"),
        ("ab", "3 to 50 characters"),
        ("a" * 51, "3 to 50 characters"),
        ("café_123", "ASCII"),
        ("_hidden", "underscore"),
        ("information_schema", "reserved"),
    ],
)
def test_bad_tenant_ids_fail_their_check_and_cannot_be_onboarded(client: FlaskClient, platform: Any, tenant_id: str, reason: str) -> None:
    body = {**SEED_REQUEST, "tenant_id": tenant_id}
    dry = client.post(DRYRUN, json=body)
    assert dry.status_code == 200
    check = next(check for check in dry.get_json()["checks"] if check["name"] == "tenant_id_format")
    assert check["passed"] is False and reason in check["detail"]
    before = _created_rows(platform)
    onboard = client.post(ONBOARD, json=body)
    assert onboard.status_code == 412
    assert _created_rows(platform) == before


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@acme.com", "admin@acme", "a b@acme.com"])
def test_bad_emails_fail_their_check(client: FlaskClient, email: str) -> None:
    dry = client.post(DRYRUN, json={**SEED_REQUEST, "admin_email": email}).get_json()
    check = next(check for check in dry["checks"] if check["name"] == "email_format")
    assert check["passed"] is False


def test_unknown_plan_fails_its_check_naming_the_plans(client: FlaskClient) -> None:
    dry = client.post(DRYRUN, json={**SEED_REQUEST, "subscription_plan": "ENTERPRISE"}).get_json()
    check = next(check for check in dry["checks"] if check["name"] == "subscription_plan")
    assert check["passed"] is False and "PROFESSIONAL" in check["detail"]


def test_onboard_with_a_different_email_than_the_dry_run_is_412(client: FlaskClient, platform: Any) -> None:
    client.post(DRYRUN, json=SEED_REQUEST)
    before = _created_rows(platform)
    response = client.post(ONBOARD, json={**SEED_REQUEST, "admin_email": "other@acme.com"})
    assert response.status_code == 412 and response.get_json()["error"]["code"] == "DRYRUN_REQUIRED"
    assert _created_rows(platform) == before


def test_onboard_twice_is_409(client: FlaskClient, platform: Any) -> None:
    client.post(DRYRUN, json=SEED_REQUEST)
    assert client.post(ONBOARD, json=SEED_REQUEST).status_code == 202
    assert platform.bus.wait_idle(30), "the first onboarding's steps must finish before counting rows"
    before = _created_rows(platform)
    second = client.post(ONBOARD, json=SEED_REQUEST)
    assert second.status_code == 409 and second.get_json()["error"]["code"] == "TENANT_EXISTS"
    assert _created_rows(platform) == before


def test_an_expired_dry_run_does_not_allow_onboarding(client: FlaskClient, platform: Any) -> None:
    dry = client.post(DRYRUN, json=SEED_REQUEST).get_json()
    expires_at = datetime.fromisoformat(dry["expires_at"])
    platform.services.clock = lambda: expires_at + timedelta(seconds=1)
    assert client.post(ONBOARD, json=SEED_REQUEST).status_code == 412
