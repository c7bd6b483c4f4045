"""Tenant administration by operators: the tenant list; suspend, resume and offboard with a reason; API key rotation and revocation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.domain.api_keys import hash_api_key
from shared.domain.tenant import TenantState, initial_steps
from shared.services import TENANTS, Services, utcnow
from tests.conftest import SEED_REQUEST, onboard_seed
from tests.functional.billing_support import api_key_status, lifecycle_events, trail, view_row

API = "/api/v1/tenants"


def _seed_tenant(services: Services, tenant_id: str, status: str, plan: str, minute: int) -> None:
    stamp = f"2026-01-01T00:{minute:02d}:00.000Z"
    state = TenantState(
        tenant_id=tenant_id,
        company_name=f"Company {tenant_id}",
        admin_email=f"admin@{tenant_id}.example.com",
        subscription_plan=plan,
        status=status,  # type: ignore[arg-type]
        steps=initial_steps(),
        api_key_hash=f"hash-{tenant_id}",
        request_fingerprint=f"fp-{tenant_id}",
        created_at=stamp,
        updated_at=stamp,
    )
    services.documents.set(TENANTS, tenant_id, state.model_dump())


def _seed_fleet(services: Services) -> None:
    """12 tenants: statuses cycle over ACTIVE, FAILED, SUSPENDED; plans alternate STARTER, SCALE."""
    for n in range(12):
        status = ("ACTIVE", "FAILED", "SUSPENDED")[n % 3]
        plan = ("STARTER", "SCALE")[n % 2]
        _seed_tenant(services, f"tenant_{n:02d}", status, plan, minute=n)


def _walk(client: FlaskClient, query: str, limit: int) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    token: str | None = None
    for _ in range(50):
        url = f"{API}?{query}&limit={limit}" + (f"&page_token={token}" if token else "")
        response = client.get(url)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["schema_version"] == "1" and body["count"] == len(body["tenants"]) <= limit
        pages.append(body["tenants"])
        token = body.get("next_page_token")
        if token is None:
            return pages
    raise AssertionError("pagination never ended")


def test_the_list_pages_through_every_tenant_newest_first(platform: Any, client: FlaskClient) -> None:
    _seed_fleet(platform.services)
    pages = _walk(client, "", limit=5)
    assert [len(page) for page in pages] == [5, 5, 2]
    ids = [tenant["tenant_id"] for page in pages for tenant in page]
    assert ids == [f"tenant_{n:02d}" for n in reversed(range(12))]
    first = pages[0][0]
    assert set(first) == {
        "tenant_id", "company_name", "admin_email", "subscription_plan", "status", "steps", "created_at", "updated_at", "error",
    }  # fmt: skip
    assert [step["name"] for step in first["steps"]] == ["subscription", "quota", "dataset", "view"]
    assert {step["status"] for step in first["steps"]} <= {"WAITING", "PENDING"}


def test_status_and_plan_filter_together_and_each_alone(platform: Any, client: FlaskClient) -> None:
    _seed_fleet(platform.services)
    both = [t for page in _walk(client, "status=FAILED&plan=SCALE", limit=1) for t in page]
    assert [t["tenant_id"] for t in both] == ["tenant_07", "tenant_01"]
    failed = [t["tenant_id"] for page in _walk(client, "status=FAILED", limit=3) for t in page]
    assert failed == ["tenant_10", "tenant_07", "tenant_04", "tenant_01"]
    starter = [t for page in _walk(client, "plan=STARTER", limit=4) for t in page]
    assert len(starter) == 6 and {t["subscription_plan"] for t in starter} == {"STARTER"}


def test_a_filtered_page_is_asked_of_the_store_with_its_filters_and_size(
    platform: Any, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store filters and stops at the page: the handler never reads the collection to filter it itself."""
    _seed_fleet(platform.services)
    store = platform.services.documents
    asked: list[dict[str, Any]] = []
    real_page = store.page

    def page(collection: str, order_by: str, **kwargs: Any) -> Any:
        asked.append({"collection": collection, "order_by": order_by, **kwargs})
        return real_page(collection, order_by, **kwargs)

    monkeypatch.setattr(store, "page", page)
    monkeypatch.setattr(store, "scan", lambda *args, **kwargs: pytest.fail("the list must not scan"))
    response = client.get(f"{API}?status=ACTIVE&plan=STARTER&limit=2")
    assert response.status_code == 200
    assert [t["tenant_id"] for t in response.get_json()["tenants"]] == ["tenant_06", "tenant_00"]
    tenants_asked = [call for call in asked if call["collection"] == TENANTS]
    assert len(tenants_asked) == 1
    assert tenants_asked[0]["where"] == {"status": "ACTIVE", "subscription_plan": "STARTER"}
    assert tenants_asked[0]["limit"] == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=active", "status"),
        ("status=DELETED", "status"),
        ("plan=GOLD", "plan"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("page_token=not-a-token", "page_token"),
    ],
)
def test_bad_filters_are_422_naming_the_field(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"{API}?{query}")
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field


