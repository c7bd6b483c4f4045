"""Tenant administration by operators: the paged, filtered tenant list."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.domain.tenant import TenantState, initial_steps
from shared.services import TENANTS, Services

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