def test_a_token_of_another_filter_is_refused(platform: Any, client: FlaskClient) -> None:
    _seed_fleet(platform.services)
    token = client.get(f"{API}?status=ACTIVE&limit=1").get_json()["next_page_token"]
    assert token
    response = client.get(f"{API}?status=FAILED&limit=1&page_token={token}")
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "page_token"


def test_the_list_is_an_operator_route(anonymous: FlaskClient) -> None:
    response = anonymous.get(API)
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers


TENANT = SEED_REQUEST["tenant_id"]


def _act(client: FlaskClient, action: str, reason: str = "support ticket 42", tenant_id: str = TENANT) -> Any:
    return client.post(f"{API}/{tenant_id}/{action}", json={"reason": reason})


def _onboarded(client: FlaskClient, platform: Any) -> dict[str, Any]:
    created = onboard_seed(client)
    assert platform.bus.wait_idle(30)
    return created


def _overview(client: FlaskClient, api_key: str) -> Any:
    return client.get(f"{API}/{TENANT}/overview", headers={"X-API-Key": api_key})


def test_an_operator_suspends_and_resumes_with_a_reason_recorded_like_a_billing_event(client: FlaskClient, platform: Any) -> None:
    created = _onboarded(client, platform)
    suspended = _act(client, "suspend", "abuse report 7")
    assert suspended.status_code == 200, suspended.get_json()
    body = suspended.get_json()
    assert (body["action"], body["outcome"], body["status_before"], body["status"]) == ("suspend", "applied", "ACTIVE", "SUSPENDED")
    assert body["events_url"].endswith(f"/api/v1/tenants/{TENANT}/events")
    assert _overview(client, created["api_key"]).get_json()["error"]["code"] == "TENANT_SUSPENDED"
    assert platform.bus.wait_idle(30)
    assert view_row(platform.services, TENANT)["tenant_status"] == "SUSPENDED"

    again = _act(client, "suspend", "clicked twice")
    assert again.status_code == 200 and again.get_json()["status"] == "SUSPENDED", "a repeat is harmless"

    resumed = _act(client, "resume", "resolved")
    assert resumed.status_code == 200 and resumed.get_json()["status"] == "ACTIVE"
    assert _overview(client, created["api_key"]).status_code == 200
    assert platform.bus.wait_idle(30)
    records = trail(client, TENANT)
    assert [(r["type"], r["source"], r["reason"], r["actor"], r["status_after"]) for r in records] == [
        ("payment_failed", "operator", "abuse report 7", "local-operator", "SUSPENDED"),
        ("payment_failed", "operator", "clicked twice", "local-operator", "SUSPENDED"),
        ("payment_recovered", "operator", "resolved", "local-operator", "ACTIVE"),
    ]
    assert records[0]["event_id"] == body["event_id"]
    assert [e["type"] for e in lifecycle_events(platform, TENANT)] == ["tenant.activated", "tenant.suspended", "tenant.resumed"]


def test_an_operator_offboards_revoking_the_key_and_further_actions_are_409(client: FlaskClient, platform: Any) -> None:
    created = _onboarded(client, platform)
    offboarded = _act(client, "offboard", "contract ended")
    assert offboarded.status_code == 200 and offboarded.get_json()["status"] == "OFFBOARDED"
    assert api_key_status(platform.services, TENANT) == ["REVOKED"]
    assert _overview(client, created["api_key"]).status_code == 401
    assert _act(client, "offboard", "again").get_json()["outcome"] == "ignored"
    for action in ("suspend", "resume"):
        refused = _act(client, action)
        assert refused.status_code == 409
        assert refused.get_json()["error"]["code"] == "TRANSITION_NOT_ALLOWED" and "OFFBOARDED" in refused.get_json()["error"]["message"]
    assert client.get(f"{API}/{TENANT}").get_json()["status"] == "OFFBOARDED"
    assert [r["outcome"] for r in trail(client, TENANT)] == ["applied", "ignored", "refused", "refused"]


def test_actions_on_tenants_that_never_went_live_or_do_not_exist(platform: Any, client: FlaskClient) -> None:
    _seed_tenant(platform.services, "never_live", "FAILED", "STARTER", minute=1)
    refused = _act(client, "suspend", tenant_id="never_live")
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "TRANSITION_NOT_ALLOWED"
    assert trail(client, "never_live") == []
    assert _act(client, "offboard", tenant_id="nobody_here").status_code == 404


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "x" * 501}, {"reason": "ok", "extra": 1}])
def test_an_action_needs_a_reason(platform: Any, client: FlaskClient, body: dict[str, Any]) -> None:
    _seed_tenant(platform.services, "has_reason", "ACTIVE", "STARTER", minute=1)
    response = client.post(f"{API}/has_reason/suspend", json=body)
    assert response.status_code == 422
    assert client.get(f"{API}/has_reason").get_json()["status"] == "ACTIVE"


class _Clock:
    """An injected clock the test moves forward."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def _rotate(client: FlaskClient, **body: Any) -> Any:
    return client.post(f"{API}/{TENANT}/api-keys/rotate", json={"reason": "key leaked in a log", **body})


def _revoke(client: FlaskClient, **body: Any) -> Any:
    return client.post(f"{API}/{TENANT}/api-keys/revoke", json={"reason": "leak confirmed", **body})


def test_a_rotated_out_key_works_for_its_grace_period_then_is_refused(client: FlaskClient, platform: Any) -> None:
    created = _onboarded(client, platform)
    clock = _Clock()
    platform.services.clock = clock
    rotated = _rotate(client)
    assert rotated.status_code == 200, rotated.get_json()
    body = rotated.get_json()
    assert body["grace_hours"] == 24 and body["api_key"] != created["api_key"] and body["api_key"].startswith(f"{TENANT}_api_")
    stored = platform.services.documents.get("api_keys", hash_api_key(body["api_key"]))
    assert body["api_key"] not in str(stored) and stored["ciphertext"], "stored hashed and encrypted, never in clear"

    assert _overview(client, body["api_key"]).status_code == 200
    clock.now += timedelta(hours=23, minutes=59)
    assert _overview(client, created["api_key"]).status_code == 200, "the old key works during the grace period"
    clock.now += timedelta(minutes=1)
    refused = _overview(client, created["api_key"])
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "UNAUTHORIZED"
    assert _overview(client, body["api_key"]).status_code == 200
    assert [(r["type"], r["reason"], r["actor"]) for r in trail(client, TENANT)] == [
        ("api_key_rotated", "key leaked in a log", "local-operator")
    ]
    assert body["api_key"] not in str(trail(client, TENANT)), "the audit trail names keys by id only"


def test_a_key_in_its_grace_period_is_revoked_at_once(client: FlaskClient, platform: Any) -> None:
    created = _onboarded(client, platform)
    first = _rotate(client, grace_hours=48).get_json()
    assert first["grace_hours"] == 48
    second = _rotate(client).get_json()
    assert _overview(client, created["api_key"]).status_code == 200 and _overview(client, first["api_key"]).status_code == 200

    one = _revoke(client, key_id=first["previous_key_id"])
    assert one.status_code == 200 and one.get_json()["revoked"] == [first["previous_key_id"]]
    assert _overview(client, created["api_key"]).status_code == 401
    assert _overview(client, first["api_key"]).status_code == 200
    rest = _revoke(client).get_json()
    assert rest["revoked"] == [second["previous_key_id"]] and rest["current_key_id"] == second["key_id"]
    assert _overview(client, first["api_key"]).status_code == 401
    assert _overview(client, second["api_key"]).status_code == 200
    again = _revoke(client)
    assert again.status_code == 200 and again.get_json()["revoked"] == [] and again.get_json()["event_id"] is None
    assert [r["type"] for r in trail(client, TENANT)] == ["api_key_rotated", "api_key_rotated", "api_key_revoked", "api_key_revoked"]

    current = _revoke(client, key_id=second["key_id"])
    assert current.status_code == 409 and current.get_json()["error"]["field"] == "key_id"
    assert _revoke(client, key_id="0123456789abcdef").status_code == 404


def test_a_rotation_without_grace_refuses_the_old_key_at_once_and_offboarding_revokes_every_key(client: FlaskClient, platform: Any) -> None:
    created = _onboarded(client, platform)
    with_grace = _rotate(client).get_json()
    immediate = _rotate(client, grace_hours=0).get_json()
    assert _overview(client, with_grace["api_key"]).status_code == 401
    assert _overview(client, created["api_key"]).status_code == 200, "still in the first rotation's grace"
    assert _act(client, "offboard", "contract ended").status_code == 200
    for key in (created["api_key"], with_grace["api_key"], immediate["api_key"]):
        assert _overview(client, key).status_code == 401
    assert set(api_key_status(platform.services, TENANT)) == {"REVOKED"}
    assert _rotate(client).status_code == 409


@pytest.mark.parametrize(
    ("body", "field"), [({"grace_hours": 169}, "grace_hours"), ({"grace_hours": -1}, "grace_hours"), ({"reason": ""}, "reason")]
)
def test_a_rotation_outside_bounds_is_422(client: FlaskClient, platform: Any, body: dict[str, Any], field: str) -> None:
    created = _onboarded(client, platform)
    response = _rotate(client, **body)
    assert response.status_code == 422 and response.get_json()["error"]["field"] == field
    assert _overview(client, created["api_key"]).status_code == 200
